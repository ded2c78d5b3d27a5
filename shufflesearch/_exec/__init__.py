"""Where work runs (private): Ray sessions and job pools, devices and GPU shares, retries, the progress
line of every trial and job, quiet Optuna logging. Imports nothing of the packages above it.
"""
