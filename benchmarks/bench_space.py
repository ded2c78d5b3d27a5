"""Samples per second of each shipped search space: Optuna ask + `space.sample` (bisection on the
width, every sample within budget) + tell, against rejection sampling of the same structure with a
uniformly drawn width multiplier (what a sampler without the projection has to do), interleaved.

Run: PYTHONPATH=. python benchmarks/bench_space.py [--samples 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import optuna

from shufflesearch.space._sampling import structure_arch, suggest_structure
from shufflesearch.space._space import SearchSpace

ROOT = Path(__file__).parents[1]


def timed(space: SearchSpace, n: int, seed: int, step: Callable[[SearchSpace, optuna.Trial], bool]) -> tuple[int, float]:
    """Ask/tell `n` trials of an in-memory study; `step` samples one; returns (within budget, seconds)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    start, feasible = time.perf_counter(), 0
    for _ in range(n):
        trial = study.ask()
        feasible += step(space, trial)
        study.tell(trial, 0.0)
    return feasible, time.perf_counter() - start


def ours(space: SearchSpace, trial: optuna.Trial) -> bool:
    return space.sample(trial) is not None


def rejection(space: SearchSpace, trial: optuna.Trial) -> bool:
    """The same structure suggestions, a uniformly drawn width multiplier; over budget is thrown away."""
    assign = suggest_structure(space, trial)
    mult = trial.suggest_float("width_multiplier", *space.width_multiplier)
    return space.budget.fits(space.cost(structure_arch(space, assign, mult)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'space':<22} {'ours samples/s':>15} {'within budget':>14} {'rejection feasible/s':>21} "
          f"{'accepted':>9} {'ratio':>6}")
    for path in sorted((ROOT / "search_spaces").glob("*.yaml")):
        space = SearchSpace.from_yaml(path)
        totals = {"ours": [0, 0.0], "rejection": [0, 0.0]}
        for r in range(args.rounds):  # interleaved, so drift hits both alike
            for name, fn in (("ours", ours), ("rejection", rejection)):
                feasible, seconds = timed(space, args.samples, r, fn)
                totals[name][0] += feasible
                totals[name][1] += seconds
        n = args.samples * args.rounds
        ours_rate = n / totals["ours"][1]
        rej_rate = totals["rejection"][0] / totals["rejection"][1]
        print(f"{space.name:<22} {ours_rate:15.0f} {totals['ours'][0] / n:14.0%} {rej_rate:21.0f} "
              f"{totals['rejection'][0] / n:9.0%} {ours_rate / rej_rate if rej_rate else float('inf'):5.2f}x")


if __name__ == "__main__":
    main()
