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

With `--growth`, what a candidate costs the driver (drawn, added to the study, recorded, told; no
scoring: a made-up accuracy from the genome's hash) in a study of 100 trials and in one of 2,000 (filled
with random draws), the ratio of the two, for each way of drawing: the supernet loop's before issue
30.4 (`StudySearcher.suggest`: `Study.ask` with TPE or random sampling, a repeated genome told its
record as one more trial) and after (`_evolution.Evolution`, random or evolution: distinct genomes
added by `Study.add_trial`, a generation of 50 at a time).

    python benchmarks/bench_supernet_driver.py --growth [--candidates 50] [--out results/supernet_driver_growth.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.samplers import RandomSampler
from optuna.storages.journal import JournalFileBackend

from shufflesearch._exec._optuna import quiet_optuna
from shufflesearch.driver._evolution import RANDOM, Evolution, draw
from shufflesearch.driver._journal import RunJournal
from shufflesearch.driver._search import _budget_record
from shufflesearch.driver._study_searcher import StudySearcher
from shufflesearch.driver._supernet import CHUNK
from shufflesearch.genome._arch import Arch
from shufflesearch.runs._pareto import best_row
from shufflesearch.runs._records import append_rows, make_row
from shufflesearch.space._file import SearchSettings
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


def _acc(arch) -> float:
    return int(arch.hash[:6], 16) / 16 ** 6


def _study(space: SearchSpace, sampler, trials: int, out: Path) -> tuple[optuna.Study, RunJournal]:
    """A run's study (a `RunJournal`) holding `trials` complete random draws, and its journal."""
    journal = RunJournal(str(out / "optuna.journal"))
    study = optuna.create_study(sampler=sampler, storage=optuna.storages.JournalStorage(journal),
                                directions=["maximize", "minimize"])
    for trial, arch in (draw(space, lambda name: RANDOM, "random", RandomSampler(seed=1)) for _ in range(trials)):
        if arch is not None:
            study.add_trial(optuna.trial.create_trial(params=trial.params, distributions=trial.distributions,
                                                      user_attrs=trial.user_attrs, values=[_acc(arch), 1.0]))
    journal.flush()
    return study, journal


def per_candidate(way: str, space: SearchSpace, trials: int, candidates: int, out: Path) -> tuple[float, int]:
    """Seconds a candidate and the study trials added, for `candidates` drawn `way` in a study of `trials`."""
    budget, seen = _budget_record(space), []
    sampler = optuna.samplers.TPESampler(seed=0, constant_liar=True) if way.endswith("tpe") \
        else optuna.samplers.RandomSampler(seed=0)
    study, journal = _study(space, sampler, trials, out)
    before = len(study.get_trials(deepcopy=False))

    def finish(number, arch, result, status):
        seen.append(make_row(arch, result, status, number=number, budget=budget, max_epochs=1, seed=0))
        return seen[-1]

    searcher = StudySearcher(study, space.sample, ["acc", "mflops"], finish, [], sync=journal.flush)
    settings = SearchSettings(sampler="random" if way.endswith("random") else "evolution")
    evolution = Evolution(space, settings, set(), [], seed=0)
    started = time.perf_counter()
    while len(seen) < candidates:
        if way.startswith("before"):
            ids = [f"c{len(seen) + i}" for i in range(CHUNK)]
            configs = [searcher.suggest(i) for i in ids]
            archs = [Arch.from_dict(c["arch"]) for c in configs]
        else:
            children = evolution.generation(min(settings.evolution_population, candidates - len(seen)))
            ids = [f"c{len(seen) + i}" for i in range(len(children))]
            archs = [c.arch for c in children]
            for i, c in zip(ids, children):
                searcher.add(i, c.trial, c.arch)
        for k in range(0, len(ids), CHUNK):
            rows = searcher.complete([(i, {"status": "complete", "epoch": 1, "search_acc": _acc(a)}, False)
                                      for i, a in zip(ids[k:k + CHUNK], archs[k:k + CHUNK])])
            append_rows(out / "trials.jsonl", rows)
            if way.startswith("after"):
                evolution.scored(rows)
    seconds = time.perf_counter() - started
    return seconds / len(seen), len(study.get_trials(deepcopy=False)) - before


def growth(space: SearchSpace, candidates: int, out: str | None) -> None:
    """Print ms a candidate at 100 and 2,000 trials, and the ratio, for each way of drawing; write them to `out`."""
    results = {}
    for way in ("before, tpe", "before, random", "after, random", "after, evolution"):
        at = {}
        for trials in (100, 2000):
            out = Path(tempfile.mkdtemp(prefix="bench_supernet_growth_"))
            at[trials] = per_candidate(way, space, trials, candidates, out)
        ratio = at[2000][0] / at[100][0]
        results[way] = {"ms_at_100": 1000 * at[100][0], "ms_at_2000": 1000 * at[2000][0], "ratio": ratio,
                        "trials_per_candidate_at_2000": at[2000][1] / candidates}
        print(f"{way:<17} {1000 * at[100][0]:7.2f} ms a candidate at 100 trials, {1000 * at[2000][0]:7.2f} at 2,000: "
              f"ratio {ratio:.2f}x; {at[2000][1] / candidates:.2f} study trials a candidate", flush=True)
    if out:
        Path(out).write_text(json.dumps({"command": f"python benchmarks/bench_supernet_driver.py --growth --candidates "
                                                    f"{candidates} --out {out}", "space": "demo",
                                         "date": time.strftime("%Y-%m-%d"), "results": results}, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=None, help="default 1000, with --growth 50")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--growth", action="store_true")
    p.add_argument("--out", default=None, help="--growth: a JSON file for the figures")
    args = p.parse_args()
    space = SearchSpace.from_yaml(SPACE)
    if args.growth:
        with quiet_optuna():
            growth(space, args.candidates or 50, args.out)
        return
    args.candidates = args.candidates or 1000
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
