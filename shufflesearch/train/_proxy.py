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

import math
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Callable, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from shufflesearch._exec._devices import TorchThreads, local_device
from shufflesearch.data._data import ProxyData, augment_batch
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import TrainConfig

Report = Callable[[int, dict[str, float]], Any]
_EVAL_BATCH = 500
_AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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

    from shufflesearch.models._network import build

    cfg = cfg or TrainConfig()
    dev = torch.device(local_device(cfg.device))
    n = len(data.train_y)
    if n < 2:
        raise ShuffleSearchError(f"dataset {data.spec!r}: {n} training image(s); a batch needs 2")
    batch = min(cfg.batch_size, n)
    steps = n // batch  # drop the ragged last batch: a batch of 1 breaks BatchNorm
    with TorchThreads(cfg.threads):
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
