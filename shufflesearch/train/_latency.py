"""Measured inference latency, one timing loop (`Timer.times`) under all of it.

`measure` is how a latency budget is checked on its target (`budget.latency`, `LatencySettings`): torch
eager or the model exported to ONNX and run by ONNX Runtime, threads pinned, the median, IQR and 90th
percentile of the timed runs, and the fingerprint of what the numbers depend on (`fingerprint`).
`measure_latency` times any `Arch` or module with torch; `trial_latency_ms` is how every trial,
baseline and final job measures it (batch 1, one thread, on the trial's device or
`proxy.latency_device`). Latency tables (`_latency_table`) time a network's parts with the same
`Timer`.

Hand-written because neither torch nor ONNX Runtime ships a timer: `torch.utils.benchmark.Timer` times
one statement at a time (the two memory formats must be interleaved, so that load on a shared machine
hits both alike) and reports no percentiles of single runs.

The clock (`clock_for`): a run on the CPU with one thread is timed by the thread's CPU time
(`time.thread_time`), any other by wall time (`perf_counter`, CUDA synchronised). With one thread, torch
and ONNX Runtime compute in the calling thread, so its CPU time is the run's time with a core to itself:
on a shared machine (trials training beside the measurement, other users) wall time also counts the
time other processes held the core. Where no other process takes the core the two agree (on this
project's 2-core machine: medians within 1-4%, both backends).
"""

from __future__ import annotations

import copy
import os
import platform
from dataclasses import asdict, dataclass
from time import perf_counter, thread_time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from shufflesearch._exec._devices import TorchThreads, local_device
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import LatencySettings, TrainConfig

# How every trial (and baseline) measures latency: batch 1, one thread, so runs compare; 10 timed runs
# keep it near a tenth of a demo trial's time (30 runs took a quarter of the trial's training time)
TRIAL_LATENCY = {"threads": 1, "warmup": 2, "runs": 10}
ORT_MISSING = 'budget.latency.backend = \'onnxruntime\' needs ONNX Runtime: pip install "shufflesearch[onnx]"'
# the torch backend's memory formats, each tried and the faster kept
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


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


@dataclass(frozen=True)
class Measurement:
    """A latency measured on a budget's target (`measure`): the spread of `runs` timed runs of a batch
    of `batch` images of `input_size` pixels, and the `fingerprint` of where and how."""
    median_ms: float
    iqr_ms: float  # 75th - 25th percentile
    p90_ms: float
    runs: int
    backend: str  # 'torch' or 'onnxruntime'
    batch: int
    threads: int
    input_size: int
    device: str  # 'cpu' or 'cuda'
    fingerprint: dict
    clock: str = "wall"  # 'thread_cpu' (one CPU thread: its CPU time) or 'wall' (`clock_for`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clock_for(device: str, threads: int) -> str:
    """'thread_cpu' for one thread on the CPU, else 'wall' (see the module docstring)."""
    return "thread_cpu" if device == "cpu" and threads == 1 else "wall"


CLOCKS = {"thread_cpu": thread_time, "wall": perf_counter}


@dataclass(frozen=True)
class Timer:
    """A model ready to time: one call per variant (torch: a memory format, `FORMATS`; ONNX Runtime: its
    session), timed by `clock` with `threads` torch threads, each run followed by `sync`."""
    calls: dict[str, Callable[[], Any]]
    clock: str
    threads: int
    sync: Callable[[], Any] = lambda: None

    def times(self, warmup: int, runs: int) -> dict[str, list[float]]:
        """The one timing loop: `warmup` untimed calls of each variant, then `runs` rounds timing each
        once (interleaved, so load on a shared machine hits them alike); milliseconds per run."""
        now = CLOCKS[self.clock]
        with TorchThreads(self.threads), torch.inference_mode():
            for call in self.calls.values():
                for _ in range(warmup):
                    call()
            self.sync()
            times: dict[str, list[float]] = {k: [] for k in self.calls}
            for _ in range(runs):
                for key, call in self.calls.items():
                    t0 = now()
                    call()
                    self.sync()
                    times[key].append((now() - t0) * 1e3)
        return times


def torch_timer(model: nn.Module, shape: tuple[int, int, int], batch: int, threads: int, device: str) -> Timer:
    """Eval-mode copies of `model` in each memory format (`FORMATS`) on `device`, on a batch of `shape`
    (channels, height, width) inputs; `model` is left as it was."""
    dev = torch.device(device)
    x = torch.randn(batch, *shape, device=dev)
    variants = {name: (copy.deepcopy(model).to(dev, memory_format=fmt).eval(), x.contiguous(memory_format=fmt))
                for name, fmt in FORMATS.items()}
    return Timer({name: (lambda m=m, inp=inp: m(inp)) for name, (m, inp) in variants.items()},
                 clock_for(dev.type, threads), threads, torch.cuda.synchronize if dev.type == "cuda" else lambda: None)


def ort_timer(model: nn.Module, shape: tuple[int, int, int], batch: int, threads: int) -> Timer:
    """`model` exported to ONNX (in memory) in an ONNX Runtime CPU session with `threads` intra-op
    threads, one inter-op thread, sequential execution, on a batch of `shape` inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ShuffleSearchError(ORT_MISSING) from None
    from shufflesearch.models._folder import onnx_bytes

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: no warnings about the initialisers ONNX export keeps
    session = ort.InferenceSession(onnx_bytes(copy.deepcopy(model), shape), options,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)
    return Timer({"onnxruntime": lambda: session.run(None, {"input": x})}, clock_for("cpu", threads), threads)


def timer(model: nn.Module, settings: LatencySettings, shape: tuple[int, int, int], device: str) -> Timer:
    """`model` ready to time as `settings` say (backend, batch, threads) on `device`."""
    if settings.backend == "onnxruntime":
        return ort_timer(model, shape, settings.batch, settings.threads)
    return torch_timer(model, shape, settings.batch, settings.threads, device)


def latency_device(settings: LatencySettings) -> str:
    """Where `settings` measure in this process: 'cuda' for the cuda target, else 'cpu'."""
    return "cuda" if settings.target == "cuda" else "cpu"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# the fingerprint fields a latency measured elsewhere must match to stand in for one measured here
FINGERPRINT_KEYS = ("cpu_model", "machine", "torch", "onnxruntime", "threads", "gpu")


def fingerprint(settings: LatencySettings) -> dict[str, Any]:
    """What a latency measured with `settings` in this process depends on: the CPU model, machine
    architecture, OS, logical CPUs, Python, torch (and ONNX Runtime for that backend) versions, the
    backend, threads and batch, and the GPU's name on the cuda target."""
    fp: dict[str, Any] = {
        "cpu_model": _cpu_model(), "machine": platform.machine(), "os": f"{platform.system()} {platform.release()}",
        "logical_cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "backend": settings.backend, "threads": settings.threads, "batch": settings.batch,
    }
    if settings.backend == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            raise ShuffleSearchError(ORT_MISSING) from None
        fp["onnxruntime"] = onnxruntime.__version__
    if latency_device(settings) == "cuda":
        local_device("cuda", "budget.latency.target")
        fp["gpu"] = torch.cuda.get_device_name()
    return fp


def check_backend(settings: LatencySettings) -> str:
    """The device `settings` measure on here; one line when their target cannot run their backend."""
    device = latency_device(settings)
    if device == "cuda":
        local_device("cuda", "budget.latency.target")
        if settings.backend == "onnxruntime":
            raise ShuffleSearchError("budget.latency.backend = 'onnxruntime': runs on the CPU (ONNX Runtime's "
                                     "CPUExecutionProvider); target 'cuda' takes backend 'torch'")
    return device


def spread(times: list[float]) -> tuple[float, float, float]:
    """(median, interquartile range, 90th percentile) of run times."""
    q25, median, q75, p90 = np.percentile(times, [25, 50, 75, 90])
    return float(median), float(q75 - q25), float(p90)


def measure(model: Arch | nn.Module, settings: LatencySettings, input_size: int, num_classes: int = 1000,
            in_chans: int = 3) -> Measurement:
    """Measure `model` in this process as `settings` say: on `latency_device(settings)`, threads pinned,
    `settings.warmup` untimed then `settings.runs` timed runs of a batch of `settings.batch`.

    Args:
        model: An `Arch` (built with `num_classes` outputs and `in_chans` input channels) or a module
            (left as it was).
        settings: The budget's `budget.latency` settings: backend, batch, threads, warmup, runs.
        input_size: The square input side in pixels (`Budget.latency_size`).
        num_classes: Classifier outputs of a built `Arch`.
        in_chans: Input image channels.
    """
    from shufflesearch.models._network import build

    device = check_backend(settings)
    module = build(model, num_classes=num_classes, in_chans=in_chans) if isinstance(model, Arch) else model
    s = settings
    times = min(timer(module, s, (in_chans, input_size, input_size), device).times(s.warmup, s.runs).values(),
                key=np.median)
    median, iqr, p90 = spread(times)
    return Measurement(median, iqr, p90, s.runs, s.backend, s.batch, s.threads, input_size, device,
                       fingerprint(settings), clock_for(device, s.threads))


def measure_latency(arch_or_model: Arch | nn.Module, input_size: int | tuple[int, int, int] = 224,
                    batch: int = 1, threads: int = 1, device: str = "cpu", warmup: int = 5,
                    runs: int = 30, num_classes: int = 1000) -> Latency:
    """Time inference of a batch in eval mode, contiguous and channels_last interleaved; keep the faster.

    `input_size` is a square side (3 channels) or (channels, height, width). On CUDA each run is
    synchronised; `threads` sets torch's CPU threads for the measurement (one: timed by the thread's CPU
    time, `clock_for`).
    """
    from shufflesearch.models._network import build

    shape = (3, input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    model = arch_or_model if isinstance(arch_or_model, nn.Module) else \
        build(arch_or_model, num_classes=num_classes, in_chans=shape[0])
    times = torch_timer(model, shape, batch, threads, device).times(warmup, runs)
    fmt = min(times, key=lambda name: np.median(times[name]))
    median, _, p90 = spread(times[fmt])
    return Latency(median, p90, fmt == "channels_last", batch, device)
