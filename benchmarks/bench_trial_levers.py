"""Trial throughput levers (issue 13, point 4): what each would change in trials per hour, and in ranks.

For `--archs` architectures sampled from the demo space (RandomSampler, seed 0) and each lever, one
proxy training (`train_proxy`, digits or `--data`, the space's proxy settings, 1 thread) per
architecture, levers interleaved architecture by architecture so machine load hits all alike:

* `default`: the shipped trainer (fp32, channels_last, batch 64, BN re-estimation on 512 images);
* `bf16`: bf16 autocast (`amp: bf16`), where the CPU supports it;
* `batch128`, `batch32`: another batch size (same epochs, so fewer / more steps);
* `no_bn_recal`: without the BN re-estimation before each evaluation (what that costs);
* `threads2`: one trial on 2 threads (against two 1-thread trials in parallel on 2 cores: its trials
  per hour are 1 / seconds against 2 / the default's seconds).

Printed per lever: the seconds of a trial (train + eval, mean over architectures), trials per hour on
`--cores` cores against the default (the speed-up), and Kendall tau between its search accuracies and
the default's over the architectures (the issue's bar for adopting a lever is 1.3x at tau >= 0.9; on
this handful of architectures tau is indicative only). Then torch.compile on one architecture: its
compile time and its eager/compiled step-time ratio at the proxy batch.

    python benchmarks/bench_trial_levers.py [--archs 6] [--data digits] [--out results/trial_levers.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from scipy.stats import kendalltau

import shufflesearch
from shufflesearch.data import load_data
from shufflesearch.runs._records import package_versions

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "demo.yaml"
LEVERS = {
    "default": {},
    "bf16": {"amp": "bf16"},
    "batch128": {"batch_size": 128},
    "batch32": {"batch_size": 32},
    "no_bn_recal": {"bn_recalibration": 0},
    "threads2": {"threads": 2},
}


def compile_probe(arch: shufflesearch.Arch, num_classes: int, size: int, batch: int, steps: int = 20) -> dict:
    """Compile time of one architecture and its eager / compiled training-step time ratio (1 thread)."""
    torch.set_num_threads(1)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,))

    def step_time(model: torch.nn.Module, n: int) -> float:
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        t0 = time.perf_counter()
        for _ in range(n):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return (time.perf_counter() - t0) / n

    eager = shufflesearch.build(arch, num_classes=num_classes).to(memory_format=torch.channels_last)
    step_time(eager, 3)
    eager_s = step_time(eager, steps)
    compiled = torch.compile(shufflesearch.build(arch, num_classes=num_classes).to(memory_format=torch.channels_last))
    t0 = time.perf_counter()
    step_time(compiled, 1)  # the first step compiles forward and backward
    compile_s = time.perf_counter() - t0
    compiled_s = step_time(compiled, steps)
    return {"arch": arch.summary(), "compile_seconds": compile_s, "eager_step_s": eager_s,
            "compiled_step_s": compiled_s, "speedup": eager_s / compiled_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=6)
    parser.add_argument("--data", default=None, help="dataset spec (default: the demo space's digits)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "trial_levers.json"))
    args = parser.parse_args()
    space = shufflesearch.SearchSpace.from_yaml(SPACE)
    data_cfg = replace(space.proxy.data, spec=args.data) if args.data else space.proxy.data
    data = load_data(data_cfg)
    archs = space.random_sample(args.archs)
    runs = {lever: [] for lever in LEVERS}
    for i, arch in enumerate(archs):
        for lever, change in LEVERS.items():
            result = shufflesearch.train_proxy(arch, data, replace(space.proxy.train, **change))
            runs[lever].append({"seconds": result.train_seconds + result.eval_seconds,
                                "train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds,
                                "search_acc": result.final["search_acc"] if result.final else None})
        print(f"architecture {i + 1}/{len(archs)}: {arch.summary()}", flush=True)
    base = statistics.fmean(r["seconds"] for r in runs["default"])
    base_acc = [r["search_acc"] for r in runs["default"]]
    table = {}
    print(f"\n{'lever':<12} {'s/trial':>8} {'trials/h':>9} {'speed-up':>9} {'tau vs default':>15}  eval share")
    for lever, rows in runs.items():
        seconds = statistics.fmean(r["seconds"] for r in rows)
        parallel = 1 if lever == "threads2" else args.cores
        per_hour = parallel * 3600 / seconds
        tau = kendalltau(base_acc, [r["search_acc"] for r in rows]).statistic if lever != "default" else 1.0
        share = statistics.fmean(r["eval_seconds"] / r["seconds"] for r in rows)
        table[lever] = {"seconds": seconds, "trials_per_hour": per_hour,
                        "speedup": per_hour / (args.cores * 3600 / base), "tau": tau, "eval_share": share}
        print(f"{lever:<12} {seconds:8.2f} {per_hour:9.0f} {table[lever]['speedup']:8.2f}x {tau:15.2f}  {share:.0%}")
    probe = None
    if not args.no_compile:
        try:
            probe = compile_probe(archs[0], data.num_classes, data.train_x.shape[-1], space.proxy.train.batch_size)
            print(f"\ntorch.compile on {probe['arch']}: {probe['compile_seconds']:.1f} s to compile, step "
                  f"{probe['eager_step_s'] * 1e3:.1f} ms eager vs {probe['compiled_step_s'] * 1e3:.1f} ms compiled "
                  f"({probe['speedup']:.2f}x)")
        except Exception as e:  # an inductor without a C++ compiler, say: report it, do not hide it
            probe = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            print(f"\ntorch.compile failed: {probe['error']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "versions": package_versions(),
                                          "archs": [a.to_dict() for a in archs], "runs": runs, "table": table,
                                          "compile": probe}, indent=1))


if __name__ == "__main__":
    main()
