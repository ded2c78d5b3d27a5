"""Scoring a candidate with a trained supernet (SPOS): inherit its path's weights, re-estimate BatchNorm
statistics on a fixed set of training batches, then top-1 on the search-validation split.

`PathScorer` scores paths one after another in one process, sharing what paths share (the stem's
features), on the CPU or a GPU; a search with `evaluator: supernet` runs one per Ray actor
(`driver._supernet`), which gets the supernet's weights through Ray's object store (its node may not
share the driver's disk). The BatchNorm batches are the same for every candidate (`bn_batches`
batches of `batch_size` drawn by the run's seed), so scores compare. A supernet search keeps no weight
files: `path_weights` gives a scored candidate's weights (the inherited ones with their re-estimated
statistics) when it is exported.

A checkpoint is loaded only as the run's own: trained to its end, with the run's settings and seed,
on the run's space and data (`_train.check_identity`); a missing one is one line saying how to train
it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.models._network import ShuffleNet
from shufflesearch.space._configs import SupernetConfig
from shufflesearch.supernet._network import Supernet
from shufflesearch.supernet._train import CHECKPOINT, check_identity, checkpoint_dir, identity, load_checkpoint

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.space._space import SearchSpace

_LOADED: dict[tuple, Supernet] = {}  # this process's supernet, by checkpoint file, mtime and identity


def read_supernet(space: SearchSpace, run_dir: str | Path, data: ProxyData, cfg: SupernetConfig | None = None,
                  *, seed: int = 0) -> dict[str, torch.Tensor]:
    """The trained supernet weights of the run at `run_dir` (`Supernet.state_dict()`'s), once checked to
    be the run's: trained to the end with `cfg` (default: the space's `supernet:`) and `seed`, on `space`
    and `data`. A missing, unfinished or foreign checkpoint is a one-line error."""
    run_dir = Path(run_dir)
    path = checkpoint_dir(run_dir) / CHECKPOINT
    if not path.is_file():
        command = f"shufflesearch search {run_dir / 'space.yaml'} --name {run_dir.name} --runs-dir {run_dir.parent}"
        raise ShuffleSearchError(f"{path.parent}: no trained supernet there ({CHECKPOINT} missing, deleted?), "
                                 "from which a supernet search's candidates inherit their weights; restore it, or "
                                 f"train it again with the run's settings: {command} --resume")
    tensors, metadata = load_checkpoint(path)
    check_identity(path, metadata, identity(space, data, cfg or space.supernet, seed),
                   "it is not this run's supernet: restore the run's, or train it again after deleting it")
    step, total = (json.loads(metadata.get(k, "null")) for k in ("step", "total_steps"))
    if total is None or step < total:
        raise ShuffleSearchError(f"{path}: the supernet's training stopped at step {step} of {total}; finish it "
                                 f"by running the search again (--resume)")
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def supernet_from(space: SearchSpace, weights: dict[str, torch.Tensor], data: ProxyData) -> Supernet:
    """The `Supernet` of `space` for `data`'s classes and channels with `weights` (`read_supernet`'s), in eval mode."""
    net = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans)
    net.load_state_dict(weights)
    return net.eval()


def load_supernet(space: SearchSpace, run_dir: str | Path, data: ProxyData, cfg: SupernetConfig | None = None,
                  *, seed: int = 0) -> Supernet:
    """The trained supernet of the run at `run_dir` (eval mode), checked as `read_supernet` does, loaded
    once per process."""
    path = checkpoint_dir(run_dir) / CHECKPOINT
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else -1,
           json.dumps(identity(space, data, cfg or space.supernet, seed), sort_keys=True))
    if key not in _LOADED:
        net = supernet_from(space, read_supernet(space, run_dir, data, cfg, seed=seed), data)
        _LOADED.clear()
        _LOADED[key] = net
    return _LOADED[key]


def bn_images(data: ProxyData, batches: int, batch_size: int, seed: int) -> torch.Tensor:
    """The fixed training images every candidate's BatchNorm statistics are re-estimated on."""
    order = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))
    return data.train_x[order[:batches * batch_size]]


class PathScorer:
    """Scores paths of one supernet on one dataset: BatchNorm re-estimation on `images`, then the
    search split's loss and accuracy, as `extract(arch)`, `torch.optim.swa_utils.update_bn` over
    `images` in batches of `batch_size` and the proxy's evaluation would give (tested equal).

    A path's stem (conv, BatchNorm, pool) is a slice of the supernet's one stem, so every path of the
    same stem width computes the same stem features and the same stem statistics, whatever the rest
    of the path: they are computed once per stem and kept (the stem's 3x3 conv at full resolution was
    most of a small path's scoring time); each path then runs from them. Stems whose features would
    exceed `cache_bytes` are not kept (large images): such paths run whole.

    Args:
        net: The trained supernet (moved to `device`).
        data: The proxy data: its search split is scored.
        images: The training images BatchNorm is re-estimated on (`bn_images`).
        batch_size: The BatchNorm re-estimation batch.
        channels_last: Run in NHWC layout (as the proxy trains).
        cache_bytes: The most stem features kept, per stem width.
        device: Where the paths run ('cpu' or 'cuda'): the supernet, the images and the split move there once.
    """

    def __init__(self, net: Supernet, data: ProxyData, images: torch.Tensor, batch_size: int,
                 channels_last: bool = True, cache_bytes: int = 2 ** 28, device: str = "cpu"):
        from shufflesearch.train._proxy import _EVAL_BATCH

        self.net, self.eval_y = net.to(device), data.eval_y.to(device)
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.eval_x = data.eval_x.to(device).contiguous(memory_format=self.fmt)
        self.bn_images = images.to(device).contiguous(memory_format=self.fmt)
        self.bn_sizes = [len(b) for b in images.split(batch_size)]
        self.eval_batches = [self.eval_x[i:i + _EVAL_BATCH] for i in range(0, len(self.eval_x), _EVAL_BATCH)]
        self.cache_bytes = cache_bytes
        self._stems: dict[tuple, tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]] = {}

    def _stem(self, model: ShuffleNet) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor] | None:
        """(the stem's re-estimated state, its train-mode outputs on the BatchNorm batches, its eval-mode
        outputs on the search split) for `model`'s stem, None when too large to keep."""
        stem = nn.Sequential(model.stem, model.stem_pool)
        key = tuple((k, tuple(v.shape)) for k, v in stem.state_dict().items())
        if key not in self._stems:
            with torch.inference_mode():
                size = stem.eval()(self.eval_x[:1]).numel() * self.eval_x.element_size() * len(self.eval_x)
            if size > self.cache_bytes:
                return None
            with torch.no_grad():
                train_out = _reestimate(stem, self.bn_images, self.bn_sizes)
                with torch.inference_mode():
                    eval_out = torch.cat([stem(x) for x in self.eval_batches])
            self._stems[key] = ({k: v.clone() for k, v in stem.state_dict().items()}, train_out, eval_out)
        return self._stems[key]

    def score(self, arch: Arch) -> tuple[ShuffleNet, float, float]:
        """(the extracted model with its re-estimated statistics, its search-split loss, its accuracy)."""
        from shufflesearch.train._proxy import _evaluate

        model = self.net.extract(arch).to(memory_format=self.fmt)
        stem = self._stem(model)
        with torch.no_grad():
            if stem is None:
                _reestimate(model, self.bn_images, self.bn_sizes)
                return model, *_evaluate(model, self.eval_x, self.eval_y)
            state, train_out, eval_out = stem
            nn.Sequential(model.stem, model.stem_pool).load_state_dict(state)
            past_stem = _PastStem(model)
            _reestimate(past_stem, train_out, self.bn_sizes)
            return model, *_evaluate(past_stem, eval_out, self.eval_y)


class _PastStem(nn.Module):
    """A `ShuffleNet`'s modules past its stem (stages, head conv, classifier), run on the stem's output."""

    def __init__(self, model: ShuffleNet):
        super().__init__()
        self.stages, self.conv_head, self.head = model.stages, model.conv_head, model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv_head(self.stages(x)))


def _reestimate(module: nn.Module, images: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """`torch.optim.swa_utils.update_bn(images.split(sizes), module)` (every BatchNorm's statistics reset,
    then the plain average over the batches, in train mode), returning the module's output; `module` is
    left in eval mode.

    The batches go through as one: every BatchNorm normalises each batch's slice of its input by that
    batch's statistics, as the batches one after another would, and everything else runs once (the
    convs, most of the time, have a per-call cost that 8 batches of 64 small images paid 8 times:
    a candidate's re-estimation went from 15.1 to 11.7 ms). The result is update_bn's to the bit (tested).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.forward = lambda x, batch_norm=m.forward: torch.cat([batch_norm(b) for b in x.split(sizes)])
    module.train()
    try:
        return module(images)
    finally:
        for m, momentum in zip(norms, momenta):
            del m.forward  # the class's again
            m.momentum = momentum
        module.eval()


def path_weights(run_dir: str | Path, archs: list[Arch]) -> list[bytes]:
    """The safetensors bytes of each of `archs`' models as the supernet search at `run_dir` scored it:
    its inherited weights and re-estimated BatchNorm statistics (a supernet search keeps no weight
    files; export asks here), computed with the search's threads so the numbers are the scored ones."""
    from shufflesearch._exec._devices import TorchThreads
    from shufflesearch._io import read_json
    from shufflesearch.space._space import SearchSpace
    from shufflesearch.train._weights import weights_bytes

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json", "the run's config")
    space = SearchSpace.from_yaml(run_dir / "space.yaml")
    cfg = SupernetConfig.from_dict(config["supernet"], f"{run_dir / 'config.json'}: supernet")
    data = load_data(space.proxy.data, "search")
    with TorchThreads(config["cpus_per_trial"]):
        net = load_supernet(space, run_dir, data, cfg, seed=config["seed"])
        scorer = run_scorer(net, data, cfg, config["seed"], space.proxy.train.channels_last)
        models = [scorer.score(arch)[0] for arch in archs]
    return [weights_bytes(m.state_dict()) for m in models]


def run_scorer(net: Supernet, data: ProxyData, cfg: SupernetConfig, seed: int, channels_last: bool,
               device: str = "cpu") -> PathScorer:
    """A `PathScorer` of a run's trained supernet `net` on `device`, BatchNorm re-estimated on
    `cfg.bn_batches` batches of `cfg.batch_size` training images drawn by the run's `seed` (the same
    for every candidate, so scores compare)."""
    images = bn_images(data, cfg.bn_batches, cfg.batch_size, seed)
    return PathScorer(net, data, images, cfg.batch_size, channels_last, device=device)


def resolve_evaluator(space: SearchSpace, previous: dict[str, Any] | None, given: str | None,
                      workers: int | None = None, storage: str | Path | None = None,
                      train_fn: Any = None) -> tuple[str, SupernetConfig | None]:
    """The run's evaluator: `given` (the CLI's --evaluator), else the resumed run's, else the space file's;
    and for 'supernet' the `supernet:` settings, with `workers` (--workers) overriding the file's and
    `storage` (--storage) the resumed run's, then the file's (a local path made absolute).

    `train_fn` (search's) replaces the proxy evaluator's trainer: with the supernet evaluator it is
    refused, rather than the run recorded as a supernet search it is not, or switched to a proxy search
    its space file and a resume without `train_fn` would not be.
    """
    from dataclasses import replace

    from shufflesearch.errors import errors_from
    from shufflesearch.space._file import EVALUATORS
    from shufflesearch.supernet._train import storage_path

    if given is not None and given not in EVALUATORS:
        raise ShuffleSearchError(f"--evaluator {given}: must be one of {list(EVALUATORS)}")
    evaluator, source = (given, "given") if given else (space.evaluator, f"{space.source}'s evaluator")
    if previous is not None:
        recorded = previous.get("evaluator", "proxy")  # runs from before evaluators were proxy searches
        if given not in (None, recorded):
            raise ShuffleSearchError(f"--evaluator {given}: this run was started with evaluator {recorded}; "
                                     "choose a new --name")
        evaluator, source = recorded, "the resumed run's evaluator"
    if evaluator != "supernet":
        return evaluator, None
    if train_fn is not None:
        raise ShuffleSearchError(f"train_fn: replaces the proxy evaluator's trainer, but the evaluator is supernet "
                                 f"({source}); search a new run with evaluator='proxy' to train with train_fn")
    with errors_from("--workers"):
        cfg = space.supernet if workers is None else replace(space.supernet, workers=workers)
    if storage is None:
        storage = ((previous or {}).get("supernet") or {}).get("storage", cfg.storage)
    if storage is not None:
        with errors_from("--storage"):
            cfg = replace(cfg, storage=str(storage) if isinstance(storage, Path) else storage)
        cfg = replace(cfg, storage=storage_path(cfg.storage))
    return evaluator, cfg
