"""Driver overhead of the Ray Tune + Optuna search against a plain Optuna loop, in one process.

Both run the same 16-trial demo-sized search (search_spaces/demo.yaml, RandomSampler with one seed, no
early stopping), so they train the same architectures:

* shufflesearch.search: a local Ray sized to the machine, 1 thread per trial, trials in parallel;
* a plain loop: optuna ask -> space.sample -> train_proxy -> tell, one trial at a time using every
  core (threads = CPUs), which is what a user without Ray would write.

Printed: each one's wall time, the search's overhead share (wall time not spent inside trial
training: 1 - sum(train seconds) / (concurrency x wall), Ray start-up included) and the ratio of the
two wall times. Rounds alternate the order. Targets: overhead <= 15%, search / plain <= 1.2.

    python benchmarks/bench_search_overhead.py [--trials 16] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna

import shufflesearch
from shufflesearch.data import load_data

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"


def ray_search(trials: int, runs_dir: Path) -> tuple[float, float, float, int]:
    """(wall seconds, summed train seconds, summed trial seconds, concurrency) of the real search.

    A trial's seconds (Tune's time_total_s) also hold its latency measurement and weight saving.
    """
    started = time.perf_counter()
    result = shufflesearch.search(SPACE, name="overhead", trials=trials, sampler="random", scheduler="none",
                                  runs_dir=runs_dir, progress=None)
    wall = time.perf_counter() - started
    return (wall, sum(r["train_seconds"] for r in result.rows), sum(r["seconds"] for r in result.rows),
            min(os.cpu_count() or 1, trials))


def plain_loop(trials: int) -> tuple[float, float]:
    """(wall seconds, summed train seconds) of a sequential Optuna loop with every core per trial."""
    started = time.perf_counter()
    space = shufflesearch.SearchSpace.from_yaml(SPACE)
    data = load_data(space.proxy.data)
    cfg = replace(space.proxy.train, threads=os.cpu_count() or 1, seed=space.search.seed)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=space.search.seed))
    train = 0.0
    while len(study.trials) < trials:
        trial = study.ask()
        arch = space.sample(trial)
        if arch is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        result = shufflesearch.train_proxy(arch, data, cfg)
        train += result.train_seconds + result.eval_seconds  # what a search trial spends in its epochs
        study.tell(trial, [result.final["search_acc"], space.cost(arch).mflops])
    return time.perf_counter() - started, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{os.cpu_count()} CPUs, {args.trials} trials of {SPACE.name}, random sampler, no early stopping")
    for r in range(args.rounds):
        order = ["ray", "plain"] if r % 2 == 0 else ["plain", "ray"]
        for which in order:
            if which == "ray":
                with tempfile.TemporaryDirectory() as tmp:
                    wall, train, in_trial, concurrency = ray_search(args.trials, Path(tmp))
                ray_wall = wall
                overhead = 1 - train / (concurrency * wall)
                print(f"round {r + 1}  Ray Tune search: {wall:6.1f} s wall, {train:6.1f} s training in "
                      f"{concurrency} parallel trials -> overhead {overhead:.1%}: "
                      f"{(in_trial - train) / concurrency:.1f} s inside trials (latency, weights), "
                      f"{wall - in_trial / concurrency:.1f} s outside (Ray start-up, worker imports, scheduling)")
            else:
                plain_wall, plain_train = plain_loop(args.trials)
                print(f"round {r + 1}  plain Optuna loop: {plain_wall:6.1f} s wall, {plain_train:6.1f} s training "
                      f"-> overhead {1 - plain_train / plain_wall:.1%}")
        print(f"round {r + 1}  search / plain wall time: {ray_wall / plain_wall:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
