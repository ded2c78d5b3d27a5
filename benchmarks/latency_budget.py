"""A latency budget against a FLOPs budget of equal trials (issue 32, point 5)

The deployment question: "at most the latency of `--reference` (a zoo model) at batch 1 on this CPU". Two
searches of `--trials` trials each on one space and the same proxy task (Fashion-MNIST, scored on the
search-validation split carved from the training split), one objective (accuracy), no early stopping:

* **latency-budgeted**: `budget.latency_ms` = the reference's measured latency on the target (torch eager,
  batch 1, 1 thread, 224 px, this machine), alone: each candidate's width is fitted to a fraction of it,
  each is measured before it trains, none over it is trained (`driver._latency`);
* **FLOPs-budgeted**: `budget.mflops` = the reference's multiply-adds, alone (the ShuffleNet papers' way).

Both run at each search seed 0..`--seeds`-1; the headline is the paired difference of the two top-1s'
test accuracy by search seed (and of the latency-budgeted top-1 against the best zoo model within the
latency), with a 95% t interval.

Then, with no trial running, every trained candidate of both runs is measured again (`--repeats`
interleaved measurements, the median of their medians): how many of the FLOPs-budgeted search's
candidates, and whether its top-1, break the latency budget, and the Kendall tau between FLOPs and
latency. `--remeasure` measures the zoo and every candidate once more, all interleaved (on a quiet
machine, to take out the load the first measurements ran under); the tables then use those figures,
the budget being the reference's re-measured latency, and say so. Each run's top-1 (`pareto.best_row`) and the zoo models whose measured latency is within
the budget (the widest of each family) are retrained from scratch by `final_evaluation` (`--final-epochs` epochs on
`--final-subset-per-class` training images per class, 3 seeds, scored on the t10k test split).

The searches run on a local Ray of `--ray-cpus` CPUs (default 1: one trial at a time, so the driver's
latency measurements have the other core; both searches run so, as the comparison needs). Raw results
(settings, versions, latencies, every trial row, final rows) go to `<results>/latency_budget.json` after
every step, a table to `.md`, a plot (test accuracy against measured latency) to `.png`. Killed, it
resumes: the searches and final evaluations resume their run folders.

    apt-get install dataset-fashion-mnist
    python benchmarks/latency_budget.py --data fashion_mnist:/usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import yaml
from matplotlib.figure import Figure
from scipy import stats

import shufflesearch
from shufflesearch._io import write_json_atomic
from shufflesearch.evaluation._final import final_evaluation
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._pareto import best_row
from shufflesearch.space._configs import LatencySettings
from shufflesearch.train._latency import fingerprint, measure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_quality import interval, publish, widest  # noqa: E402  (the search-quality study's zoo choice and outputs)

RESULT = "latency_budget"
FINAL_SEEDS = 3


def log(line: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {line}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="fashion_mnist:/usr/share/datasets/fashion-mnist")
    p.add_argument("--space", default="search_spaces/mixed.yaml")
    p.add_argument("--reference", default="shufflenet_v1_g3_x0_5", help="the zoo model whose latency is the budget")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3, help="search seeds 0..N-1 (a resumed study can be given more)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved re-measurements of each model, quiet")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--proxy-epochs", type=int, default=5)
    p.add_argument("--proxy-per-class", type=int, default=400)
    p.add_argument("--search-per-class", type=int, default=500)
    p.add_argument("--final-epochs", type=int, default=6)
    p.add_argument("--final-subset-per-class", type=int, default=1000)
    p.add_argument("--ray-cpus", type=int, default=1)
    p.add_argument("--remeasure", action="store_true", help="measure the zoo and every candidate again (quiet machine)")
    p.add_argument("--out", default="runs/latency_budget")
    p.add_argument("--results", default="benchmarks/results")
    return p.parse_args()


def proxy_space(args: argparse.Namespace, budget: Mapping[str, Any]) -> shufflesearch.SearchSpace:
    """The shipped space with the benchmark's proxy data and schedule, one objective, and `budget` as its
    whole `budget:` section's caps (the other keys kept)."""
    raw = yaml.safe_load(Path(args.space).read_text())
    raw["name"] = RESULT
    raw["budget"] = {**{k: v for k, v in raw["budget"].items() if k != "mflops"}, **budget}
    raw["proxy"].update(dataset=args.data, image_size=args.image_size, subset_per_class=args.proxy_per_class,
                        search_per_class=args.search_per_class, epochs=args.proxy_epochs)
    raw["search"] = {**(raw.get("search") or {}), "objectives": ["acc"], "scheduler": "none"}
    return shufflesearch.SearchSpace.from_dict(raw, args.space)


def latencies(archs: Mapping[str, Arch], settings: LatencySettings, input_size: int, repeats: int) -> dict[str, dict]:
    """Each architecture measured `repeats` times, interleaved (a drift of the machine hits all alike): the
    median of the medians, the medians themselves, and the load average at the start."""
    medians: dict[str, list[float]] = {name: [] for name in archs}
    load = os.getloadavg()[0]
    for _ in range(repeats):
        for name, arch in archs.items():
            medians[name].append(measure(arch, settings, input_size).median_ms)
    return {name: {"latency_ms": statistics.median(m), "medians_ms": m, "load_1min": load} for name, m in medians.items()}


def main() -> None:
    args = parse_args()
    out, stem = Path(args.out), Path(args.results) / RESULT
    settings = LatencySettings()  # local, torch, batch 1, 1 thread, 30 runs: the budget's target
    reference = ZOO[args.reference]
    ref_mflops = shufflesearch.cost(reference).mflops
    raw_path = stem.with_suffix(".json")
    state: dict[str, Any] = json.loads(raw_path.read_text()) if raw_path.exists() else {}
    config = {k: v for k, v in vars(args).items() if k not in ("out", "results", "remeasure", "seeds")}
    if state and {k: v for k, v in state["settings"].items() if k != "seeds"} != config:
        raise SystemExit(f"{raw_path} holds a study with other settings: pass another --results, or delete it")
    state["settings"] = {**config, "seeds": max(args.seeds, state.get("settings", {}).get("seeds", 0))}
    state.setdefault("fingerprint", fingerprint(settings))
    started = time.monotonic()

    def save() -> None:
        state["wall_seconds"] = state.get("wall_seconds_before", 0.0) + time.monotonic() - started
        write_json_atomic(raw_path, state)

    if "zoo" not in state:
        log(f"measuring the {len(ZOO)} zoo models (quiet, {args.repeats} interleaved repeats)")
        state["zoo"] = latencies(ZOO, settings, 224, args.repeats)
        save()
    limit = state["zoo"][args.reference]["latency_ms"]
    state["budget"] = {"latency_ms": limit, "mflops": ref_mflops}
    log(f"budget: {args.reference}'s {limit:.3f} ms (latency-budgeted) or its {ref_mflops:.2f} MFLOPs (FLOPs-budgeted)")
    budgets = {"latency": {"latency_ms": round(limit, 4)}, "flops": {"mflops": round(ref_mflops, 4)}}
    runs = state.setdefault("runs", {})
    import ray

    for seed in range(args.seeds):
        for kind, budget in budgets.items():
            key = f"{kind}_s{seed}"
            if "rows" in runs.get(key, {}):
                continue
            log(f"search {kind}-budgeted, seed {seed}: {args.trials} trials on a local Ray of {args.ray_cpus} CPU(s)")
            t0 = time.monotonic()
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
            try:  # seed 0's run folders keep the names they were first run under
                res = shufflesearch.search(proxy_space(args, budget), name=f"{RESULT}_{kind}{f'_s{seed}' if seed else ''}",
                                           trials=args.trials, seed=seed, runs_dir=out, cpus_per_trial=1, progress=log)
            finally:
                ray.shutdown()
            rejected = res.run_dir / "rejected.jsonl"
            runs[key] = {"kind": kind, "seed": seed, "run_dir": str(res.run_dir), "rows": res.rows,
                         "wall_seconds": time.monotonic() - t0,
                         "rejected": [json.loads(line) for line in rejected.read_text().splitlines()]
                         if rejected.exists() else [],
                         "command": json.loads((res.run_dir / "config.json").read_text())["command"]}
            save()
    quiet = state.setdefault("quiet", {})
    archs = {f"{key}:{r['number']}": Arch.from_dict(r["arch"]) for key, run in runs.items() for r in run["rows"]
             if r["status"] == "complete" and f"{key}:{r['number']}" not in quiet}
    if archs:
        log(f"measuring the {len(archs)} trained candidates again, no trial running")
        quiet.update(latencies(archs, settings, 224, args.repeats))
        save()
    zoo_done = any(s["kind"] == "zoo" for run in runs.values() for s in run.get("final", {}).get("summary", []))
    for key, run in runs.items():
        if "final" in run:
            continue
        best = best_row(run["rows"], ["acc"])
        zoo = widest(n for n, z in state["zoo"].items() if z["latency_ms"] <= limit) \
            if run["kind"] == "latency" and not zoo_done else []
        zoo_done = zoo_done or bool(zoo)
        log(f"final {key}: trial {best['number']}" + (f" and the zoo within the budget {zoo}" if zoo else ""))
        final = final_evaluation(run["run_dir"], top=0, trials=[best["number"]], seeds=FINAL_SEEDS,
                                 epochs=args.final_epochs, subset_per_class=args.final_subset_per_class,
                                 zoo=zoo, cpus_per_trial=1, export=False, progress=log)
        run["final"] = {"best": best["number"], "summary": final.summary, "rows": final.rows}
        save()
    if args.remeasure:
        archs = {**ZOO, **{key: Arch.from_dict(r["arch"]) for run_key, run in runs.items() for r in run["rows"]
                           if (key := f"{run_key}:{r['number']}") in quiet}}
        log(f"re-measuring the zoo and the {len(archs) - len(ZOO)} candidates, interleaved, {args.repeats} repeats")
        again = latencies(archs, settings, 224, args.repeats)
        state["remeasured"] = {"zoo": {n: again[n] for n in ZOO}, "candidates": {k: v for k, v in again.items()
                                                                                if k not in ZOO},
                               "fingerprint": fingerprint(settings),
                               "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        save()
    publish(state, stem, tables(state), plot, save)


def measured(state: Mapping[str, Any]) -> tuple[dict[str, dict], dict[str, dict], float, str]:
    """The latencies the tables use: (zoo's, candidates', the budget, what they are): the re-measured ones
    when there are, else those taken at the start (zoo) and after the searches (candidates)."""
    ref = state["settings"]["reference"]
    if "remeasured" in state:
        again = state["remeasured"]
        return again["zoo"], again["candidates"], again["zoo"][ref]["latency_ms"], \
            f"re-measured at {again['at']} (the budget: {ref}'s re-measured latency)"
    return state["zoo"], state["quiet"], state["zoo"][ref]["latency_ms"], "measured after the searches"


def _picks(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each run's top-1 and the zoo within the budget: label, kind (latency, flops, zoo), seed, MFLOPs,
    latency, test accuracies (one per final seed) and their mean."""
    zoo_lat, cand_lat, _, _ = measured(state)
    out = []
    for key, run in state["runs"].items():
        for s in run["final"]["summary"]:
            found = s["kind"] != "zoo"
            lat = (cand_lat[f"{key}:{s['number']}"] if found else zoo_lat[s["name"]])["latency_ms"]
            out.append({"label": f"{run['kind']}-budgeted top-1, seed {run['seed']} (trial {s['number']})" if found
                        else s["name"], "kind": run["kind"] if found else "zoo", "seed": run["seed"] if found else None,
                        "mflops": s["mflops"], "latency_ms": lat, "accs": s["test_accs"],
                        "acc": statistics.mean(s["test_accs"]), "summary": s["summary"]})
    return out


def _pm(values: list[float]) -> str:
    sd = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {sd:.2f}"


def tables(state: Mapping[str, Any]) -> str:
    fp, settings = state["fingerprint"], state["settings"]
    _, cand_lat, limit, what = measured(state)
    ref = settings["reference"]
    picks = _picks(state)
    lines = [f"Latencies {what}; the searches ran with the budget measured before them, "
             f"{state['zoo'][ref]['latency_ms']:.3f} ms (1-min load {state['zoo'][ref]['load_1min']:.1f}).", "",
             f"Budget: {ref}'s latency, {limit:.3f} ms (torch eager, batch 1, 1 thread, 224 px, median of "
             f"{settings['repeats']} interleaved medians of 30 runs, thread CPU time) on {fp.get('cpu_model')} "
             f"({fp.get('logical_cpus')} CPUs), or its {state['budget']['mflops']:.2f} MFLOPs (multiply-adds). Space "
             f"{settings['space']}, {settings['trials']} trials a search, search seeds 0..{settings['seeds'] - 1}. "
             f"Test split (t10k), each model retrained with {FINAL_SEEDS} seeds.", "",
             "| model | MFLOPs | latency ms | within the latency budget | test acc % (mean ± sd, final seeds) |",
             "|---|---|---|---|---|"]
    for p in picks:
        lines.append(f"| {p['label']} | {p['mflops']:.2f} | {p['latency_ms']:.3f} | "
                     f"{'yes' if p['latency_ms'] <= limit else 'no'} | {_pm(p['accs'])} |")
    found = {kind: {p["seed"]: p for p in picks if p["kind"] == kind} for kind in ("latency", "flops")}
    seeds = sorted(set(found["latency"]) & set(found["flops"]))
    zoo = [p for p in picks if p["kind"] == "zoo" and p["latency_ms"] <= limit]
    best_zoo = max(zoo, key=lambda p: p["acc"]) if zoo else None
    lines += ["", f"Over {len(seeds)} search seed(s) (each top-1's mean over its final seeds; 95% t intervals of the "
                  "paired differences, by search seed):", "",
              "| comparison | mean difference, test acc points | 95% interval |", "|---|---|---|"]
    pairs = [("latency-budgeted top-1 minus FLOPs-budgeted top-1", [found["flops"][s]["acc"] for s in seeds])]
    if best_zoo:
        pairs.append((f"latency-budgeted top-1 minus the best zoo model within the latency ({best_zoo['label']})",
                      [best_zoo["acc"]] * len(seeds)))
    for label, other in pairs:
        m, lo, hi = interval([100 * (found["latency"][s]["acc"] - o) for s, o in zip(seeds, other)])
        lines.append(f"| {label} | {m:+.2f} | " + (f"[{lo:+.2f}, {hi:+.2f}]" if lo is not None else "n/a (1 seed)") + " |")
    lines += ["", "| search | trained | over the latency budget (measured again) | rejected before training | "
                  "Kendall tau (MFLOPs, latency) | CPU-h |", "|---|---|---|---|---|---|"]
    for key, run in state["runs"].items():
        done = [r for r in run["rows"] if r["status"] == "complete"]
        lat = [cand_lat[f"{key}:{r['number']}"]["latency_ms"] for r in done]
        tau = stats.kendalltau([r["mflops"] for r in done], lat)
        cpu = sum(r.get("cpu_seconds") or 0 for r in run["rows"]) / 3600
        lines.append(f"| {run['kind']}-budgeted, seed {run['seed']} | {len(done)} | {sum(v > limit for v in lat)} | "
                     f"{len(run['rejected'])} | {tau.statistic:+.2f} (p {tau.pvalue:.2g}) | {cpu:.3f} |")
    return "\n".join(lines)


def plot(state: Mapping[str, Any]) -> bytes:
    _, cand_lat, limit, what = measured(state)
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    colors = {"latency": "tab:blue", "flops": "tab:orange", "zoo": "black"}
    for kind in ("latency", "flops"):
        done = [(key, r) for key, run in state["runs"].items() if run["kind"] == kind
                for r in run["rows"] if r["status"] == "complete"]
        ax.scatter([cand_lat[f"{key}:{r['number']}"]["latency_ms"] for key, r in done],
                   [100 * r["search_acc"] for _, r in done], s=10, alpha=0.3, color=colors[kind],
                   label=f"{kind}-budgeted trials (search-val acc)")
    for p in _picks(state):
        sd = 100 * statistics.stdev(p["accs"]) if len(p["accs"]) > 1 else 0.0
        ax.errorbar([p["latency_ms"]], [100 * p["acc"]], yerr=[sd], fmt="s" if p["kind"] == "zoo" else "*",
                    ms=6 if p["kind"] == "zoo" else 10, capsize=3, color=colors[p["kind"]])
        if p["kind"] == "zoo":
            ax.annotate(p["label"].replace("shufflenet_", ""), (p["latency_ms"], 100 * p["acc"]), fontsize=6,
                        xytext=(3, -9), textcoords="offset points")
    ax.axvline(limit, color="red", ls="--", lw=1, label=f"latency budget {limit:.2f} ms")
    ax.set_xlabel(f"latency ms (batch 1, 1 thread, 224 px, this CPU; {what.split(' (')[0]})", fontsize=8)
    ax.set_ylabel("accuracy %  (stars: top-1s, squares: zoo; test, final seeds)", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


if __name__ == "__main__":
    main()
