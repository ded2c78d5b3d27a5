"""Why do v1 paths score low on the supernet? A check of one of the two explanations (issue 12.4).

In the supernet study's space (demo.yaml) each unit position has 6 v1 choice blocks (groups 1/2/4 x
kernel 3/5) against 2 v2 blocks (kernel 3/5), so a v1 block trains on a third of the steps a v2
block does. Here the space is cut to groups 1 and kernel 3: one v1 block and one v2 block per
position, the same number of steps each. If v1 paths still score far below v2 paths, the number of
updates is not the cause. Same data and supernet settings as the study (Fashion-MNIST, 500/class,
32 px, 10 epochs), `--samples` sampled paths of each unit type scored as a search scores them.

    nice -n 19 python benchmarks/supernet_unit_balance.py     # ~4 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from shufflesearch._io import write_json_atomic
from shufflesearch.data import load_data
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._score import load_supernet, run_scorer
from shufflesearch.supernet._train import PathSampler, train_supernet

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=40, help="paths scored per unit type")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args()
    import yaml

    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    data["name"] = "supernet_unit_balance"
    data["shared"].update(groups=1, kernel_size=3)
    data["proxy"].update(dataset=f"fashion_mnist:{args.data}", subset_per_class=500, search_per_class=300)
    data["supernet"] = {"epochs": args.epochs}
    space = SearchSpace.from_dict(data, "supernet_unit_balance (demo.yaml, groups 1, kernel 3)")
    run_dir = ROOT / "runs" / "supernet_unit_balance"
    t0 = time.monotonic()
    train_supernet(space, run_dir, seed=0)
    train_s = time.monotonic() - t0
    data = load_data(space.proxy.data, "search")
    scorer = run_scorer(load_supernet(space, run_dir, data), data, space.supernet, 0, True)
    torch.set_num_threads(1)
    paths = PathSampler(space, seed=12345)  # not the training sequence's seed
    scores: dict[str, list[float]] = {"v1": [], "v2": []}
    step = 0
    while min(len(v) for v in scores.values()) < args.samples:
        arch = paths(step)
        step += 1
        unit = arch.stages[0].unit
        if len(scores[unit]) < args.samples:
            scores[unit].append(scorer.score(arch)[2])
    summary = {u: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
               for u, v in scores.items()}
    blocks = {"stages.0.0": sorted(scorer.net.stages[0][0].keys())}
    print(json.dumps({"blocks": blocks, "summary": summary, "train_s": train_s}, indent=1))
    write_json_atomic(Path(args.out) / "supernet_unit_balance.json",
                      {"config": vars(args), "blocks": blocks, "summary": summary, "scores": scores,
                       "train_s": train_s})


if __name__ == "__main__":
    main()
