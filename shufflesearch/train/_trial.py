"""The one trial body: a genome in, its last report out; every job that trains or scores an architecture
runs it. A search trial (`driver._search.run_trial`), a final or baseline retraining
(`driver._jobs.train_job`) and a supernet candidate (`driver._supernet._Scorer`) differ only in how
they evaluate the architecture (proxy training, or scoring its path of a trained supernet) and in what
they do with the reports; the steps and their order are the same, so they are written once:

1. the genome is read (`Arch.from_dict`) and its latency measured where asked (`trial_latency_ms`):
   first, so that every epoch's report carries it (MO-ASHA ranks trials on it while they train);
2. `evaluate(arch, report)` trains or scores it, calling `report(epoch, metrics)` after each epoch;
3. a complete trial's weights are serialised where asked (`weights_bytes`) and returned in the report
   (`weights`), never written here: the body runs in a Ray worker, which may be on a machine that does
   not share the driver's disk, so the driver writes them into the run folder when the report reaches it
   (a search's `_study_searcher.TrialWeights`, a final evaluation's `driver._jobs.JobPool`).

Where the architecture's own failures end is decided here, once: every step runs inside one `try`,
so an error of the architecture (it cannot be built, measured, trained or scored) becomes the trial's
"failed" report with the error, which is recorded and never retried. Only what Ray itself reports (a
worker or node lost) reaches the job pools, which retry it as a fault of the infrastructure
(`_exec._retries`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, Protocol

import torch

from shufflesearch.data._data import ProxyData
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import TrainConfig
from shufflesearch.train._latency import trial_latency_ms
from shufflesearch.train._proxy import Report, train_proxy
from shufflesearch.train._weights import weights_bytes

SUMMED = ("train_seconds", "eval_seconds")  # per-epoch metrics a report sums over the epochs so far


class Evaluated(Protocol):
    """What an evaluation gives back (a `ProxyResult` is one): its status ("complete", "diverged",
    "stopped") and the weights to write when complete (None: nothing to write)."""

    status: str
    state_dict: Mapping[str, torch.Tensor] | None


Evaluate = Callable[[Arch, Report], Evaluated]


@dataclass(frozen=True)
class Scored:
    """What an evaluation that keeps no weights gives back (a supernet path's scoring)."""

    status: str = "complete"
    state_dict: None = None


def proxy_training(data: ProxyData, cfg: TrainConfig, train_fn: Callable[..., Evaluated] | None = None) -> Evaluate:
    """The evaluation of a search trial, a baseline or a final job: `train_fn(arch, data, cfg, report=)`
    (default `train_proxy`) trains the architecture from scratch and scores it after every epoch."""
    return partial(_train, train_fn or train_proxy, data, cfg)


def _train(train_fn: Callable[..., Evaluated], data: ProxyData, cfg: TrainConfig, arch: Arch,
           report: Report) -> Evaluated:
    return train_fn(arch, data, cfg, report=report)


def run_trial_body(genome: Mapping[str, Any], evaluate: Evaluate, cfg: TrainConfig, *,
                   latency_size: int | None = None, keep_weights: bool = False,
                   on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Evaluate the architecture `genome` describes; its last report (see the module docstring).

    Args:
        genome: The architecture, as `Arch.to_dict` writes it.
        evaluate: Trains or scores it (`proxy_training`, or a supernet path's scoring).
        cfg: The trial's train config: where its latency is measured (`trial_latency_ms`).
        latency_size: The input size latency is measured at; None: not measured.
        keep_weights: Return a complete trial's weights, as safetensors bytes, in the report's `weights`.
        on_epoch: Called with the report so far after every epoch.

    Returns:
        The report: `status` (the evaluation's, or "failed" with `error`), `epoch` (the last one
        finished, 0 before any), that epoch's metrics (`<split>_acc`, `<split>_loss`, ...) and
        `best_<split>_acc`, `train_seconds` and `eval_seconds` summed over the epochs, `latency_ms`
        (None when not measured), the whole trial's wall and CPU seconds (`time_total_s`,
        `cpu_seconds`: CPU time does not grow while other processes share the cores), and with
        `keep_weights` a complete trial's `weights` (safetensors bytes; absent otherwise).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    last: dict[str, Any] = {"epoch": 0, "train_seconds": 0.0, "eval_seconds": 0.0, "latency_ms": None}

    def report(epoch: int, metrics: Mapping[str, Any]) -> None:
        _add_epoch(last, epoch, metrics)
        last["cpu_seconds"] = time.process_time() - cpu_started
        if on_epoch is not None:
            on_epoch(dict(last))

    try:
        arch = Arch.from_dict(genome)
        if latency_size:
            last["latency_ms"] = trial_latency_ms(arch, latency_size, cfg)
        result = evaluate(arch, report)
        weights = {}
        if result.status == "complete" and keep_weights and result.state_dict is not None:
            weights["weights"] = weights_bytes(result.state_dict)
        status, error = result.status, None
    except Exception as e:  # the architecture's own failure: recorded, never retried, the others go on
        status, error, weights = "failed", f"{type(e).__name__}: {e}", {}
    return {**last, "status": status, "error": error, "time_total_s": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started, **weights}


def _add_epoch(last: dict[str, Any], epoch: int, metrics: Mapping[str, Any]) -> None:
    """Fold one epoch's `metrics` into the report `last`: seconds summed, the best accuracy kept, the rest
    the latest."""
    for key, value in metrics.items():
        if key in SUMMED:
            last[key] += float(value)
        elif key != "epoch":
            last[key] = float(value)
        if key.endswith("_acc"):
            last[f"best_{key}"] = max(last.get(f"best_{key}", value), float(value))
    last["epoch"] = epoch
