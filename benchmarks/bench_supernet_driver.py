"""The supernet search's driver work per candidate, without any scoring: where the driver's share of
the 2 cores goes while the actors score (see README, "The one-shot evaluator does not yet pay").

For `--candidates` candidates of search_spaces/demo.yaml (RandomSampler, an Optuna journal file, as a
run uses), times apart: ask + `space.sample` (Optuna's journal appends with an fsync each, our Arch
checks), `make_row`, the best-so-far a progress line shows (kept row by row, as `search._Progress` does),
tell, and `append_rows` of every chunk of 8 (as `_supernet_search.score_candidates` flushes). Prints
seconds per phase and ms a candidate.

    python benchmarks/bench_supernet_driver.py [--candidates 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna

from shufflesearch._optuna import quiet_optuna
from shufflesearch._supernet_search import CHUNK
from shufflesearch.pareto import best_row
from shufflesearch.records import append_rows, make_row
from shufflesearch.search import _budget_record
from shufflesearch.space import SearchSpace

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=1000)
    args = p.parse_args()
    space = SearchSpace.from_yaml(SPACE)
    budget = _budget_record(space)
    out = Path(tempfile.mkdtemp(prefix="bench_supernet_driver_"))
    spent: Counter[str] = Counter()

    def timed(phase: str, fn, *a, **kw):
        t = time.perf_counter()
        value = fn(*a, **kw)
        spent[phase] += time.perf_counter() - t
        return value

    with quiet_optuna():
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "journal")))
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), storage=storage)
        rows: list[dict] = []
        best = None
        while len(rows) < args.candidates:
            trial = timed("ask + sample", study.ask)
            arch = timed("ask + sample", space.sample, trial)
            if arch is None:
                timed("tell", study.tell, trial, state=optuna.trial.TrialState.FAIL)
                continue
            rows.append(timed("make_row", make_row, arch, {"search_acc": 0.5, "epoch": 1}, "complete",
                              number=trial.number, budget=budget, max_epochs=1, seed=0))
            best = timed("best row", best_row, [rows[-1], *([best] if best else [])])
            timed("tell", study.tell, trial, 0.5)
            if len(rows) % CHUNK == 0:
                timed("append_rows", append_rows, out / "trials.jsonl", rows[-CHUNK:])
    for phase, seconds in spent.most_common():
        print(f"{phase:<13} {seconds:6.2f} s  {1000 * seconds / len(rows):6.2f} ms a candidate")
    print(f"{'total':<13} {sum(spent.values()):6.2f} s for {len(rows)} candidates (files in {out})")


if __name__ == "__main__":
    main()
