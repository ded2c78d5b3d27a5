"""The proxy trainer a search trial runs, and measured inference latency.

`train_proxy` trains an `Arch` from scratch on an in-memory `ProxyData` with timm's optimizer and
scheduler factories, scores it on the data's scored split after every epoch (metrics named by that
split: `search_acc`/`search_loss`, or `test_acc`/`test_loss`) and hands them to `report(epoch, metrics)`;
a truthy return stops the run (status 'stopped'), which is how a search prunes trials. A non-finite
loss ends the run with status 'diverged'. The same seed and config give identical metrics on the same
machine: the model's init, the batch order and the augmentation all draw from the seed.

`device` (auto, cpu, cuda; `_devices.py` says what auto means) is where it trains: the data move to it
once, not per batch. `amp` is mixed precision: bf16 autocast, or fp16 autocast with a GradScaler
(both run on CPU too); none by default. Latency (`trial_latency_ms`) is measured on the trial's device,
or on `latency_device` where that names another.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._config import check_types, fail, field_names, from_mapping
from ._devices import local_device
from .arch import Arch
from .data import DataConfig, ProxyData, augment_batch
from .errors import ShuffleSearchError, errors_from, reject_unknown_keys

Report = Callable[[int, dict[str, float]], Any]
_EVAL_BATCH = 500
_AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """Proxy training hyper-parameters; the train half of a space's `proxy:` section.

    'sgd' is SGD with Nesterov momentum 0.9; 'linear' decays the lr linearly to 0 (the ShuffleNet
    papers' schedule), 'cosine' follows a half cosine; both after `warmup_epochs` (at most
    epochs - 1) of linear warm-up.
    Weight decay skips biases and BN (timm's default). `threads` is torch's intra-op thread count.
    `bn_recalibration` images (0: off) re-estimate BatchNorm statistics before each evaluation
    (`torch.optim.swa_utils.update_bn`): after a few hundred steps the running averages still lag
    the weights, and eval-mode accuracy of a short training then sits near chance.
    `channels_last` trains in NHWC layout: 1.5-2x the images/s of NCHW for ShuffleNets on CPU
    (measured with torch 2.14, 1 thread, batch 64, 32x32).
    `device` is auto, cpu or cuda; `amp` none, bf16 or fp16 (autocast; fp16 with a GradScaler);
    `latency_device` is where latency is measured: the trial's device, cpu or cuda.
    """
    epochs: int = 6
    batch_size: int = 64
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.05
    weight_decay: float = 4e-5
    schedule: Literal["cosine", "linear"] = "linear"
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 1
    bn_recalibration: int = 512
    channels_last: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    latency_device: Literal["trial", "cpu", "cuda"] = "trial"

    def __post_init__(self) -> None:
        check_types(self, "proxy")
        if self.bn_recalibration < 0:
            fail("proxy", "bn_recalibration", self.bn_recalibration, "must be >= 0 (0: off)")
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                fail("proxy", name, getattr(self, name), "must be >= 1")
        if not 0 < self.lr < math.inf:
            fail("proxy", "lr", self.lr, "must be > 0")
        if self.weight_decay < 0:
            fail("proxy", "weight_decay", self.weight_decay, "must be >= 0")
        if self.warmup_epochs < 0:
            fail("proxy", "warmup_epochs", self.warmup_epochs, "must be >= 0")
        if not 0 <= self.label_smoothing < 1:
            fail("proxy", "label_smoothing", self.label_smoothing, "must be in [0, 1)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "proxy") -> TrainConfig:
        return from_mapping(cls, data, source, "proxy")


@dataclass(frozen=True)
class ProxyConfig:
    """A space's whole `proxy:` section: one flat mapping of `DataConfig` and `TrainConfig` fields."""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.data), **asdict(self.train)}


def proxy_config_from_dict(data: Any, source: str) -> ProxyConfig:
    """Validate a `proxy:` mapping; errors read `"{source}: proxy.<field> = <value>: <why>"`."""
    if not isinstance(data, Mapping):
        raise ShuffleSearchError(f"{source}: proxy = {data!r}: must be a mapping")
    data_keys = set(field_names(DataConfig))
    train_keys = set(field_names(TrainConfig))
    with errors_from(source):
        reject_unknown_keys(data, sorted(data_keys | train_keys), "proxy")
    return ProxyConfig(
        from_mapping(DataConfig, {k: v for k, v in data.items() if k in data_keys}, source, "proxy"),
        from_mapping(TrainConfig, {k: v for k, v in data.items() if k in train_keys}, source, "proxy"))


@dataclass
class ProxyResult:
    """What a proxy training gave: `history` holds one metrics dict per finished epoch.

    Metrics: epoch, `<split>_acc` (top-1, 0..1) and `<split>_loss` on the scored split (`eval_split`),
    train_loss, lr, train_seconds (the epoch's optimisation steps only), eval_seconds (BN
    re-estimation and scoring), images_per_s (training). `train_seconds` and `eval_seconds` are the
    sums over the epochs. `state_dict` holds the trained weights (CPU tensors) for export.
    """
    status: Literal["complete", "diverged", "stopped"]
    epochs: int
    history: list[dict[str, float]]
    state_dict: dict[str, torch.Tensor]
    seconds: float
    train_seconds: float
    eval_seconds: float
    eval_split: str = "search"

    @property
    def acc_key(self) -> str:
        return f"{self.eval_split}_acc"

    @property
    def final(self) -> dict[str, float] | None:
        return self.history[-1] if self.history else None

    @property
    def best(self) -> dict[str, float] | None:
        return max(self.history, key=lambda m: m[self.acc_key]) if self.history else None


def epoch_line(metrics: Mapping[str, float]) -> str:
    """One line for an epoch's metrics, each accuracy and loss named by its split."""
    scored = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith(("_acc", "_loss")))
    return (f"epoch {int(metrics['epoch']):3d}  {scored}  train {metrics['train_seconds']:.1f}s + eval "
            f"{metrics['eval_seconds']:.1f}s  {metrics['images_per_s']:.0f} img/s")


class _Threads:
    """torch's intra-op thread count set for a block and restored after."""
    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        self.saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.saved)


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy) over the whole set."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(y), _EVAL_BATCH):
            logits = model(x[i:i + _EVAL_BATCH])
            loss += F.cross_entropy(logits, y[i:i + _EVAL_BATCH], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + _EVAL_BATCH]).sum().item()
    return loss / len(y), correct / len(y)


def train_proxy(arch: Arch, data: ProxyData, cfg: TrainConfig | None = None,
                report: Report | None = None) -> ProxyResult:
    """Train `arch` from scratch on `data`; `report(epoch, metrics)` returning True stops the run."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    from torch.optim.swa_utils import update_bn

    from .model import build

    cfg = cfg or TrainConfig()
    dev = torch.device(local_device(cfg.device))
    n = len(data.train_y)
    if n < 2:
        raise ShuffleSearchError(f"dataset {data.spec!r}: {n} training image(s); a batch needs 2")
    batch = min(cfg.batch_size, n)
    steps = n // batch  # drop the ragged last batch: a batch of 1 breaks BatchNorm
    with _Threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = build(arch, num_classes=data.num_classes, in_chans=data.in_chans).to(dev, memory_format=fmt)
        train_x, train_y = data.train_x.to(dev), data.train_y.to(dev)  # once per training, not per batch
        eval_x, eval_y = data.eval_x.to(dev, memory_format=fmt), data.eval_y.to(dev)
        amp = _AMP_DTYPES[cfg.amp]
        autocast = torch.autocast(dev.type, dtype=amp, enabled=amp is not None)
        scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16")
        optimizer = create_optimizer_v2(model, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                        momentum=0.9)
        scheduler, _ = create_scheduler_v2(
            optimizer, sched="cosine" if cfg.schedule == "cosine" else "poly", decay_rate=1.0,
            num_epochs=cfg.epochs, warmup_epochs=min(cfg.warmup_epochs, cfg.epochs - 1),
            warmup_lr=cfg.lr / 100, step_on_epochs=False, updates_per_epoch=steps)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        history: list[dict[str, float]] = []
        status, train_seconds, eval_seconds, start = "complete", 0.0, 0.0, perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            t0, total, diverged = perf_counter(), 0.0, False
            order = torch.randperm(n, generator=gen).to(dev)
            for step in range(steps):
                idx = order[step * batch:(step + 1) * batch]
                x = train_x[idx]
                if data.augment:
                    x = augment_batch(x, gen, data.hflip)
                with autocast:
                    loss = loss_fn(model(x.contiguous(memory_format=fmt)), train_y[idx])
                if not torch.isfinite(loss):
                    diverged = True
                    break
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step_update((epoch - 1) * steps + step + 1)
                total += loss.item()
            seconds = perf_counter() - t0
            with autocast:
                if cfg.bn_recalibration and not diverged:
                    recal = order[:cfg.bn_recalibration]
                    update_bn((train_x[recal[i:i + batch]].contiguous(memory_format=fmt)
                               for i in range(0, len(recal), batch)), model)
                loss, acc = (math.nan, 0.0) if diverged else _evaluate(model, eval_x, eval_y)
            if not math.isfinite(loss):  # also weights that overflowed in the last step
                status = "diverged"
                break
            scoring = perf_counter() - t0 - seconds
            train_seconds += seconds
            eval_seconds += scoring
            metrics = {"epoch": epoch, data.acc_key: acc, f"{data.eval_split}_loss": loss,
                       "train_loss": total / steps, "lr": optimizer.param_groups[0]["lr"],
                       "train_seconds": seconds, "eval_seconds": scoring, "images_per_s": steps * batch / seconds}
            history.append(metrics)
            if report is not None and report(epoch, metrics):
                status = "stopped"
                break
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return ProxyResult(status, len(history), history, state, perf_counter() - start, train_seconds, eval_seconds,
                       data.eval_split)


# --- latency -----------------------------------------------------------------------------------
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
    from .model import build

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
    with _Threads(threads), torch.inference_mode():
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
