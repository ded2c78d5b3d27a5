"""Does the search beat what is free? Strategies against random search at equal CPU and the greedy picks
(issue 30, point 1; issue 11, point 4 before it)

For one FLOPs budget (multiply-adds at 224 px, the papers' convention) and `--seeds` search seeds, each
strategy (`--strategies`: an Optuna sampler with its `search:` settings, see STRATEGIES) searches
`--trials` trials on the proxy task (`shufflesearch.search`, scored on the search-validation split carved
from the training split; one objective, accuracy, no early stopping, so every trial costs a full proxy
training). Random search runs at the same seed too, and is then extended (the same run resumed with more
trials) until its CPU seconds reach those of the costliest strategy at that seed. From these runs:

* **found**: each strategy's top-1 (its most accurate full-fidelity trial, `pareto.best_row`; with a
  re-ranking, `tpe_rerank`, the re-ranked best, and the re-ranking's CPU counted in the strategy's);
* **random at equal trials**: random search's top-1 among its first `--trials` trials;
* **random at equal CPU**, per strategy: random search's top-1 among its first trials whose summed CPU
  seconds do not exceed the strategy's (a prefix of the one random run: random proposals do not depend
  on what came before, so a prefix is a shorter random search);
* **FLOPs-greedy**: among the same first `--trials` candidates random search drew, the costliest within
  the budget (`pareto.greedy_pick`), the choice a user makes without training anything; its CPU cost is
  the final training alone;
* **params-greedy**: the same by parameter count.

Every pick is retrained from scratch with 3 seeds under one final protocol (`final_evaluation(trials=...)`:
`--final-subset-per-class` training images per class, `--final-epochs` epochs, scored on the whole t10k
test split), and so are the zoo models within the budget (the widest of each family), once.

Headlines (test split, each pick's mean over the 3 final seeds): per strategy, found - FLOPs-greedy,
found - params-greedy, found - random at equal CPU and at equal trials, paired by search seed, the mean
with a 95% t interval over the search seeds. Aims (issue 30): found - greedy >= +0.5 pt and found -
random >= +0.3 pt with intervals above 0. CPU-hours: the trials' CPU seconds (process time of one thread,
`cpu_seconds` in the records), plus the final retrainings', / 3600.

Raw results go to `<results>/search_quality_b<budget>.json` after every search and every final
evaluation (the settings, versions, every run's trial rows, the final rows, wall times), the tables to
`.md`, the plot (test accuracy vs MFLOPs: found per strategy, random, greedy, zoo) to `.png`. A killed
study resumes: run it again with the same options (search() and final_evaluation() resume their run
folders; a results file holding other settings is refused).

Sizing (2 CPU cores, 1 thread per training, 28 px): demo-space models near 10 MFLOPs train a 5-epoch x
400/class proxy trial in ~10-15 s; the final protocol (6 epochs x 1,000/class, t10k) in ~1 minute a seed.

    apt-get install dataset-fashion-mnist
    D=fashion_mnist:/usr/share/datasets/fashion-mnist
    nice -n 19 python benchmarks/search_quality.py --data $D --budget 10 --seeds 3
    nice -n 19 python benchmarks/search_quality.py --data $D --budget 30 --seeds 3 --strategies tpe
    python benchmarks/search_quality.py --data $D --budget 10 --quick     # smoke run, to runs/search_quality_quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml
from matplotlib.figure import Figure
from scipy import stats

import shufflesearch
from shufflesearch._io import write_bytes_atomic, write_json_atomic, write_text_atomic
from shufflesearch.evaluation._final import final_evaluation, zoo_within_budget
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._pareto import best_row, greedy_pick
from shufflesearch.runs._run import load_run

RESULT = "search_quality"
FINAL_SEEDS = 3
# name -> the sampler and the `search:` settings it runs with (random search is always run: the baseline)
STRATEGIES: dict[str, dict[str, Any]] = {
    "tpe": {"sampler": "tpe", "tpe_startup_trials": 4, "tpe_multivariate": True},
    "tpe_default": {"sampler": "tpe"},  # Optuna's 10 random start-up trials, one density per choice
    "gp": {"sampler": "gp", "tpe_startup_trials": 4},
    # tpe, then its near-ties trained again at 2x the proxy's epochs on 2x its images, 2 seeds (the run's
    # `rerank:` section; the whole training split, its default, would cost ~20x the search here)
    "tpe_rerank": {"sampler": "tpe", "tpe_startup_trials": 4, "tpe_multivariate": True,
                   "rerank": {"enabled": True, "subset_per_class": 800}},
}
MAX_RANDOM_EXTENSION = 2.0  # random search runs at most this many times --trials to reach a strategy's CPU


def log(line: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {line}", flush=True)


def proxy_space(args: argparse.Namespace, strategy: Mapping[str, Any]) -> shufflesearch.SearchSpace:
    """The shipped space with the study's proxy data and schedule and a strategy's `search:` settings (and
    `rerank:` section), under `--budget`."""
    search = {k: v for k, v in strategy.items() if k != "rerank"}
    raw = yaml.safe_load(Path(args.space).read_text())
    raw["name"] = f"{RESULT}_b{args.budget:g}"
    raw["proxy"].update(dataset=args.data, image_size=args.image_size, subset_per_class=args.proxy_per_class,
                        search_per_class=args.search_per_class, epochs=args.proxy_epochs)
    raw["search"] = {**(raw.get("search") or {}), **search, "objectives": ["acc"], "scheduler": "none"}
    if "rerank" in strategy:
        raw["rerank"] = strategy["rerank"]
    return shufflesearch.SearchSpace.from_dict(raw, args.space).with_budget(args.budget)


def default_zoo(budget: Mapping[str, Any]) -> list[str]:
    """The widest zoo model of each family within the budget."""
    return widest(zoo_within_budget(budget))


def widest(names: Iterable[str]) -> list[str]:
    """The widest model of each zoo family (v1 per groups setting, v2) among `names`: the zoo's best bet at a
    budget, one final retraining per family."""
    best: dict[str, str] = {}
    for name in names:
        family = name.rsplit("_x", 1)[0]
        if family not in best or shufflesearch.cost(ZOO[name]).macs > shufflesearch.cost(ZOO[best[family]]).macs:
            best[family] = name
    return sorted(best.values())


def publish(state: dict[str, Any], stem: Path, table: str, plot: Callable[[Mapping[str, Any]], bytes],
            save: Callable[[], None]) -> None:
    """A study's end: its `table` kept in the raw results (`save`), written to `<stem>.md`, its plot to
    `<stem>.png`, the table printed."""
    state["table"] = table
    save()
    write_text_atomic(stem.with_suffix(".md"), table + "\n")
    write_bytes_atomic(stem.with_suffix(".png"), plot(state))
    print("\n" + table)


def cpu_seconds(row: Mapping[str, Any]) -> float:
    """A trial's or retraining's CPU seconds: the process time of its trial body (one thread), which does not
    grow while other processes share the cores, as wall time does."""
    return row.get("cpu_seconds") or 0.0


def strategy_cpu(entry: Mapping[str, Any]) -> float:
    """A strategy run's CPU seconds: its trials', and its re-ranking's if it ran one."""
    rerank = load_run(entry["run_dir"]).rerank_results or []
    return sum(map(cpu_seconds, entry["rows"])) + sum(r["cpu_seconds"] for r in rerank)


def prefix(rows: Sequence[Mapping[str, Any]], *, trials: int | None = None, cpu: float | None = None) -> list:
    """The first rows of a run in trial order: the first `trials`, or those whose summed CPU seconds stay
    within `cpu` (at least one)."""
    ordered = sorted(rows, key=lambda r: r["number"])
    if trials is not None:
        return ordered[:trials]
    out, spent = [], 0.0
    for r in ordered:
        spent += cpu_seconds(r)
        if out and spent > cpu:
            break
        out.append(r)
    return out


def interval(diffs: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean of paired differences and its 95% t interval (None with fewer than 2)."""
    m = statistics.fmean(diffs)
    if len(diffs) < 2:
        return m, None, None
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return m, m - half, m + half


def pm(values: Sequence[float], scale: float = 100.0, digits: int = 2, sign: str = "") -> str:
    """'mean ± sd' of `values` x `scale` (sd omitted for one value); sign "+" prints the mean's sign."""
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else None
    return f"{m * scale:{sign}.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if sd is not None else "")


# --- the picks of one search seed --------------------------------------------------------------
def picks(state: Mapping[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """Pick label -> {run, number, cpu_seconds (search CPU its choice cost)} for one search seed."""
    cfg = state["settings"]
    runs = {r["strategy"]: r for r in state["runs"].values() if r["seed"] == seed and "rows" in r}
    random_rows = runs["random"]["rows"]
    first = prefix(random_rows, trials=cfg["trials"])
    out = {"random (equal trials)": {"run": runs["random"]["name"], "number": best_row(first, "acc")["number"],
                                     "cpu_seconds": sum(map(cpu_seconds, first))}}
    for by, label in (("mflops", "FLOPs-greedy"), ("params", "params-greedy")):
        out[label] = {"run": runs["random"]["name"], "number": greedy_pick(first, cfg["budget_record"], by)["number"],
                      "cpu_seconds": 0.0}
    for strategy in cfg["strategies"]:
        if strategy not in runs:
            continue
        spent = strategy_cpu(runs[strategy])
        best = best_row(runs[strategy]["rows"], "acc", load_run(runs[strategy]["run_dir"]).reranked)
        out[strategy] = {"run": runs[strategy]["name"], "number": best["number"], "cpu_seconds": spent}
        equal = prefix(random_rows, cpu=spent)
        out[f"random (CPU of {strategy})"] = {"run": runs["random"]["name"], "number": best_row(equal, "acc")["number"],
                                              "cpu_seconds": sum(map(cpu_seconds, equal)), "trials": len(equal)}
    return out


def pick_result(state: Mapping[str, Any], pick: Mapping[str, Any]) -> dict[str, Any] | None:
    """A pick's trial row and its final summary (test accuracies), None before its final evaluation."""
    run = state["runs"][pick["run"]]
    row = next(r for r in run["rows"] if r["number"] == pick["number"])
    summary = next((s for s in run.get("final", {}).get("summary", [])
                    if s["number"] == pick["number"] and s["kind"] == "found" and s["test_accs"]), None)
    if summary is None:
        return None
    seconds = sum(map(cpu_seconds, (r for r in run["final"]["rows"] if r["number"] == pick["number"])))
    return {**pick, "mflops": row["mflops"], "params": row["params"], "search_acc": row["search_acc"],
            "summary": row["summary"], "test_accs": summary["test_accs"], "test_acc_mean": summary["test_acc_mean"],
            "final_cpu_seconds": seconds}


# --- output ------------------------------------------------------------------------------------
def results(state: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """Pick label -> search seed -> its result, for the seeds whose picks are all final-evaluated."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for seed in range(state["settings"]["seeds"]):
        if not all(r.get("final") for r in state["runs"].values() if r["seed"] == seed):
            continue
        try:
            chosen = picks(state, seed)
        except KeyError:  # a run of this seed not searched yet
            continue
        for label, pick in chosen.items():
            res = pick_result(state, pick)
            if res is not None:
                out.setdefault(label, {})[seed] = res
    return out


def tables(state: Mapping[str, Any]) -> str:
    cfg, zoo = state["settings"], state["zoo"]
    res = results(state)
    lines = [f"Budget {cfg['budget']:g} MFLOPs (multiply-adds at 224 px), space {cfg['space']}, objective acc, "
             f"no early stopping; {cfg['trials']} trials a strategy x {cfg['seeds']} search seeds; proxy "
             f"{cfg['proxy_epochs']} ep x {cfg['proxy_per_class']}/class at {cfg['image_size']} px, scored on "
             f"{cfg['search_per_class']}/class of the search-validation split; final: {FINAL_SEEDS} seeds x "
             f"{cfg['final_epochs']} ep on {cfg['final_subset_per_class'] or 'all'}/class of the training split, "
             "scored on the whole t10k test split.", "",
             "| pick | seeds | test acc % (mean ± sd over search seeds) | pooled final-seed sd | MFLOPs | "
             "search-val acc % | search CPU-h | final CPU-h |", "|---" * 8 + "|"]
    for label, by_seed in res.items():
        xs = list(by_seed.values())
        pooled = math.sqrt(statistics.fmean([statistics.variance(x["test_accs"]) for x in xs
                                             if len(x["test_accs"]) > 1] or [math.nan]))
        lines.append(f"| {label} | {len(xs)} | {pm([x['test_acc_mean'] for x in xs])} | {100 * pooled:.2f} | "
                     f"{pm([x['mflops'] for x in xs], 1, 1)} | {pm([x['search_acc'] for x in xs])} | "
                     f"{sum(x['cpu_seconds'] for x in xs) / 3600:.3f} | "
                     f"{sum(x['final_cpu_seconds'] for x in xs) / 3600:.3f} |")
    if zoo:
        lines += ["", f"| zoo model (within the budget) | MFLOPs | test acc % (mean ± sd, {FINAL_SEEDS} seeds) |",
                  "|---|---|---|"]
        lines += [f"| {z['name']} | {z['mflops']:.1f} | {pm(z['test_accs'])} |"
                  for z in sorted(zoo, key=lambda z: z["mflops"])]
    else:
        lines += ["", "No zoo model costs as little as the budget."]
    lines += ["", "| seed | pick | trial | architecture | MFLOPs | search-val acc % | test acc % | random trials |",
              "|---" * 8 + "|"]
    for label, by_seed in res.items():
        for seed, x in sorted(by_seed.items()):
            arch = x["summary"].replace("|", "\\|")
            lines.append(f"| {seed} | {label} | {x['number']} | {arch} | {x['mflops']:.1f} | "
                         f"{100 * x['search_acc']:.2f} | {pm(x['test_accs'])} | {x.get('trials', '')} |")
    lines += ["", "Paired differences (test split, per search seed the difference of the two picks' 3-seed means; "
                  "mean and 95% t interval over search seeds; aims: found - greedy >= +0.5 pt, found - random >= "
                  "+0.3 pt, intervals above 0):", "",
              "| strategy | minus | seeds | difference (pt) | 95% interval (pt) |", "|---|---|---|---|---|"]
    for strategy in cfg["strategies"]:
        for other in ("FLOPs-greedy", "params-greedy", f"random (CPU of {strategy})", "random (equal trials)"):
            seeds = sorted(set(res.get(strategy, {})) & set(res.get(other, {})))
            if not seeds:
                continue
            diffs = [res[strategy][s]["test_acc_mean"] - res[other][s]["test_acc_mean"] for s in seeds]
            m, lo, hi = interval(diffs)
            ci = f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" if lo is not None else "-"
            lines.append(f"| {strategy} | {other} | {len(seeds)} | {100 * m:+.2f} | {ci} |")
    lines += [f"- {note}" for note in cfg["notes"]]
    return "\n".join(lines)


def plot(state: Mapping[str, Any]) -> bytes:
    cfg = state["settings"]
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    markers = iter("o^Dvs<>P*")
    for label, by_seed in results(state).items():
        if label.startswith("random (CPU"):
            continue
        xs = list(by_seed.values())
        ax.errorbar([x["mflops"] for x in xs], [100 * x["test_acc_mean"] for x in xs],
                    yerr=[100 * statistics.stdev(x["test_accs"]) if len(x["test_accs"]) > 1 else 0.0 for x in xs],
                    fmt=next(markers), capsize=3, label=f"{label} ({len(xs)} search seeds)")
    for z in state["zoo"]:
        ax.errorbar([z["mflops"]], [100 * z["test_acc_mean"]], yerr=[100 * (z["test_acc_sd"] or 0.0)], fmt="s",
                    color="black", capsize=3)
        ax.annotate(z["name"].replace("shufflenet_", ""), (z["mflops"], 100 * z["test_acc_mean"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.axvline(cfg["budget"], color="grey", linestyle="--", linewidth=1, label="budget")
    ax.set_xlabel("MFLOPs (multiply-adds at 224 px)")
    ax.set_ylabel(f"test accuracy % (mean ± sd of {FINAL_SEEDS} seeds)")
    ax.set_title(f"Picks at {cfg['budget']:g} MFLOPs: {cfg['final_epochs']} ep, "
                 f"{cfg['final_subset_per_class'] or 'all'}/class, t10k", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return buf.getvalue()


# --- the study ---------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset spec, e.g. fashion_mnist:/usr/share/datasets/fashion-mnist")
    p.add_argument("--space", default="search_spaces/demo.yaml")
    p.add_argument("--budget", type=float, required=True, help="MFLOPs (multiply-adds at the space's input size)")
    p.add_argument("--trials", type=int, default=24, help="trials per strategy run")
    p.add_argument("--seeds", type=int, default=3, help="search seeds (0, 1, ...)")
    p.add_argument("--strategies", default="tpe,gp", help=f"comma-separated, of {', '.join(STRATEGIES)}")
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
                   help="smoke run: 3 trials, 2 seeds, 1 proxy and 1 final epoch, 100 images/class")
    args = p.parse_args()
    if args.quick:
        args.trials, args.seeds, args.proxy_epochs, args.final_epochs = 3, 2, 1, 1
        args.proxy_per_class, args.search_per_class, args.final_subset_per_class = 100, 50, 100
    unknown = [s for s in args.strategies.split(",") if s not in STRATEGIES]
    if unknown:
        p.error(f"--strategies: unknown {unknown}; choose of {list(STRATEGIES)}")
    return args


def main() -> None:
    args = parse_args()
    out = Path(args.out or f"runs/{RESULT}{'_quick' if args.quick else ''}")
    stem = Path(args.results or (out if args.quick else "benchmarks/results")) / f"{RESULT}_b{args.budget:g}"
    strategies = args.strategies.split(",")
    space = proxy_space(args, {})
    budget = {"mflops": space.budget.mflops, "input_size": space.budget.input_size,
              "max_params": space.budget.max_params}
    zoo_names = args.zoo.split(",") if args.zoo else default_zoo(budget)
    settings = {"space": args.space, "data": args.data, "budget": args.budget, "budget_record": budget,
                "trials": args.trials, "seeds": args.seeds, "strategies": strategies,
                "strategy_settings": {s: STRATEGIES[s] for s in strategies}, "image_size": args.image_size,
                "proxy_epochs": args.proxy_epochs, "proxy_per_class": args.proxy_per_class,
                "search_per_class": args.search_per_class, "final_epochs": args.final_epochs,
                "final_subset_per_class": args.final_subset_per_class or None, "final_seeds": FINAL_SEEDS,
                "zoo": zoo_names, "runs_dir": str(out), "proxy": space.proxy.to_dict(),
                "notes": ["Random search is extended (resumed with more trials) until its CPU seconds reach the "
                          "costliest strategy's at that seed, at most "
                          f"{MAX_RANDOM_EXTENSION:g}x --trials; the sampler's own time (GP: ~1 s an ask) is "
                          "not in CPU seconds."]}
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

    def search(strategy: str, seed: int, trials: int) -> None:
        name = f"b{args.budget:g}_{strategy}_s{seed}"
        entry = state["runs"].setdefault(name, {"name": name, "strategy": strategy, "seed": seed,
                                                "search_wall_seconds": 0.0})
        log(f"search {name}: {trials} trials")
        t0 = time.monotonic()
        res = shufflesearch.search(proxy_space(args, STRATEGIES.get(strategy, {"sampler": "random"})), name=name,
                                   trials=trials, seed=seed, runs_dir=out, cpus_per_trial=1, progress=log)
        run_config = json.loads((res.run_dir / "config.json").read_text())
        entry.update(run_dir=str(res.run_dir), rows=res.rows, versions=run_config["versions"],
                     command=run_config["command"])
        entry["search_wall_seconds"] += time.monotonic() - t0
        entry.pop("final", None)  # more trials: its picks may change
        save()

    log(f"{args.space} at {args.budget:g} MFLOPs: random and {', '.join(strategies)} x {args.trials} trials, seeds "
        f"0..{args.seeds - 1}; then every pick and the zoo ({', '.join(zoo_names) or 'none within the budget'}) x "
        f"{FINAL_SEEDS} seeds; runs in {out}, results {stem}.*")
    for seed in range(args.seeds):  # the searches first: the finals' candidates depend on all of them
        for strategy in ["random", *strategies]:
            name = f"b{args.budget:g}_{strategy}_s{seed}"
            if "rows" not in state["runs"].get(name, {}):
                search(strategy, seed, args.trials)
        random_run = state["runs"][f"b{args.budget:g}_random_s{seed}"]
        target = max(strategy_cpu(state["runs"][f"b{args.budget:g}_{s}_s{seed}"]) for s in strategies)
        while sum(map(cpu_seconds, random_run["rows"])) < target \
                and len(random_run["rows"]) < MAX_RANDOM_EXTENSION * args.trials:
            spent = sum(map(cpu_seconds, random_run["rows"]))
            more = math.ceil((target - spent) / (spent / len(random_run["rows"])))
            search("random", seed, min(len(random_run["rows"]) + max(more, 1), int(MAX_RANDOM_EXTENSION * args.trials)))
    for seed in range(args.seeds):
        chosen = picks(state, seed)
        for run_name in sorted({p["run"] for p in chosen.values()}):
            entry = state["runs"][run_name]
            numbers = sorted({p["number"] for p in chosen.values() if p["run"] == run_name})
            first = not state["zoo"] and zoo_names
            log(f"final {run_name}: trials {numbers}" + (f" and the zoo {zoo_names}" if first else ""))
            t0 = time.monotonic()
            final = final_evaluation(entry["run_dir"], top=0, trials=numbers, seeds=FINAL_SEEDS,
                                     epochs=args.final_epochs, subset_per_class=args.final_subset_per_class or None,
                                     zoo=zoo_names if first else [], cpus_per_trial=1, export=False, progress=log)
            entry["final_wall_seconds"] = entry.get("final_wall_seconds", 0.0) + time.monotonic() - t0
            entry["final"] = {"rows": final.rows, "summary": final.summary, "dir": str(final.final_dir)}
            if first:
                state["zoo"] = [s for s in final.summary if s["kind"] == "zoo"]
            save()
    publish(state, stem, tables(state), plot, save)
    total = sum(s["wall_seconds"] for s in state["sessions"])
    print(f"\nwall: {total / 60:.1f} min over {len(state['sessions'])} session(s); raw results {raw_path}, "
          f"plot {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
