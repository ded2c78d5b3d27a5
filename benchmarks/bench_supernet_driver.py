"""The supernet search's driver work per candidate, without any scoring: where the driver's share of
the 2 cores goes while the actors score (see README, "The one-shot evaluator").

For `--candidates` candidates of search_spaces/demo.yaml (RandomSampler, an Optuna journal file, as a
run uses), times apart: ask + `space.sample` (Optuna's journal operations, our Arch checks),
`make_row`, the best-so-far a progress line shows (kept row by row, as `_exec._progress.Progress` does), tell,
and every chunk of 8 the journal's flush and `append_rows` (as `driver._supernet`'s scoring pool
records a chunk). It drives the run's journal (`RunJournal`, one fsynced write a chunk) and Optuna's
`JournalFileBackend` (a locked, fsynced append per operation) in turn, `--repeats` times each,
interleaved, and prints seconds per phase, ms a candidate and the ratio of the totals.

    python benchmarks/bench_supernet_driver.py [--candidates 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend

from shufflesearch._exec._optuna import quiet_optuna
from shufflesearch.driver._journal import RunJournal
from shufflesearch.driver._search import _budget_record
from shufflesearch.driver._supernet import CHUNK
from shufflesearch.runs._pareto import best_row
from shufflesearch.runs._records import append_rows, make_row
from shufflesearch.space._space import SearchSpace

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"


def drive(backend, flush, space: SearchSpace, candidates: int, out: Path) -> Counter[str]:
    """Seconds per phase of `candidates` asked, recorded and told through a journal on `backend`."""
    budget = _budget_record(space)
    spent: Counter[str] = Counter()

    def timed(phase: str, fn, *a, **kw):
        t = time.perf_counter()
        value = fn(*a, **kw)
        spent[phase] += time.perf_counter() - t
        return value

    with quiet_optuna():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                    storage=optuna.storages.JournalStorage(backend))
        rows: list[dict] = []
        best = None
        while len(rows) < candidates:
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
                timed("flush", flush)
                timed("append_rows", append_rows, out / "trials.jsonl", rows[-CHUNK:])
    return spent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    space = SearchSpace.from_yaml(SPACE)
    totals: Counter[str] = Counter()
    for repeat in range(args.repeats):
        for name in ("RunJournal", "JournalFileBackend"):
            out = Path(tempfile.mkdtemp(prefix="bench_supernet_driver_"))
            if name == "RunJournal":
                backend = RunJournal(str(out / "journal"))
                flush = backend.flush
            else:
                backend, flush = JournalFileBackend(str(out / "journal")), lambda: None
            spent = drive(backend, flush, space, args.candidates, out)
            totals[name] += sum(spent.values())
            print(f"{name}, run {repeat + 1}:")
            for phase, seconds in spent.most_common():
                print(f"  {phase:<13} {seconds:6.2f} s  {1000 * seconds / args.candidates:6.2f} ms a candidate")
            print(f"  {'total':<13} {sum(spent.values()):6.2f} s for {args.candidates} candidates (files in {out})")
    n = args.repeats * args.candidates
    print(f"RunJournal {1000 * totals['RunJournal'] / n:.2f} ms a candidate, JournalFileBackend "
          f"{1000 * totals['JournalFileBackend'] / n:.2f} ms: ratio {totals['RunJournal'] / totals['JournalFileBackend']:.2f}x")


if __name__ == "__main__":
    main()
