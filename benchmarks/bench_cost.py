"""Genomes per second: analytic `cost()` against building the model and counting with FlopCounterMode.

Two counting baselines, both exact: a real forward pass (CPU tensors) and the same on the meta device
(no arithmetic, only shapes), each building the model first as a search would have to. The workload
is the 29 zoo genomes at 224x224, batch 1; rounds interleave the three so drift hits all alike, and
every round checks that all three agree.

Run: PYTHONPATH=. python benchmarks/bench_cost.py [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from shufflesearch import Arch, build, cost
from shufflesearch.genome._zoo import ZOO

SIZE = 224


def analytic(arch: Arch) -> tuple[int, int]:
    c = cost(arch, SIZE)
    return c.macs, c.params


def counted(arch: Arch, device: str = "cpu") -> tuple[int, int]:
    with torch.device(device):
        model = build(arch).eval()
        x = torch.randn(1, 3, SIZE, SIZE)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=200, help="cost() calls per genome per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = {
        "cost()": lambda a: [analytic(a) for _ in range(args.repeat)][-1],
        "build + FlopCounterMode (meta)": lambda a: counted(a, "meta"),
        "build + FlopCounterMode (cpu)": counted,
    }
    calls = {"cost()": args.repeat, "build + FlopCounterMode (meta)": 1, "build + FlopCounterMode (cpu)": 1}
    seconds = dict.fromkeys(methods, 0.0)
    for _ in range(args.rounds):
        for arch in ZOO.values():
            results = set()
            for name, fn in methods.items():
                start = time.perf_counter()
                results.add(fn(arch))
                seconds[name] += time.perf_counter() - start
            assert len(results) == 1, f"methods disagree on {arch.summary()}: {results}"
    n = args.rounds * len(ZOO)
    rate = {name: n * calls[name] / s for name, s in seconds.items()}
    print(f"{len(ZOO)} zoo genomes x {args.rounds} rounds at {SIZE}x{SIZE}, torch {torch.__version__}, "
          f"{args.threads} threads")
    for name, r in rate.items():
        ratio = "" if name == "cost()" else f"   cost() is x{rate['cost()'] / r:,.0f} faster"
        print(f"  {name:<32} {r:10.1f} genomes/s{ratio}")


if __name__ == "__main__":
    main()
