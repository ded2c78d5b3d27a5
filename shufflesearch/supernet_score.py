"""Scoring a candidate with a trained supernet (SPOS): inherit its path's weights, re-estimate BatchNorm
statistics on a fixed set of training batches, then top-1 on the search-validation split.

`SupernetScorer` is what a search with `evaluator: supernet` runs in its Ray trials in place of the
proxy trainer (`search(train_fn=...)`): same call, same `ProxyResult` (one "epoch", no training), so
the records, the front, the report and the exported timm models are a proxy search's; the exported
weights are the inherited ones with their re-estimated statistics. Each worker process loads the
supernet once (per checkpoint file) and keeps it. The BatchNorm batches are the same for every
candidate (`bn_batches` batches of `batch_size` drawn by the run's seed), so scores compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import torch

from .arch import Arch
from .supernet import Supernet
from .supernet_train import CHECKPOINT, SupernetConfig, checkpoint_dir, load_checkpoint

if TYPE_CHECKING:
    from .data import ProxyData
    from .proxy import ProxyResult, Report
    from .space import SearchSpace

_LOADED: dict[tuple[str, int], Supernet] = {}  # this process's supernet, by checkpoint file and mtime


def load_supernet(space: SearchSpace, run_dir: str | Path, num_classes: int, in_chans: int) -> Supernet:
    """The trained supernet of the run at `run_dir` (eval mode), loaded once per process."""
    path = checkpoint_dir(run_dir) / CHECKPOINT
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _LOADED:
        tensors, _ = load_checkpoint(path)
        net = Supernet(space, num_classes=num_classes, in_chans=in_chans)
        net.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        _LOADED.clear()
        _LOADED[key] = net.eval()
    return _LOADED[key]


def bn_images(data: ProxyData, batches: int, batch_size: int, seed: int) -> torch.Tensor:
    """The fixed training images every candidate's BatchNorm statistics are re-estimated on."""
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    return data.train_x[order[:batches * batch_size]]


def score_path(net: Supernet, arch: Arch, data: ProxyData, images: torch.Tensor, batch_size: int,
               channels_last: bool = True) -> tuple[torch.nn.Module, float, float]:
    """(the extracted model, its search-split loss, its accuracy) after BatchNorm re-estimation on `images`."""
    from torch.optim.swa_utils import update_bn

    from .proxy import _evaluate

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = net.extract(arch).to(memory_format=fmt)
    update_bn((images[i:i + batch_size].contiguous(memory_format=fmt) for i in range(0, len(images), batch_size)),
              model)
    loss, acc = _evaluate(model, data.eval_x.contiguous(memory_format=fmt), data.eval_y)
    return model, loss, acc


@dataclass(frozen=True)
class SupernetScorer:
    """A search's `train_fn` for `evaluator: supernet`: scores `arch` on the run's trained supernet.

    Args:
        space: The run's search space (the supernet's).
        run_dir: The run folder holding `supernet/supernet.safetensors`.
        cfg: The `supernet:` settings (`bn_batches`, `batch_size`).
        seed: The run's seed: which training images re-estimate BatchNorm.
    """
    space: Any
    run_dir: str
    cfg: SupernetConfig
    seed: int

    def __call__(self, arch: Arch, data: ProxyData, train_cfg: Any, report: Report | None = None) -> ProxyResult:
        from .proxy import ProxyResult, _Threads

        start = perf_counter()
        with _Threads(train_cfg.threads), torch.no_grad():
            net = load_supernet(self.space, self.run_dir, data.num_classes, data.in_chans)
            images = bn_images(data, self.cfg.bn_batches, self.cfg.batch_size, self.seed)
            model, loss, acc = score_path(net, arch, data, images, self.cfg.batch_size, train_cfg.channels_last)
        seconds = perf_counter() - start
        metrics = {"epoch": 1, data.acc_key: acc, f"{data.eval_split}_loss": loss, "train_loss": 0.0,
                   "lr": 0.0, "train_seconds": 0.0, "eval_seconds": seconds, "images_per_s": 0.0}
        if report is not None:
            report(1, metrics)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return ProxyResult("complete", 1, [metrics], state, seconds, 0.0, seconds, data.eval_split)


def supernet_trials(space: SearchSpace, run_dir: Path, train_cfg: Any, cfg: SupernetConfig, seed: int, *,
                    address: str | None = None, progress: Any = None) -> tuple[SupernetScorer, Any]:
    """What a search with `evaluator: supernet` gives its trials: train (or resume, or reuse) the run's
    supernet, then the scorer and the trials' one-"epoch" train config."""
    from dataclasses import replace

    from .supernet_train import train_supernet

    train_supernet(space, run_dir, cfg, seed=seed, address=address, progress=progress)
    return SupernetScorer(space, str(Path(run_dir).resolve()), cfg, seed), replace(train_cfg, epochs=1)


def resolve_evaluator(space: SearchSpace, previous: dict[str, Any] | None, given: str | None,
                      workers: int | None = None) -> tuple[str, SupernetConfig | None]:
    """The run's evaluator: `given` (the CLI's --evaluator), else the resumed run's, else the space file's;
    and for 'supernet' the `supernet:` settings, with `workers` (--workers) overriding the file's."""
    from dataclasses import replace

    from ._space_file import EVALUATORS
    from .errors import ShuffleSearchError, errors_from

    if given is not None and given not in EVALUATORS:
        raise ShuffleSearchError(f"--evaluator {given}: must be one of {list(EVALUATORS)}")
    evaluator = given or space.evaluator
    if previous is not None:
        recorded = previous.get("evaluator", "proxy")  # runs from before evaluators were proxy searches
        if given not in (None, recorded):
            raise ShuffleSearchError(f"--evaluator {given}: this run was started with evaluator {recorded}; "
                                     "choose a new --name")
        evaluator = recorded
    if evaluator != "supernet":
        return evaluator, None
    with errors_from("--workers"):
        return evaluator, space.supernet if workers is None else replace(space.supernet, workers=workers)
