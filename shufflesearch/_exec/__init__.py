"""Where work runs (private): Ray sessions and job pools, devices and GPU shares, retries, quiet
Optuna logging. Imports nothing of the packages above it.
"""
