"""Scoring a candidate with a trained supernet (SPOS): inherit its path's weights, re-estimate BatchNorm
statistics on a fixed set of training batches, then top-1 on the search-validation split.

`PathScorer` scores paths one after another in one process, sharing what paths share (the stem's
features); a search with `evaluator: supernet` runs one per Ray actor (`_supernet_search`). The
BatchNorm batches are the same for every candidate (`bn_batches` batches of `batch_size` drawn by the
run's seed), so scores compare. A supernet search keeps no weight files: `path_weights` gives a
scored candidate's weights (the inherited ones with their re-estimated statistics) when it is exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shufflesearch.data import load_data
from shufflesearch.genome._arch import Arch
from shufflesearch.models._network import ShuffleNet
from shufflesearch.space._configs import SupernetConfig
from shufflesearch.supernet._network import Supernet
from shufflesearch.supernet._train import CHECKPOINT, checkpoint_dir, load_checkpoint

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.space._space import SearchSpace

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
        net: The trained supernet.
        data: The proxy data: its search split is scored.
        images: The training images BatchNorm is re-estimated on (`bn_images`).
        batch_size: The BatchNorm re-estimation batch.
        channels_last: Run in NHWC layout (as the proxy trains).
        cache_bytes: The most stem features kept, per stem width.
    """

    def __init__(self, net: Supernet, data: ProxyData, images: torch.Tensor, batch_size: int,
                 channels_last: bool = True, cache_bytes: int = 2 ** 28):
        from shufflesearch.train._proxy import _EVAL_BATCH

        self.net, self.eval_y = net, data.eval_y
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.eval_x = data.eval_x.contiguous(memory_format=self.fmt)
        self.bn_images = images.contiguous(memory_format=self.fmt)
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
    with TorchThreads(config["cpus_per_trial"]):
        scorer = run_scorer(space, run_dir, cfg, config["seed"], load_data(space.proxy.data, "search"),
                            space.proxy.train.channels_last)
        models = [scorer.score(arch)[0] for arch in archs]
    return [weights_bytes(m.state_dict()) for m in models]


def run_scorer(space: SearchSpace, run_dir: str | Path, cfg: SupernetConfig, seed: int, data: ProxyData,
               channels_last: bool) -> PathScorer:
    """The `PathScorer` of the run at `run_dir`: its trained supernet, and BatchNorm re-estimated on
    `cfg.bn_batches` batches of `cfg.batch_size` training images drawn by the run's `seed` (the same
    for every candidate, so scores compare)."""
    net = load_supernet(space, run_dir, data.num_classes, data.in_chans)
    images = bn_images(data, cfg.bn_batches, cfg.batch_size, seed)
    return PathScorer(net, data, images, cfg.batch_size, channels_last)


def resolve_evaluator(space: SearchSpace, previous: dict[str, Any] | None, given: str | None,
                      workers: int | None = None) -> tuple[str, SupernetConfig | None]:
    """The run's evaluator: `given` (the CLI's --evaluator), else the resumed run's, else the space file's;
    and for 'supernet' the `supernet:` settings, with `workers` (--workers) overriding the file's."""
    from dataclasses import replace

    from shufflesearch.errors import ShuffleSearchError, errors_from
    from shufflesearch.space._file import EVALUATORS

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
