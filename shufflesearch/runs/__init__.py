"""A run folder and what every stage reads of it: its records (one row per trial, `trials.jsonl`), its
config, and the one definition of the Pareto front, the best trial, the hypervolume and the greedy pick
(`_pareto`).
Imports no torch, Optuna or Ray.
"""

from shufflesearch.runs._pareto import best_row, greedy_pick, hypervolume, pareto_front
from shufflesearch.runs._records import read_rows
from shufflesearch.runs._run import Run, load_run, resolve_run

__all__ = ["Run", "best_row", "greedy_pick", "hypervolume", "load_run", "pareto_front", "read_rows", "resolve_run"]
