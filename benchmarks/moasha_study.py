"""Does MO-ASHA give a better Pareto front for the same CPU time? (issue 13, point 2)

Two-objective searches (search-split accuracy against MFLOPs) of one space on real data, with each
scheduler: `none` (every trial trains all epochs), `asha` (Ray's, on accuracy alone: one rung at half
the epochs) and `moasha` (`shufflesearch._moasha`: rungs at 1, 3, 9, ... epochs, promotion by Pareto
rank), `--seeds` search seeds each, every one its own run folder under `--out` (TPE, the same seeds
across schedulers, so each scheduler's run starts from the same proposals).

CPU time of a run after k finished trials = the sum of their `cpu_seconds` (each trial process's CPU
time: training, scoring, latency; one thread each) in completion order; CPU time, unlike wall time,
stays put when other work shares the cores; the hypervolume after k trials is that of
the full-fidelity front of those k (normalised by the budget, as `shufflesearch report` computes it).
Early-stopping schedulers finish more trials in the same CPU time, so each gets its own trial count
(`--trials none=N,asha=N,moasha=N`); the comparison is at equal CPU time: the hypervolume each run
had reached at T = the least total CPU time among all runs (and at T/2).

Raw results (every run's rows in completion order, the curves, settings, versions) go to
`<results>/moasha_study.json` after every search; the table to `.md`, the plot (hypervolume against
CPU-seconds, one line per run) to `.png`. Run again with the same options to resume.

    apt-get install dataset-fashion-mnist
    nice -n 19 python benchmarks/moasha_study.py --data fashion_mnist:/usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import yaml
from matplotlib.figure import Figure

import shufflesearch
from shufflesearch._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from shufflesearch.runs._pareto import front_hypervolume, pareto_front
from shufflesearch.runs._records import package_versions, read_rows
from shufflesearch.space._objectives import COSTS

RESULT = "moasha_study"
SCHEDULERS = ("none", "asha", "moasha")
OBJECTIVES = ("acc", "mflops")


def log(line: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {line}", flush=True)


def study_space(args: argparse.Namespace) -> shufflesearch.SearchSpace:
    """The space with the study's proxy data and schedule, two objectives."""
    raw = yaml.safe_load(Path(args.space).read_text())
    raw["name"] = RESULT
    raw["proxy"].update(dataset=args.data, image_size=args.image_size, subset_per_class=args.proxy_per_class,
                        search_per_class=args.search_per_class, epochs=args.epochs)
    raw.setdefault("search", {}).update(objectives=list(OBJECTIVES))
    return shufflesearch.SearchSpace.from_dict(raw, args.space)


def curve(rows: Sequence[dict[str, Any]], budget: float) -> list[tuple[float, float]]:
    """(CPU-seconds, hypervolume) after each finished trial, in completion order."""
    out, cpu = [], 0.0
    for k, r in enumerate(rows):
        cpu += r["cpu_seconds"]
        out.append((cpu, front_hypervolume(pareto_front(rows[: k + 1], OBJECTIVES), COSTS["mflops"], budget)))
    return out


def at(points: Sequence[tuple[float, float]], cpu: float) -> tuple[float, int]:
    """(hypervolume, trials finished) of a curve at `cpu` CPU-seconds."""
    done = [p for p in points if p[0] <= cpu]
    return (done[-1][1] if done else 0.0), len(done)


def mean_sd(values: Sequence[float]) -> str:
    sd = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4f}{sd}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset spec, e.g. fashion_mnist:/usr/share/datasets/fashion-mnist")
    parser.add_argument("--space", default=str(Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", default="none=18,asha=27,moasha=40",
                        help="trials per scheduler (early stopping finishes more in the same CPU time)")
    parser.add_argument("--epochs", type=int, default=9, help="full training (moasha's rungs: 1, 3)")
    parser.add_argument("--proxy-per-class", type=int, default=100, help="training images per class")
    parser.add_argument("--search-per-class", type=int, default=50, help="search-validation images per class")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--out", default="runs/moasha_study")
    parser.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()
    trials = {k: int(v) for k, v in (item.split("=") for item in args.trials.split(","))}
    space = study_space(args)
    budget = space.budget.mflops
    results_path = Path(args.results) / f"{RESULT}.json"
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "results")}
    runs: dict[str, Any] = {}
    if results_path.exists():
        previous = json.loads(results_path.read_text())
        if previous["settings"] != settings:
            raise SystemExit(f"{results_path} holds another study's settings; move it away or use --results")
        runs = previous["runs"]
    started = time.monotonic()
    for seed in range(args.seeds):
        for scheduler in SCHEDULERS:  # interleaved, so machine load drifts hit every scheduler alike
            name = f"{scheduler}_s{seed}"
            if name in runs:
                continue
            log(f"{name}: {trials[scheduler]} trials")
            t0 = time.monotonic()
            result = shufflesearch.search(space, name=name, trials=trials[scheduler], scheduler=scheduler,
                                          seed=seed, runs_dir=args.out, progress=None)
            rows = read_rows(result.run_dir / "trials.jsonl")  # completion order
            runs[name] = {"scheduler": scheduler, "seed": seed, "wall_seconds": time.monotonic() - t0,
                          "rows": rows, "curve": curve(rows, budget)}
            log(f"{name}: {len(rows)} trials, {runs[name]['curve'][-1][0]:.0f} CPU-s, "
                f"hypervolume {runs[name]['curve'][-1][1]:.4f}")
            write_json_atomic(results_path, {"settings": settings, "versions": package_versions(), "runs": runs})
    report(runs, args, results_path, time.monotonic() - started)


def report(runs: dict[str, Any], args: argparse.Namespace, results_path: Path, wall: float) -> None:
    horizon = min(r["curve"][-1][0] for r in runs.values())
    lines = [f"# MO-ASHA study: hypervolume at equal CPU time ({args.data}, {args.epochs} epochs, "
             f"{args.proxy_per_class} training and {args.search_per_class} search images per class, {args.seeds} seeds)", "",
             f"Equal CPU time T = {horizon:.0f} CPU-seconds (the least any run spent). Hypervolume of the "
             "(search_acc, MFLOPs) front on the search split, normalised by the budget; mean ± sd over seeds.", "",
             "| scheduler | HV at T/2 | HV at T | trials done by T | full-fidelity trials by T |", "|---|---|---|---|---|"]
    summary = {}
    for scheduler in SCHEDULERS:
        mine = [r for r in runs.values() if r["scheduler"] == scheduler]
        if not mine:
            continue
        half = [at(r["curve"], horizon / 2)[0] for r in mine]
        full = [at(r["curve"], horizon)[0] for r in mine]
        done = [at(r["curve"], horizon)[1] for r in mine]
        complete = [sum(1 for row, p in zip(r["rows"], r["curve"]) if p[0] <= horizon and row["status"] == "complete")
                    for r in mine]
        summary[scheduler] = {"hv_half": half, "hv": full, "done": done, "complete": complete}
        lines.append(f"| {scheduler} | {mean_sd(half)} | {mean_sd(full)} | {statistics.fmean(done):.1f} | "
                     f"{statistics.fmean(complete):.1f} |")
    for other in ("none", "asha"):
        if "moasha" in summary and other in summary:
            diffs = [a - b for a, b in zip(summary["moasha"]["hv"], summary[other]["hv"])]
            lines.append(f"\nmoasha - {other} at T, paired by seed: {mean_sd(diffs)} "
                         f"({sum(d > 0 for d in diffs)} of {len(diffs)} seeds better)")
    lines.append(f"\nStudy wall time this invocation: {wall / 60:.1f} min. Raw results: {results_path.name}.")
    text = "\n".join(lines) + "\n"
    write_text_atomic(results_path.with_suffix(".md"), text)
    write_json_atomic(results_path.with_name(f"{RESULT}_summary.json"), {"horizon_cpu_seconds": horizon, **summary})
    write_bytes_atomic(results_path.with_suffix(".png"), plot(runs, horizon))
    print(text)


def plot(runs: dict[str, Any], horizon: float) -> bytes:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    colours = {"none": "tab:gray", "asha": "tab:blue", "moasha": "tab:red"}
    for name, r in sorted(runs.items()):
        xs, ys = zip(*r["curve"])
        ax.step(xs, ys, where="post", color=colours[r["scheduler"]], alpha=0.8,
                label=r["scheduler"] if r["seed"] == 0 else None)
    ax.axvline(horizon, color="black", linestyle=":", linewidth=1, label="equal CPU time T")
    ax.set_xlabel("CPU-seconds (sum of trials' CPU time, completion order)")
    ax.set_ylabel("hypervolume, search split (acc vs MFLOPs)")
    ax.legend()
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
