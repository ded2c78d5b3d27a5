"""Measured inference latency: `measure_latency` times any `Arch` or module; `trial_latency_ms` is how
every trial, baseline and final job measures it (batch 1, one thread, on the trial's device or
`proxy.latency_device`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import torch
import torch.nn as nn

from shufflesearch._exec._devices import TorchThreads, local_device
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import TrainConfig

# How every trial (and baseline) measures latency: batch 1, one thread, so runs compare; 10 timed runs
# keep it near a tenth of a demo trial's time (30 runs took a quarter of the trial's training time)
TRIAL_LATENCY = {"threads": 1, "warmup": 2, "runs": 10}


def trial_latency_ms(arch: Arch, input_size: int, cfg: TrainConfig) -> float:
    """A trial's (or baseline's) latency: `TRIAL_LATENCY` on `cfg.latency_device`, else the training device."""
    setting = "device" if cfg.latency_device == "trial" else "latency_device"
    device = local_device(getattr(cfg, setting), f"proxy.{setting}")
    return measure_latency(arch, input_size=input_size, device=device, **TRIAL_LATENCY).median_ms


@dataclass(frozen=True)
class Latency:
    """Inference time of one batch: median and 90th percentile over the timed runs."""
    median_ms: float
    p90_ms: float
    channels_last: bool
    batch: int
    device: str


def measure_latency(arch_or_model: Arch | nn.Module, input_size: int | tuple[int, int, int] = 224,
                    batch: int = 1, threads: int = 1, device: str = "cpu", warmup: int = 5,
                    runs: int = 30, num_classes: int = 1000) -> Latency:
    """Time inference of a batch in eval mode, contiguous and channels_last interleaved; keep the faster.

    `input_size` is a square side (3 channels) or (channels, height, width). On CUDA each run is
    synchronised; `threads` sets torch's CPU threads for the measurement.
    """
    from shufflesearch.models._network import build

    chans, h, w = (3, input_size, input_size) if isinstance(input_size, int) else input_size
    if isinstance(arch_or_model, nn.Module):
        base = copy.deepcopy(arch_or_model)
    else:
        base = build(arch_or_model, num_classes=num_classes, in_chans=chans)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x = torch.randn(batch, chans, h, w, device=dev)
    variants = {cl: (copy.deepcopy(base).to(dev, memory_format=fmt).eval(), x.contiguous(memory_format=fmt))
                for cl, fmt in ((False, torch.contiguous_format), (True, torch.channels_last))}
    times: dict[bool, list[float]] = {False: [], True: []}
    with TorchThreads(threads), torch.inference_mode():
        for model, inp in variants.values():
            for _ in range(warmup):
                model(inp)
        sync()
        for _ in range(runs):
            for cl, (model, inp) in variants.items():
                t0 = perf_counter()
                model(inp)
                sync()
                times[cl].append((perf_counter() - t0) * 1e3)
    cl = bool(np.median(times[True]) < np.median(times[False]))
    return Latency(float(np.median(times[cl])), float(np.percentile(times[cl], 90)), cl, batch, device)
