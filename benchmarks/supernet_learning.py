"""Does the supernet learn on each shipped space? Final training loss and path scores (issue 30.4).

For each space named (default: every shipped one whose supernet fits this machine), trains its supernet on
the space's own proxy data (the embedded digits for the shipped spaces; `--data` for another dataset)
with the space's `supernet:` settings and the overrides given (`--set lr=0.02 warmup_epochs=1 ...`),
then scores `--samples` paths drawn by the space's sampler (another seed than the training's) as a
search scores them: inherited weights, BatchNorm re-estimated, accuracy on the **search-validation**
split. Prints and records, per space: each epoch's mean training loss (train split; chance is
ln(num_classes)), and the best, median and worst path score, overall and per unit type.

Appends to benchmarks/results/supernet_learning.json under `--label` (one entry a label and space).
`--landmarks` (demo space, on the proxy ranking study's data) adds Kendall tau on its 30 landmarks.
`shufflenet_v1_free` is left out by default: its supernet has 828 M parameters.

    nice -n 10 python benchmarks/supernet_learning.py --label shipped
    nice -n 10 python benchmarks/supernet_learning.py --spaces shufflenet_v2 --set warmup_epochs=2 --label warmup2
    nice -n 10 python benchmarks/supernet_learning.py --spaces demo --data fashion_mnist:/usr/share/datasets/fashion-mnist \
        --per-class 500 --landmarks --label fmnist500
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from shufflesearch._io import read_json, write_json_atomic
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._score import run_scorer, supernet_from
from shufflesearch.supernet._train import CHECKPOINT, PathSampler, checkpoint_dir, load_checkpoint, train_supernet

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "supernet_learning.json"
SPACES = ["demo", "mixed", "shufflenet_v1_paper", "shufflenet_v2"]  # shufflenet_v1_free: 828 M parameters


def spread(scores: list[float]) -> dict[str, float]:
    return {"best": max(scores), "median": float(np.median(scores)), "worst": min(scores), "n": len(scores)}


def study(space: SearchSpace, overrides: dict, samples: int, run_dir: Path, seed: int) -> dict:
    """Train `space`'s supernet with `overrides` into `run_dir` (anew), score `samples` paths; the record."""
    cfg = replace(space.supernet, **overrides)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    data = load_data(space.proxy.data, "search")
    t0 = time.monotonic()
    error = None
    try:
        state = train_supernet(space, run_dir, cfg, seed=seed, data=data, progress=None)
    except ShuffleSearchError as e:  # the supernet that did not learn: its state is still there
        error, state = str(e), read_json(checkpoint_dir(run_dir) / "state.json", "state")
    train_s = time.monotonic() - t0
    scores = score_paths(space, cfg, data, run_dir, samples, seed)
    every = [s for v in scores.values() for s in v]
    return {"settings": cfg.training(), "epoch_losses": state["epoch_losses"], "chance_loss": math.log(data.num_classes),
            "steps": state["step"], "train_s": train_s, "error": error, "scores": scores,
            "summary": {"all": spread(every), **{k: spread(v) for k, v in scores.items()}}}


def _scorer(space: SearchSpace, cfg: Any, data: Any, run_dir: Path, seed: int) -> Any:
    """A path scorer of the supernet in `run_dir`, trained to its end (whether it learned or not)."""
    weights = {k[len("model."):]: v for k, v in load_checkpoint(checkpoint_dir(run_dir) / CHECKPOINT)[0].items()
               if k.startswith("model.")}
    return run_scorer(supernet_from(space, weights, data), data, cfg, seed, space.proxy.train.channels_last)


def score_paths(space: SearchSpace, cfg: Any, data: Any, run_dir: Path, samples: int, seed: int) -> dict[str, list]:
    """Search-val scores of `samples` paths drawn by another seed than the training's, by unit types."""
    scorer = _scorer(space, cfg, data, run_dir, seed)
    paths = PathSampler(space, seed=12345)
    scores: dict[str, list[float]] = {}
    for step in range(samples):
        arch = paths(step)
        kind = "+".join(sorted({s.unit for s in arch.stages}))
        scores.setdefault(kind, []).append(scorer.score(arch)[2])
    return scores


def landmark_tau(space: SearchSpace, cfg: Any, data: Any, run_dir: Path, seed: int, bootstrap: int) -> dict:
    """Kendall tau (95% bootstrap interval) of the supernet's search-val scores of the proxy ranking study's
    30 demo-space landmarks against their reference test accuracy: all of them, the v1 paths, the v2 paths;
    beside the shipped proxy's and FLOPs' (the study's `rank_table`, as supernet_study.py computes it)."""
    import sys

    from shufflesearch.genome import Arch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from proxy_ranking_study import rank_table

    ranking = json.loads((ROOT / "benchmarks" / "results" / "proxy_ranking_study.json").read_text())
    config, jobs = ranking["config"], ranking["jobs"]
    archs = {k: Arch.from_json(v) for k, v in config["archs"].items() if k not in config["zoo"]}
    ref = {k: float(np.mean([jobs[f"{k}/reference/{s}"]["acc"] for s in config["ref_seeds"]])) for k in archs}
    proxy = {k: jobs[f"{k}/e6_n500_r32/{config['proxy_seed']}"]["acc"] for k in archs}
    scorer = _scorer(space, cfg, data, run_dir, seed)
    scores = {k: scorer.score(a)[2] for k, a in archs.items()}
    out: dict = {"supernet_scores": scores, "reference": ref}
    for group in ("all", "v1", "v2"):
        names = sorted(k for k in archs if group in ("all", archs[k].stages[0].unit))
        target = np.array([ref[k] for k in names])
        table = {"supernet": (np.array([scores[k] for k in names]), target),
                 "proxy": (np.array([proxy[k] for k in names]), target),
                 "flops": (np.array([space.cost(archs[k]).macs for k in names], dtype=float), target)}
        out[group] = {"n": len(names), **rank_table(table, bootstrap, 0)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", nargs="+", default=SPACES)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="supernet: settings to override (YAML values)")
    p.add_argument("--data", help="dataset spec instead of the space's (e.g. fashion_mnist:/usr/share/datasets/fashion-mnist)")
    p.add_argument("--per-class", type=int, help="training images per class (with --data)")
    p.add_argument("--samples", type=int, default=60, help="paths scored per space")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--landmarks", action="store_true",
                   help="demo space: also tau on the proxy ranking study's 30 landmarks (use its data: --data "
                        "fashion_mnist:DIR --per-class 500)")
    p.add_argument("--label", required=True)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    torch.set_num_threads(1)
    out = Path(args.out)
    for name in args.spaces:
        raw = yaml.safe_load((ROOT / "search_spaces" / f"{name}.yaml").read_text())
        if args.data:
            raw["proxy"].update(dataset=args.data, subset_per_class=args.per_class, search_per_class=300)
        space = SearchSpace.from_dict(raw, f"search_spaces/{name}.yaml")
        record = study(space, overrides, args.samples, ROOT / "runs" / "supernet_learning" / f"{args.label}_{name}", args.seed)
        record["data"] = space.proxy.data.dataset
        if args.landmarks:
            run_dir = ROOT / "runs" / "supernet_learning" / f"{args.label}_{name}"
            cfg = replace(space.supernet, **overrides)
            record["landmarks"] = landmark_tau(space, cfg, load_data(space.proxy.data, "search"), run_dir, args.seed,
                                               2000)
            for group in ("all", "v1", "v2"):
                st = record["landmarks"][group]["supernet"]
                print(f"{args.label} {name} landmarks {group} (n={record['landmarks'][group]['n']}): tau "
                      f"{st['tau']:+.3f} [{st['tau_ci'][0]:+.3f}, {st['tau_ci'][1]:+.3f}]", flush=True)
        results = json.loads(out.read_text()) if out.exists() else {}  # read again: other runs may have written
        results.setdefault(args.label, {})[name] = record
        write_json_atomic(out, results)
        s = record["summary"]
        losses = " ".join(f"{v:.2f}" for v in record["epoch_losses"])
        print(f"{args.label} {name}: loss/epoch {losses} (chance {record['chance_loss']:.2f}); search-val "
              + "; ".join(f"{k} best {v['best']:.3f} median {v['median']:.3f} (n={v['n']})" for k, v in s.items())
              + f"; {record['train_s']:.0f}s" + (f"; ERROR {record['error']}" if record["error"] else ""), flush=True)


if __name__ == "__main__":
    main()
