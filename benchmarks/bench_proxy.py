"""Proxy training throughput, and how much of the machine's fp32 matmul rate it achieves.

For a v1 and a v2 model, `train_proxy` on digits at the proxy size reports images/s; achieved GFLOP/s
counts 3 x forward MACs x 2 FLOPs per image (forward, input grad, weight grad). The reference is a
square fp32 matmul on the same threads, measured in the same process between the trainings; the
ratio says how far depthwise / grouped convs at tiny resolutions sit from peak. Also prints the
channels_last speed-up the trainer relies on.

    PYTHONPATH=. python benchmarks/bench_proxy.py [--threads 1] [--image-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from shufflesearch import TrainConfig, cost, load_data, train_proxy
from shufflesearch.genome._zoo import ZOO

MODELS = ("shufflenet_v1_g3_x0_5", "shufflenet_v2_x0_5")


def matmul_gflops(threads: int, n: int = 1024, runs: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times) / 1e9


def train_images_per_s(name: str, data, threads: int, channels_last: bool, epochs: int) -> float:
    cfg = TrainConfig(epochs=epochs, threads=threads, channels_last=channels_last)
    result = train_proxy(ZOO[name], data, cfg)
    return statistics.median(m["images_per_s"] for m in result.history[1:])  # epoch 1 warms up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    data = load_data("digits", image_size=args.image_size)
    print(f"torch {torch.__version__}, {args.threads} thread(s); {data.summary()}")
    print(f"{'model':<24} {'MMACs':>6} {'img/s':>7} {'GFLOP/s':>8} {'matmul':>7} {'ratio':>6} {'NCHW img/s':>10}")
    for name in MODELS:
        macs = cost(ZOO[name], data.image_size, data.num_classes, data.in_chans).macs
        peak = [matmul_gflops(args.threads)]
        ips = train_images_per_s(name, data, args.threads, True, args.epochs)
        peak.append(matmul_gflops(args.threads))
        nchw = train_images_per_s(name, data, args.threads, False, args.epochs)
        peak.append(matmul_gflops(args.threads))
        achieved = ips * 3 * macs * 2 / 1e9
        mm = statistics.median(peak)
        print(f"{name:<24} {macs / 1e6:6.2f} {ips:7.0f} {achieved:8.2f} {mm:7.1f} {achieved / mm:6.1%} "
              f"{nchw:10.0f}")


if __name__ == "__main__":
    main()
