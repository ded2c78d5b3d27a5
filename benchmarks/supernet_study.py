"""One-shot (supernet) evaluator against the proxy on Fashion-MNIST: wall time, ranking fidelity, final accuracy
(issue 12.4).

Space and data: search_spaces/demo.yaml (30 MFLOPs) on Fashion-MNIST with the shipped proxy's data as the
proxy ranking study ran it (500 training images per class, 300 search-validation images per class,
32 px): one configuration for both evaluators. Both searches use Optuna's RandomSampler (the same seed),
so neither gains from the sampler, and run on this machine's local Ray (2 CPUs here).

1. Supernet: `search(evaluator="supernet")`, which trains the supernet (`--supernet-epochs`,
   `--supernet-threads`, by default the space's 1: 2 threads step no faster here, and the search starts
   its scoring actors on the other core meanwhile; the space's other `supernet:` defaults), then scores
   `--candidates` candidates (BN re-estimation on 8 batches of 64 training images, then the 3,000
   search-validation images). Timed as a whole; the training's share from its state.json.
2. Proxy: `search(evaluator="proxy")` for `--proxy-trials` trials (the shipped 6-epoch proxy). Timed.
   Steps 1 and 2 run `--pairs` times, interleaved in ABBA order (supernet then proxy, then proxy then
   supernet, ...), each from empty run folders, so a drift in this machine's speed (runs of the same work
   differ by up to 30% here) weighs on both; the ratio is of the summed wall times, each pair's beside it.
3. Fidelity: the proxy ranking study's 30 sampled demo-space architectures (its landmarks; the 5 zoo
   models there are not paths of this space) are scored on the trained supernet; Kendall tau against
   their reference accuracy (8 epochs x 1,200/class, t10k, mean of 2 seeds, from
   benchmarks/results/proxy_ranking_study_landmarks.json) with a 95% bootstrap interval, beside the shipped
   proxy's tau and FLOPs' tau on the same 30 (the study's own numbers, same resamples: the study's
   `rank_table`); `stats_in_band` the same on its landmarks at >= 70% of the budget (the stratified ones
   there and the in-band samples), where a search decides.
4. Final: `final_evaluation` (top 1, 1 seed, the ranking study's reference protocol: 8 epochs x 1,200
   training images per class, scored on t10k) of each search's best, and of the zoo model of best
   reference accuracy in the ranking study.

Writes benchmarks/results/supernet_study.json (or --out; supernet_study_e<E>.json for a supernet of
other than 10 epochs) and prints a Markdown table. `--fidelity-only` does step 3 alone for a supernet of
`--supernet-epochs` (supernet_study_fidelity_e<E>.json).

    python benchmarks/supernet_study.py                      # ~12 min on an idle 2-core machine
    python benchmarks/supernet_study.py --quick              # smoke run to runs/, ~2 min
    nice -n 19 python benchmarks/supernet_study.py --fidelity-only --supernet-epochs 40
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

import shufflesearch
from shufflesearch._io import write_json_atomic
from shufflesearch.data import load_data
from shufflesearch.evaluation._final import final_evaluation
from shufflesearch.runs._records import package_versions
from shufflesearch.space._configs import SupernetConfig
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._score import load_supernet, run_scorer
from shufflesearch.supernet._train import read_state, train_supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_ranking_study import rank_table  # noqa: E402  (the ranking study's statistics, reused)

ROOT = Path(__file__).resolve().parents[1]
RANKING = ROOT / "benchmarks" / "results" / "proxy_ranking_study.json"
LANDMARKS = ROOT / "benchmarks" / "results" / "proxy_ranking_study_landmarks.json"  # its finished landmarks, band too
SHIPPED_PROXY = "e6_n500_r32"


def study_space(data_dir: str, supernet_epochs: int, per_class: int, threads: int) -> SearchSpace:
    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    data["name"] = "supernet_study"
    data["proxy"].update(dataset=f"fashion_mnist:{data_dir}", subset_per_class=per_class, search_per_class=300)
    data["search"].update(sampler="random")
    data["supernet"] = {"epochs": supernet_epochs, "threads": threads}
    return SearchSpace.from_dict(data, "supernet_study (demo.yaml on Fashion-MNIST)")


def every(n: int):
    """A progress printer that keeps the supernet's lines and every n-th trial line."""
    def emit(line: str) -> None:
        if not line.startswith("[") or int(line[1:line.index("/")]) % n == 0:
            print(line, flush=True)
    return emit


def landmarks() -> tuple[dict[str, shufflesearch.Arch], dict[str, float], dict[str, float], dict[str, dict]]:
    """The ranking study's sampled architectures (stratified and in-band), their mean reference accuracy,
    shipped-proxy accuracy and landmark records (source, in_band), from its landmarks file."""
    marks = {k: v for k, v in json.loads(LANDMARKS.read_text())["landmarks"].items() if v["source"] != "zoo"}
    archs = {k: shufflesearch.Arch.from_json(v["arch"]) for k, v in marks.items()}
    return (archs, {k: v["reference_mean"] for k, v in marks.items()},
            {k: v["proxy_acc"][SHIPPED_PROXY] for k, v in marks.items()}, marks)


def best_zoo(ranking: dict) -> str:
    jobs, seeds = ranking["jobs"], ranking["config"]["ref_seeds"]
    return max(ranking["config"]["zoo"], key=lambda z: np.mean([jobs[f"{z}/reference/{s}"]["acc"] for s in seeds]))


def fidelity(space: SearchSpace, run_dir: Path, ranking: dict, bootstrap: int) -> dict:
    """Supernet scores of the ranking study's landmarks; tau/rho with intervals beside the proxy's and FLOPs'."""
    import torch

    archs, ref, proxy, marks = landmarks()
    data = load_data(space.proxy.data, "search")
    scorer = run_scorer(load_supernet(space, run_dir, data), data, space.supernet, space.search.seed,
                        space.proxy.train.channels_last)
    torch.set_num_threads(1)
    scores = {k: scorer.score(a)[2] for k, a in archs.items()}
    out: dict = {"supernet_scores": scores, "reference": ref, "proxy": proxy}
    # stats: the stratified samples across [min_fraction, 1] x budget, as before; stats_in_band: cost >= the band
    for key, keep in (("stats", lambda m: m["source"] == "stratified"), ("stats_in_band", lambda m: m["in_band"])):
        names = sorted(k for k in archs if keep(marks[k]))
        target = np.array([ref[k] for k in names])
        table = {"supernet": (np.array([scores[k] for k in names]), target),
                 "proxy": (np.array([proxy[k] for k in names]), target),
                 "flops": (np.array([space.cost(archs[k]).macs for k in names], dtype=float), target)}
        out[key] = rank_table(table, bootstrap, 0)
        for name, st in out[key].items():
            print(f"{key} ({len(names)}) {name:>9}: tau {st['tau']:+.3f} [{st['tau_ci'][0]:+.3f}, "
                  f"{st['tau_ci'][1]:+.3f}]  top-1 regret {100 * st['regret1']:.2f} pt", flush=True)
    return out


def fresh(runs: Path) -> None:
    """Remove a previous run's folder `runs`: times are of fresh runs (a resumed one times only what was missing)."""
    if runs.exists():
        print(f"removing the previous run: {runs}", flush=True)
        shutil.rmtree(runs)


def timed_supernet(space: SearchSpace, runs: Path, candidates: int) -> tuple[shufflesearch.SearchResult, dict]:
    """A supernet search (it trains the supernet, then scores `candidates` on it) from an empty run folder; the
    result and the times: the whole call, the training's (its state.json), the rest (Ray, scoring)."""
    fresh(runs / "supernet")
    t0 = time.monotonic()
    sn = shufflesearch.search(space, name="supernet", trials=candidates, evaluator="supernet", runs_dir=runs,
                              scheduler="none", progress=every(100))
    total_s = time.monotonic() - t0
    state = read_state(sn.run_dir)
    return sn, {"supernet_train_s": state["seconds"], "supernet_scoring_s": total_s - state["seconds"],
                "supernet_total_s": total_s, "candidates": len(sn.rows), "supernet_steps": state["step"]}


def timed_proxy(space: SearchSpace, runs: Path, trials: int) -> tuple[shufflesearch.SearchResult, dict]:
    """A proxy search of `trials` from an empty run folder, every trial trained in full; the result and its time."""
    fresh(runs / "proxy")
    t0 = time.monotonic()
    px = shufflesearch.search(space, name="proxy", trials=trials, evaluator="proxy", runs_dir=runs,
                              scheduler="none", progress=every(1))
    return px, {"proxy_s": time.monotonic() - t0, "proxy_trials": len(px.rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=1000)
    p.add_argument("--proxy-trials", type=int, default=24)
    p.add_argument("--pairs", type=int, default=2, help="interleaved (supernet, proxy) timings, in ABBA order")
    p.add_argument("--supernet-epochs", type=int, default=10)
    p.add_argument("--supernet-threads", type=int, default=SupernetConfig().threads,
                   help="torch threads of the supernet's training (default: the space's, 1)")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", help="results folder (default benchmarks/results; --quick: runs/supernet_study_quick)")
    p.add_argument("--final-epochs", type=int, default=8, help="final training epochs (the ranking study's reference)")
    p.add_argument("--final-per-class", type=int, default=1200, help="final training images per class (ditto)")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--fidelity-only", action="store_true",
                   help="train the supernet (--supernet-epochs) and score the landmarks only; no searches")
    p.add_argument("--quick", action="store_true", help="smoke run: 40 candidates, 2 proxy trials, 1 epoch, 50/class")
    args = p.parse_args()
    if args.quick:
        args.candidates, args.proxy_trials, args.supernet_epochs, args.final_epochs, args.final_per_class = 40, 2, 1, 1, 50
    out = Path(args.out or (ROOT / "runs" / "supernet_study_quick" if args.quick else ROOT / "benchmarks" / "results"))
    runs = ROOT / "runs" / ("supernet_study_quick" if args.quick else "supernet_study")
    space = study_space(args.data, args.supernet_epochs, 50 if args.quick else 500, args.supernet_threads)
    ranking = json.loads(RANKING.read_text())
    results: dict = {"config": {**vars(args), "space": space.to_yaml(), "ranking_study": str(RANKING.relative_to(ROOT)),
                                "versions": package_versions()}}

    if args.fidelity_only:  # a longer-trained supernet's ranking, without the searches
        run_dir = runs.with_name(f"{runs.name}_e{args.supernet_epochs}")
        fresh(run_dir)
        t0 = time.monotonic()
        results["state"] = train_supernet(space, run_dir, seed=space.search.seed)
        results["supernet_train_s"] = time.monotonic() - t0
        results["fidelity"] = fidelity(space, run_dir, ranking, args.bootstrap)
        write_json_atomic(out / f"supernet_study_fidelity_e{args.supernet_epochs}.json", results)
        return
    fresh(runs)
    t0 = time.monotonic()
    pairs, found = [], {}
    for i in range(args.pairs):
        pair: dict = {"order": ["supernet", "proxy"] if i % 2 == 0 else ["proxy", "supernet"]}
        for which in pair["order"]:
            found[which], times = (timed_supernet(space, runs, args.candidates) if which == "supernet"
                                   else timed_proxy(space, runs, args.proxy_trials))
            pair.update(times)
        pair["ratio_supernet_over_proxy"] = pair["supernet_total_s"] / pair["proxy_s"]
        pairs.append(pair)
    sn, px = found["supernet"], found["proxy"]
    sums = {k: sum(pair[k] for pair in pairs)
            for k in ("supernet_train_s", "supernet_scoring_s", "supernet_total_s", "proxy_s")}
    results["wall"] = {**{f"{k[:-2]}_mean_s": v / len(pairs) for k, v in sums.items()},
                       "candidates": pairs[-1]["candidates"], "proxy_trials": pairs[-1]["proxy_trials"],
                       "supernet_steps": pairs[-1]["supernet_steps"], "pairs": pairs,
                       "ratio_supernet_over_proxy": sums["supernet_total_s"] / sums["proxy_s"]}
    print(json.dumps(results["wall"], indent=1), flush=True)

    results["fidelity"] = fidelity(space, sn.run_dir, ranking, args.bootstrap)

    zoo = best_zoo(ranking)
    final = {}
    for label, result, zoo_names in (("supernet", sn, [zoo]), ("proxy", px, [])):
        f = final_evaluation(result.run_dir, top=1, seeds=1, zoo=zoo_names, epochs=args.final_epochs,
                             subset_per_class=args.final_per_class, progress=print)
        for s in f.summary:
            final[label if s["kind"] == "found" else s["name"]] = {
                "test_acc": s["test_acc_mean"], "mflops": s["mflops"], "summary": s["summary"],
                "search_acc": s.get("search_acc")}
    results["final"] = final
    results["wall_total_s"] = time.monotonic() - t0
    default_epochs = args.supernet_epochs == p.get_default("supernet_epochs")
    name = "supernet_study" if default_epochs else f"supernet_study_e{args.supernet_epochs}"
    write_json_atomic(out / f"{name}.json", results)

    w = results["wall"]
    print(f"\n| | wall | result |\n|---|---|---|\n"
          f"| supernet: train ({w['supernet_steps']} steps) + score {w['candidates']} candidates | "
          f"{w['supernet_train_mean_s']:.0f} s + {w['supernet_scoring_mean_s']:.0f} s | "
          f"top-1 test acc {final['supernet']['test_acc']:.4f} |\n"
          f"| proxy: {w['proxy_trials']} trials | {w['proxy_mean_s']:.0f} s | "
          f"top-1 test acc {final['proxy']['test_acc']:.4f} |\n"
          f"| zoo: {zoo} | | test acc {final[zoo]['test_acc']:.4f} |")
    each = ", ".join(f"{pair['ratio_supernet_over_proxy']:.2f}" for pair in w["pairs"])
    print(f"supernet / proxy wall, summed over {len(w['pairs'])} interleaved pairs: "
          f"{w['ratio_supernet_over_proxy']:.2f} (each pair: {each})")


if __name__ == "__main__":
    main()
