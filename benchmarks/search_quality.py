"""Does the search beat the zoo and random search? (issue 11, point 4)

For one FLOPs budget (multiply-adds at 224 px, the papers' convention): TPE and random search, and
NSGA-II when the objectives are two, at equal trials, `--seeds` search seeds each, every one its own
run folder under `--out` (`shufflesearch.search`: trials scored on the search-validation split carved
from the training split). Each run's top-1, its most accurate full-fidelity trial, is retrained from
scratch with 3 seeds under one final protocol (`shufflesearch.evaluation.final_evaluation`: the whole
training split or `--final-subset-per-class` images of each class, `--final-epochs` epochs, scored on
the whole t10k test split), and so are the zoo models within the budget (by default the widest of each
family: ShuffleNet v1 g1/g2/g3/g4/g8, v2), once per budget: in the first run's final evaluation, with
the same seeds and protocol.

Two facts of Optuna's samplers shape the comparison (checked on the demo space with Optuna 5.0):
* TPE proposes its first 10 trials (`n_startup_trials`) with a RandomSampler of its own seed, so at one
  search seed TPE and random search share their first architectures (and, training being seeded, their
  results; with 2 trials at a time the records show trials 0-10 shared): TPE - random is a paired
  difference per seed, made by the later trials alone. The table counts the shared trials.
* NSGA-II's first generation (its population, 50) comes from a RandomSampler of its seed too: up to 50
  trials an NSGA-II run is the random run, trial for trial, so it runs only with more trials than that.
With two objectives, `final_evaluation(top=2)` retrains both ends of the run's Pareto front (its
`top=1` would be the cheapest point); the tables take the most accurate end.

Table: per sampler, the top-1's test accuracy (mean +- sd over search seeds of the per-run 3-seed means,
and the pooled within-run seed sd), the hypervolume of the run's (search_acc, MFLOPs) front on the
search split (normalised by the budget, as `shufflesearch report` computes it), the best search_acc,
CPU-hours (trial train + eval seconds, plus the final retrainings' seconds, / 3600; one thread each)
and wall time; the zoo models; per run, the top-1 against the best zoo model of no greater cost; the
headlines: best found top-1 - best zoo model of no greater cost, and TPE - random averaged over seeds.

Raw results go to `<results>/search_quality_b<budget>.json` after every search and every final
evaluation (every run's trial rows, final rows and summaries, the settings, versions and wall times),
the table to `.md`, the plot (test accuracy vs MFLOPs, found per sampler vs zoo) to `.png`. A killed
study resumes: run it again with the same options (search() and final_evaluation() resume their run
folders; a results file holding other settings is refused).

Sizing (2 CPU cores, 1 thread per training, 28 px): demo-space models train at ~1,400-1,900 images/s
and the 13-MFLOPs zoo v1 x0.25 models (16 units deep) at ~870 on the loaded machine, shufflenet_v2.yaml
models near 145 MFLOPs and the zoo 1x models at ~320-520; the defaults (24 trials of 5 epochs x 400
images per class; final 6 epochs x 1,000 per class) are the 20-MFLOPs study. The budget near 140 is
145, so that every "140 MFLOPs" 1x model of the papers fits (v1 134-143, v2 144.9); that study takes
fewer trials, a lighter proxy and, of the zoo, the three 1x models with the lowest ImageNet error in the
papers (v2 1x, v1 g8 and g3 1x) plus v2 0.5x and v1 g3 0.5x (37-41 MFLOPs), the comparison for found
models cheaper than the 1x tier, since each image costs ~4x more there.

    apt-get install dataset-fashion-mnist
    D=fashion_mnist:/usr/share/datasets/fashion-mnist
    nice -n 19 python benchmarks/search_quality.py --data $D --space search_spaces/demo.yaml --budget 20
    nice -n 19 python benchmarks/search_quality.py --data $D --space search_spaces/shufflenet_v2.yaml \\
        --budget 145 --trials 16 --proxy-per-class 300 --proxy-epochs 4 \\
        --zoo shufflenet_v2_x1_0,shufflenet_v1_g3_x1_0,shufflenet_v1_g8_x1_0,shufflenet_v2_x0_5,shufflenet_v1_g3_x0_5
    python benchmarks/search_quality.py --data fashion_mnist:/usr/share/datasets/fashion-mnist \\
        --space search_spaces/demo.yaml --budget 20 --quick        # smoke run, to runs/search_quality_quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import io
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import optuna
import yaml
from matplotlib.figure import Figure

import shufflesearch
from shufflesearch._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from shufflesearch.evaluation._final import final_evaluation, zoo_within_budget
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._pareto import best_row, cost_axis, front_hypervolume, pareto_front

RESULT = "search_quality"
FINAL_SEEDS = 3
NSGA2_POPULATION = inspect.signature(optuna.samplers.NSGAIISampler).parameters["population_size"].default
HV_AXIS = "acc,mflops"  # hypervolume of every run on (search_acc, MFLOPs), whatever it optimised


def log(line: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {line}", flush=True)


def proxy_space(args: argparse.Namespace) -> shufflesearch.SearchSpace:
    """The shipped space with the study's proxy data and schedule, under `--budget`."""
    raw = yaml.safe_load(Path(args.space).read_text())
    raw["name"] = f"{RESULT}_b{args.budget:g}"
    raw["proxy"].update(dataset=args.data, image_size=args.image_size, subset_per_class=args.proxy_per_class,
                        search_per_class=args.search_per_class, epochs=args.proxy_epochs)
    return shufflesearch.SearchSpace.from_dict(raw, args.space).with_budget(args.budget)


def default_zoo(budget: Mapping[str, Any]) -> list[str]:
    """The widest zoo model of each family (v1 per groups setting, v2) within the budget."""
    widest: dict[str, str] = {}
    for name in zoo_within_budget(budget):
        family = name.rsplit("_x", 1)[0]
        if family not in widest or shufflesearch.cost(ZOO[name]).macs > shufflesearch.cost(ZOO[widest[family]]).macs:
            widest[family] = name
    return sorted(widest.values())


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def pm(values: Sequence[float], scale: float = 100.0, digits: int = 2, sign: str = "") -> str:
    """'mean ± sd' of `values` x `scale` (sd omitted for one value); sign "+" prints the mean's sign."""
    m, sd = mean_sd(values)
    return f"{m * scale:{sign}.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if sd is not None else "")


# --- one run: its search, its final evaluation, what the tables need of it ------------------------
def run_summary(rows: Sequence[Mapping[str, Any]], final: Mapping[str, Any], budget: float) -> dict[str, Any]:
    """The run's top-1 (most accurate full-fidelity trial) with its test accuracies, HV and CPU seconds."""
    best = best_row(rows)
    top1 = next(s for s in final["summary"] if s["kind"] == "found" and s["number"] == best["number"])
    found_rows = [r for r in final["rows"] if r["kind"] == "found"]
    return {"number": best["number"], "summary": best["summary"], "mflops": best["mflops"],
            "search_acc": best["search_acc"], "test_accs": top1["test_accs"], "test_acc_mean": top1["test_acc_mean"],
            "test_acc_sd": top1["test_acc_sd"],
            "hypervolume": front_hypervolume(pareto_front(rows, HV_AXIS), cost_axis(HV_AXIS), budget),
            "search_cpu_seconds": sum((r.get("train_seconds") or 0.0) + (r.get("eval_seconds") or 0.0) for r in rows),
            "final_cpu_seconds": sum(r.get("seconds") or 0.0 for r in found_rows)}


def shared_trials(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    """How many trial numbers two runs gave the same architecture (TPE's random start, see above)."""
    hashes = {r["number"]: r["arch_hash"] for r in a["rows"]}
    return sum(hashes.get(r["number"]) == r["arch_hash"] for r in b["rows"])


def best_zoo_within(zoo: Sequence[Mapping[str, Any]], mflops: float) -> Mapping[str, Any] | None:
    """The zoo model of highest mean test accuracy that costs no more than `mflops`."""
    cheaper = [z for z in zoo if z["mflops"] <= mflops and z["test_acc_mean"] is not None]
    return max(cheaper, key=lambda z: z["test_acc_mean"], default=None)


# --- output ------------------------------------------------------------------------------------
def tables(state: Mapping[str, Any]) -> str:
    cfg, runs, zoo = state["settings"], state["runs"], state["zoo"]
    done = {name: r for name, r in sorted(runs.items(), key=lambda kv: (cfg["samplers"].index(kv[1]["sampler"]),
                                                                        kv[1]["seed"])) if "result" in r}
    lines = [f"Budget {cfg['budget']:g} MFLOPs (multiply-adds at 224 px), space {cfg['space']}, objectives "
             f"{cfg['objectives']}; {cfg['trials']} trials x {cfg['seeds']} search seeds per sampler; proxy "
             f"{cfg['proxy_epochs']} ep x {cfg['proxy_per_class']}/class at {cfg['image_size']} px, scored on "
             f"{cfg['search_per_class']}/class search-val; final: {FINAL_SEEDS} seeds x {cfg['final_epochs']} ep on "
             f"{cfg['final_subset_per_class'] or 'all'}/class train, whole t10k test split.", "",
             "| sampler | runs | top-1 test acc % (mean ± sd over search seeds) | pooled seed sd | top-1 MFLOPs "
             "| HV search (mean ± sd) | best search_acc % | CPU-h (search + final) | wall h |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sampler in cfg["samplers"]:
        mine = [r for r in done.values() if r["sampler"] == sampler]
        if not mine:
            continue
        res = [r["result"] for r in mine]
        pooled = math.sqrt(statistics.fmean([x["test_acc_sd"] ** 2 for x in res if x["test_acc_sd"] is not None]
                                            or [math.nan]))
        cpu_s = sum(x["search_cpu_seconds"] + x["final_cpu_seconds"] for x in res)
        wall_s = sum(r["search_wall_seconds"] + r["final_wall_seconds"] for r in mine)
        lines.append(f"| {sampler} | {len(mine)} | {pm([x['test_acc_mean'] for x in res])} | {100 * pooled:.2f} | "
                     f"{pm([x['mflops'] for x in res], 1, 1)} | {pm([x['hypervolume'] for x in res], 1, 4)} | "
                     f"{pm([x['search_acc'] for x in res])} | {cpu_s / 3600:.3f} | {wall_s / 3600:.3f} |")
    lines += ["", "| zoo model | MFLOPs | test acc % (mean ± sd, 3 seeds) | CPU-h |", "|---|---|---|---|"]
    lines += [f"| {z['name']} | {z['mflops']:.1f} | {pm(z['test_accs'])} | {z['cpu_seconds'] / 3600:.3f} |"
              for z in sorted(zoo, key=lambda z: z["mflops"])]
    lines += ["", "| run | top-1 trial | architecture | MFLOPs | search_acc % | test acc % (3 seeds) "
                  "| best zoo of no greater cost | its test acc % | found - zoo (pt) |", "|---" * 9 + "|"]
    deltas: dict[str, list[float]] = {}
    for name, r in done.items():
        x = r["result"]
        z = best_zoo_within(zoo, x["mflops"])
        if z:
            deltas.setdefault(r["sampler"], []).append(x["test_acc_mean"] - z["test_acc_mean"])
        vs_zoo = (f"{z['name']} | {pm(z['test_accs'])} | {100 * (x['test_acc_mean'] - z['test_acc_mean']):+.2f}"
                  if z else "none | - | -")
        arch = x["summary"].replace("|", "\\|")  # the genome summary's separators, escaped for the table
        lines.append(f"| {name} | {x['number']} | {arch} | {x['mflops']:.1f} | {100 * x['search_acc']:.2f} | "
                     f"{pm(x['test_accs'])} | {vs_zoo} |")
    lines += ["", "Headlines (test split, mean of 3 final seeds; aims: found - zoo >= +2.0 pt, "
                  "TPE - random >= +0.5 pt):"]
    if done:
        top_name, top = max(((n, r["result"]) for n, r in done.items()), key=lambda t: t[1]["test_acc_mean"])
        z = best_zoo_within(zoo, top["mflops"])
        lines.append(f"- best found top-1 over all runs (picked on test accuracy, so optimistic): {top_name} trial "
                     f"{top['number']}, {top['mflops']:.1f} MFLOPs, {100 * top['test_acc_mean']:.2f}%"
                     + (f"; best zoo of no greater cost {z['name']} {100 * z['test_acc_mean']:.2f}%: "
                        f"**{100 * (top['test_acc_mean'] - z['test_acc_mean']):+.2f} pt**" if z else
                        "; no zoo model costs as little"))
        for sampler, d in deltas.items():
            lines.append(f"- {sampler}: top-1 - best zoo of no greater cost, mean over {len(d)} search seed(s): "
                         f"**{pm(d, sign='+')} pt**")
        pairs = [(r, done[f"{cfg['tag']}_random_s{r['seed']}"]) for r in done.values()
                 if r["sampler"] == "tpe" and f"{cfg['tag']}_random_s{r['seed']}" in done]
        if pairs:
            diffs = [t["result"]["test_acc_mean"] - r["result"]["test_acc_mean"] for t, r in pairs]
            same_top = sum(t["result"]["number"] == r["result"]["number"] for t, r in pairs)
            lines.append(f"- TPE - random (top-1 test acc, paired by search seed, {len(pairs)} seed(s); "
                         f"trials identical per seed: {', '.join(str(shared_trials(t, r)) for t, r in pairs)} of "
                         f"{cfg['trials']}; the same top-1 in {same_top}): **{pm(diffs, sign='+')} pt**")
    first = runs.get(f"{cfg['tag']}_{cfg['samplers'][0]}_s0", {})
    if zoo and "final" in first:
        zoo_jobs = sum(r["kind"] == "zoo" for r in first["final"]["rows"])
        lines.append(f"- wall: {cfg['tag']}_{cfg['samplers'][0]}_s0's final evaluation also retrained the zoo "
                     f"({zoo_jobs} of its {len(first['final']['rows'])} retrainings), so {cfg['samplers'][0]}'s wall "
                     "includes them; its CPU-h do not (they are the zoo rows')")
    lines += [f"- {note}" for note in cfg["notes"]]
    return "\n".join(lines)


def label_zoo(ax: Any, zoo: Sequence[Mapping[str, Any]], x_max: float) -> None:
    """Zoo labels: models of about equal cost (within 10% of the axis) share a column beside them, on the
    roomier side, in accuracy order, with leader lines; otherwise they would print over each other."""
    (x0, _), (y0, y1) = ax.dataLim.intervalx, ax.dataLim.intervaly
    gap, clusters = 0.1 * (x_max - x0), []
    for z in sorted(zoo, key=lambda z: z["mflops"]):
        if clusters and z["mflops"] - clusters[-1][-1]["mflops"] <= gap:
            clusters[-1].append(z)
        else:
            clusters.append([z])
    for cluster in clusters:
        order = sorted(cluster, key=lambda z: z["test_acc_mean"])
        low = 100 * order[0]["test_acc_mean"]
        step = max((y1 - y0) / 12, (100 * order[-1]["test_acc_mean"] - low) / max(len(order) - 1, 1))
        lo, hi = min(z["mflops"] for z in cluster), max(z["mflops"] for z in cluster)
        right = x_max - hi > lo - x0
        x_text = hi + gap / 3 if right else lo - gap / 3
        for i, z in enumerate(order):
            ax.annotate(z["name"].replace("shufflenet_", ""), (z["mflops"], 100 * z["test_acc_mean"]),
                        xytext=(x_text, low + i * step), fontsize=7, va="center", ha="left" if right else "right",
                        arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5})


def plot(state: Mapping[str, Any]) -> bytes:
    cfg = state["settings"]
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for sampler, marker in zip(cfg["samplers"], "o^D"):
        res = [r["result"] for r in state["runs"].values() if r["sampler"] == sampler and "result" in r]
        if res:
            ax.errorbar([x["mflops"] for x in res], [100 * x["test_acc_mean"] for x in res],
                        yerr=[100 * (x["test_acc_sd"] or 0.0) for x in res], fmt=marker, capsize=3,
                        label=f"found top-1, {sampler} ({len(res)} search seeds)")
    zoo = state["zoo"]
    if zoo:
        ax.errorbar([z["mflops"] for z in zoo], [100 * z["test_acc_mean"] for z in zoo],
                    yerr=[100 * (z["test_acc_sd"] or 0.0) for z in zoo], fmt="s", color="black", capsize=3,
                    label="zoo")
        label_zoo(ax, zoo, max(ax.dataLim.intervalx[1], cfg["budget"]))
    ax.axvline(cfg["budget"], color="grey", linestyle="--", linewidth=1, label="budget")
    ax.set_xlabel("MFLOPs (multiply-adds at 224 px)")
    ax.set_ylabel(f"test accuracy % (mean ± sd of {FINAL_SEEDS} seeds)")
    ax.set_title(f"Found vs zoo at {cfg['budget']:g} MFLOPs: {cfg['final_epochs']} ep, "
                 f"{cfg['final_subset_per_class'] or 'all'}/class, t10k", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


# --- the study ---------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset spec, e.g. fashion_mnist:/usr/share/datasets/fashion-mnist")
    p.add_argument("--space", default="search_spaces/demo.yaml")
    p.add_argument("--budget", type=float, required=True, help="MFLOPs (multiply-adds at the space's input size)")
    p.add_argument("--trials", type=int, default=24, help="trials per search run")
    p.add_argument("--seeds", type=int, default=2, help="search seeds per sampler (0, 1, ...)")
    p.add_argument("--objectives", default="acc", help="acc | acc,mflops (two: NSGA-II too, given the trials)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--proxy-epochs", type=int, default=5)
    p.add_argument("--proxy-per-class", type=int, default=400, help="proxy training images per class")
    p.add_argument("--search-per-class", type=int, default=300, help="search-validation images per class")
    p.add_argument("--final-epochs", type=int, default=6)
    p.add_argument("--final-subset-per-class", type=int, default=1000,
                   help="final training images per class (0: the whole training split)")
    p.add_argument("--zoo", help="comma-separated zoo models (default: the widest of each family within budget)")
    p.add_argument("--out", help=f"run folders (default runs/{RESULT}; --quick: runs/{RESULT}_quick)")
    p.add_argument("--results", help="results folder (default benchmarks/results; --quick: the --out folder)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 trials, 1 seed, 1 proxy and 1 final epoch, 100 images/class, 1 zoo model")
    args = p.parse_args()
    if args.quick:
        args.trials, args.seeds, args.proxy_epochs, args.final_epochs = 2, 1, 1, 1
        args.proxy_per_class, args.search_per_class, args.final_subset_per_class = 100, 50, 100
    elif args.seeds < 2:
        p.error("--seeds must be >= 2 (the table's sd is over search seeds)")
    out = Path(args.out or f"runs/{RESULT}{'_quick' if args.quick else ''}")
    results = Path(args.results or (out if args.quick else "benchmarks/results"))
    tag = f"b{args.budget:g}"
    stem = results / f"{RESULT}_{tag}"

    space = proxy_space(args)
    objectives = tuple(o.strip() for o in args.objectives.split(","))
    samplers, notes = ["tpe", "random"], []
    if len(objectives) == 2:
        if args.trials > NSGA2_POPULATION:
            samplers.append("nsga2")
        else:
            notes.append(f"NSGA-II not run: with {args.trials} trials (<= its population of {NSGA2_POPULATION}) "
                         "it proposes exactly the random run's architectures (same seed, same RandomSampler).")
    budget = {"mflops": space.budget.mflops, "input_size": space.budget.input_size,
              "max_params": space.budget.max_params}
    zoo_names = args.zoo.split(",") if args.zoo else default_zoo(budget)
    if args.quick:
        zoo_names = zoo_names[:1]
    final_subset = args.final_subset_per_class or None
    settings = {"space": args.space, "data": args.data, "budget": args.budget, "objectives": ",".join(objectives),
                "trials": args.trials, "seeds": args.seeds, "samplers": samplers, "image_size": args.image_size,
                "proxy_epochs": args.proxy_epochs, "proxy_per_class": args.proxy_per_class,
                "search_per_class": args.search_per_class, "final_epochs": args.final_epochs,
                "final_subset_per_class": final_subset, "final_seeds": FINAL_SEEDS, "zoo": zoo_names,
                "runs_dir": str(out), "tag": tag, "notes": notes, "proxy": space.proxy.to_dict()}
    state: dict[str, Any] = {"settings": settings, "runs": {}, "zoo": [], "sessions": []}
    raw_path = stem.with_suffix(".json")
    if raw_path.exists():
        state = json.loads(raw_path.read_text())
        if state["settings"] != json.loads(json.dumps(settings)):
            raise SystemExit(f"{raw_path} holds a study with other settings: pass another --results, "
                             "or delete it to start over")
    session = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "wall_seconds": 0.0}
    state["sessions"].append(session)
    started = time.monotonic()

    def save() -> None:
        session["wall_seconds"] = time.monotonic() - started
        write_json_atomic(raw_path, state)

    plan = [(sampler, seed) for seed in range(args.seeds) for sampler in samplers]
    log(f"{args.space} at {args.budget:g} MFLOPs, objectives {settings['objectives']}: {len(plan)} runs x "
        f"{args.trials} trials ({', '.join(samplers)}; seeds 0..{args.seeds - 1}), then top-1 and zoo "
        f"({', '.join(zoo_names)}) x {FINAL_SEEDS} seeds; runs in {out}, results {stem}.*")
    for i, (sampler, seed) in enumerate(plan):
        name = f"{tag}_{sampler}_s{seed}"
        entry = state["runs"].setdefault(name, {"sampler": sampler, "seed": seed, "final_wall_seconds": 0.0})
        log(f"run {i + 1}/{len(plan)}: {name}")
        res = shufflesearch.search(space, name=name, trials=args.trials, sampler=sampler, objectives=objectives,
                                   scheduler="none", seed=seed, runs_dir=out, cpus_per_trial=1, progress=log)
        run_config = json.loads((res.run_dir / "config.json").read_text())
        entry.update(run_dir=str(res.run_dir), rows=res.rows, search_wall_seconds=res.wall_seconds,
                     versions=run_config["versions"], command=run_config["command"])
        save()
        t0 = time.monotonic()
        # two objectives: top=2 is the front's two ends, whose most accurate end is the top-1 (top=1: the cheapest)
        final = final_evaluation(res.run_dir, top=len(objectives), seeds=FINAL_SEEDS, epochs=args.final_epochs,
                                 subset_per_class=final_subset, zoo=zoo_names if i == 0 else [], cpus_per_trial=1,
                                 export=False, progress=log)
        entry["final_wall_seconds"] += time.monotonic() - t0
        entry["final"] = {"rows": final.rows, "summary": final.summary, "dir": str(final.final_dir)}
        entry["result"] = run_summary(res.rows, entry["final"], space.budget.mflops)
        if i == 0:
            state["zoo"] = [{**s, "cpu_seconds": sum(r.get("seconds") or 0.0 for r in final.rows
                                                     if r["arch_hash"] == s["arch_hash"])}
                            for s in final.summary if s["kind"] == "zoo"]
        x = entry["result"]
        log(f"{name}: top-1 trial {x['number']} ({x['mflops']:.1f} MFLOPs, search_acc {x['search_acc']:.4f}) "
            f"test acc {pm(x['test_accs'])}%; HV {x['hypervolume']:.4f}")
        save()

    table = tables(state)
    state["table"] = table
    save()
    write_text_atomic(stem.with_suffix(".md"), table + "\n")
    write_bytes_atomic(stem.with_suffix(".png"), plot(state))
    print("\n" + table)
    total = sum(s["wall_seconds"] for s in state["sessions"])
    print(f"\nwall: {total / 60:.1f} min over {len(state['sessions'])} session(s); raw results {raw_path}, "
          f"plot {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
