"""On one CUDA GPU: search trials per hour at 1, 2 and 4 trials per GPU, and our ShuffleNet V2 1.0x
training throughput against torchvision's `shufflenet_v2_x1_0`.

1. Trials per hour. The same random-sampler search (same seed, so the same architectures) runs with
   `--gpus-per-trial` 1, 0.5 and 0.25 on a Ray that owns one GPU, for two spaces: the demo space
   (digits, 32 px) and the demo space on Fashion-MNIST (28 px, `--fashion-per-class` images a class).
   The shares are interleaved round by round; trials/hour = trials / search wall time (Ray is started
   once, before the first search, so its start-up is not counted).
2. Training throughput. Forward + backward + SGD step of our `shufflenet_v2_x1_0` and torchvision's
   (the same network: equal parameters and MACs) at batch `--batch` and 224 px, channels_last, in
   fp32 and bf16 autocast, the two interleaved in one process; prints images/s and ours / torchvision.

    python benchmarks/bench_gpu.py                                  # needs a CUDA GPU
    python benchmarks/bench_gpu.py --trials 8 --rounds 2 --out benchmarks/results/bench_gpu.json

Without CUDA it says so and exits with status 2. `--smoke` runs every part tiny on CPU (no GPU
shares) to check the script itself; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARES = (1.0, 0.5, 0.25)  # GPUs per trial: 1, 2 and 4 trials per GPU


def _space(tmp: Path, name: str, proxy: dict, epochs: int) -> Path:
    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    data["name"] = name
    data["proxy"].update(epochs=epochs, **proxy)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trials_per_hour(args: argparse.Namespace, tmp: Path) -> list[dict]:
    import ray

    import shufflesearch

    spaces = {"demo (digits, 32 px)": _space(tmp, "gpu_demo", {}, args.epochs)}
    if Path(args.fashion).is_dir():
        spaces[f"Fashion-MNIST (28 px, {args.fashion_per_class}/class)"] = _space(
            tmp, "gpu_fashion", {"dataset": f"fashion_mnist:{args.fashion}", "image_size": 28,
                                 "subset_per_class": args.fashion_per_class}, args.epochs)
    else:
        print(f"Fashion-MNIST not found at {args.fashion} (--fashion DIR): that space is left out")
    shares = (0.0,) if args.smoke else SHARES
    cpus = max(2, int(max(1 / s for s in shares if s) if not args.smoke else 1) * args.cpus_per_trial)
    ray.init(address="local", num_cpus=cpus, num_gpus=0 if args.smoke else 1, include_dashboard=False,
             log_to_driver=False)
    rows = []
    try:
        for label, space in spaces.items():
            walls: dict[float, list[float]] = {s: [] for s in shares}
            for r in range(args.rounds):
                for share in (shares if r % 2 == 0 else shares[::-1]):  # interleaved, alternating order
                    started = time.perf_counter()
                    result = shufflesearch.search(
                        space, name=f"{space.stem}_{share:g}_{r}", trials=args.trials, sampler="random",
                        scheduler="none", cpus_per_trial=args.cpus_per_trial, gpus_per_trial=share, seed=0,
                        runs_dir=tmp / "runs", progress=None)
                    walls[share].append(time.perf_counter() - started)
                    done = result.counts["complete"]
                    print(f"  {label}: {share:g} GPU/trial, round {r + 1}: {done}/{args.trials} complete in "
                          f"{walls[share][-1]:.1f}s", flush=True)
            base = statistics.median(walls[shares[0]])
            for share in shares:
                wall = statistics.median(walls[share])
                rows.append({"space": label, "gpus_per_trial": share,
                             "trials_per_gpu": round(1 / share) if share else 0, "trials": args.trials,
                             "wall_s": wall, "trials_per_hour": args.trials / wall * 3600, "speedup": base / wall})
    finally:
        ray.shutdown()
    return rows


def _step_rate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, amp: torch.dtype | None,
               device: torch.device) -> float:
    """Images per second of `steps` SGD training steps (after the caller's warm-up)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    return steps * len(x) / (time.perf_counter() - started)


def throughput(args: argparse.Namespace, device: torch.device) -> list[dict]:
    import torchvision

    import shufflesearch
    from shufflesearch.genome._zoo import ZOO

    size, batch = (32, 8) if args.smoke else (224, args.batch)
    rows = []
    for amp_name, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        models = {
            "ours": shufflesearch.build(ZOO["shufflenet_v2_x1_0"]),
            "torchvision": torchvision.models.shufflenet_v2_x1_0(),
        }
        models = {k: m.to(device, memory_format=torch.channels_last).train() for k, m in models.items()}
        x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (batch,), device=device)
        for m in models.values():
            _step_rate(m, x, y, 3, amp, device)  # warm-up (cuDNN autotuning, allocator)
        rates: dict[str, list[float]] = {k: [] for k in models}
        for r in range(args.throughput_rounds):
            for k in (list(models) if r % 2 == 0 else list(models)[::-1]):
                rates[k].append(_step_rate(models[k], x, y, args.steps, amp, device))
        ours, ref = statistics.median(rates["ours"]), statistics.median(rates["torchvision"])
        rows.append({"amp": amp_name, "batch": batch, "image_size": size, "ours_img_s": ours,
                     "torchvision_img_s": ref, "ratio": ours / ref})
        print(f"  v2 x1.0 training, {amp_name}, batch {batch} at {size} px: ours {ours:,.0f} img/s, "
              f"torchvision {ref:,.0f} img/s, ours / torchvision {ours / ref:.3f}", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8, help="trials per search (default 8)")
    p.add_argument("--epochs", type=int, default=3, help="proxy epochs per trial (default 3)")
    p.add_argument("--rounds", type=int, default=1, help="searches per share and space (default 1)")
    p.add_argument("--cpus-per-trial", type=int, default=2, help="CPUs per trial (default 2)")
    p.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX folder")
    p.add_argument("--fashion-per-class", type=int, default=1000)
    p.add_argument("--batch", type=int, default=128, help="throughput batch at 224 px (default 128)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per measurement (default 30)")
    p.add_argument("--throughput-rounds", type=int, default=5)
    p.add_argument("--out", help="also write the figures as JSON here")
    p.add_argument("--smoke", action="store_true", help="tiny, on CPU: checks the script, measures nothing")
    args = p.parse_args()
    if args.smoke:
        args.trials, args.epochs, args.steps, args.throughput_rounds = 2, 1, 2, 2
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print(f"bench_gpu: needs a CUDA GPU, and torch {torch.__version__} sees none "
              f"({'built without CUDA' if torch.version.cuda is None else 'no device visible'}); nothing measured",
              file=sys.stderr)
        sys.exit(2)
    else:
        device = torch.device("cuda")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (smoke run)"
    print(f"torch {torch.__version__}, {name}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        print("search trials per hour, one GPU shared by 1, 2 and 4 trials:")
        trials = trials_per_hour(args, Path(tmp))
    print("training throughput, ours vs torchvision (interleaved):")
    speed = throughput(args, device)
    print(f"\n{'space':<34} {'trials/GPU':>10} {'wall s':>8} {'trials/h':>9} {'speed-up':>9}")
    for r in trials:
        print(f"{r['space']:<34} {r['trials_per_gpu']:>10} {r['wall_s']:>8.1f} {r['trials_per_hour']:>9.0f} "
              f"{r['speedup']:>8.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "args": vars(args),
                                              "trials": trials, "throughput": speed}, indent=2) + "\n")


if __name__ == "__main__":
    main()
