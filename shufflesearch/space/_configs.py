"""The plain settings of a search space's sections, torch-free: `proxy:` (`DataConfig` + `TrainConfig`
= `ProxyConfig`) and `supernet:` (`SupernetConfig`).

Each is a frozen dataclass that checks itself on construction; an invalid value raises
ShuffleSearchError reading `"<source>: <section>.<field> = <value>: <why>"`. They live here, apart
from the trainer, the data loader and the supernet that use them, so that reading a space file never
imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

from shufflesearch._config import check_types, fail, field_names, from_mapping
from shufflesearch.errors import ShuffleSearchError, errors_from, reject_unknown_keys

TIMM_READERS = ("torch", "hfds", "hfids", "tfds", "wds")  # the name prefixes timm.data.create_dataset knows
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "folder", "timm")
_NEEDS_DIR = set(DATASETS) - {"digits"}
SPLITS = ("search", "test")  # the split a ProxyData scores on
Split = Literal["search", "test"]



@dataclass(frozen=True)
class DataConfig:
    """The data half of a space's `proxy:` section; `shufflesearch.data`'s docstring says what each option does."""
    dataset: str = "digits"
    image_size: int = 32
    channels: int | None = None
    subset_per_class: int | None = None
    search_per_class: int | None = None
    search_fraction: float = 0.2
    test_per_class: int | None = None
    test_fraction: float = 0.2
    augment: bool = False
    split_seed: int = 0
    download: bool = False
    cache: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        check_types(self, "proxy")
        parse_spec(self.dataset)
        if self.image_size < 8:
            fail("proxy", "image_size", self.image_size, "must be >= 8")
        if self.channels not in (None, 1, 3):
            fail("proxy", "channels", self.channels, "must be 1, 3 or null (keep the source's)")
        for name in ("subset_per_class", "search_per_class", "test_per_class"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail("proxy", name, value, "must be >= 1 or null (all)")
        for name in ("search_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                fail("proxy", name, getattr(self, name), "must be between 0 and 1")



def parse_spec(spec: str) -> tuple[str, str]:
    """Split `name[:arg]` and check the name; `arg` is the directory (or `NAME:DIR` for timm)."""
    name, _, arg = spec.partition(":")
    if name not in DATASETS:
        raise ShuffleSearchError(f"dataset {spec!r}: unknown dataset {name!r} (expected one of "
                                 f"{', '.join(DATASETS)}; all but digits take ':DIR')")
    if name in _NEEDS_DIR and not arg:
        raise ShuffleSearchError(f"dataset {spec!r}: {name} needs a directory, e.g. '{name}:/data/{name}'")
    if name == "timm":
        if ":" not in arg:
            raise ShuffleSearchError(f"dataset {spec!r}: timm datasets are written 'timm:NAME:DIR'")
        timm_name = arg.partition(":")[0]
        # timm reads any other name silently as an image folder; say so instead
        if timm_name and timm_name.partition("/")[0].lower() not in TIMM_READERS:
            raise ShuffleSearchError(f"dataset {spec!r}: timm dataset name {timm_name!r} has none of timm's "
                                     f"prefixes ({', '.join(p + '/' for p in TIMM_READERS)}); an empty name "
                                     "('timm::DIR') reads an image folder")
    return name, arg


@dataclass(frozen=True)
class LatencySettings:
    """`budget.latency:`: where and how a candidate's inference latency is measured for `budget.latency_ms`.

    `target`: `local` (the machine running the driver, `threads` torch or ONNX Runtime threads), `cuda`
    (a CUDA device of the driver's node), or the name of a Ray custom resource a node carries
    (`ray start --resources '{"rpi4": 1}'`), on which every measurement then runs, one at a time.
    `backend`: `torch` (eager, contiguous and channels_last tried, the faster kept) or `onnxruntime`
    (the model exported to ONNX, run by an ONNX Runtime CPU session). `batch` images of `input_size`
    pixels (null: the budget's), `warmup` untimed runs, then `runs` timed ones: the median and the
    interquartile range are recorded. `table`: a latency table built on the target (`shufflesearch
    latency-table`): candidates' latencies are predicted from it instead of measured.
    """
    target: str = "local"
    backend: Literal["torch", "onnxruntime"] = "torch"
    batch: int = 1
    threads: int = 1
    input_size: int | None = None
    warmup: int = 5
    runs: int = 30
    table: str | None = None

    def __post_init__(self) -> None:
        check_types(self, "budget.latency")
        if not self.target.strip() or any(c.isspace() for c in self.target):
            fail("budget.latency", "target", self.target, "must be local, cuda or a Ray custom resource name")
        for name in ("batch", "threads", "runs"):
            if getattr(self, name) < 1:
                fail("budget.latency", name, getattr(self, name), "must be an integer >= 1")
        if self.warmup < 0:
            fail("budget.latency", "warmup", self.warmup, "must be an integer >= 0")
        if self.input_size is not None and self.input_size < 8:
            fail("budget.latency", "input_size", self.input_size, "must be an integer >= 8 or null (the budget's)")
        if self.table is not None and not self.table.strip():
            fail("budget.latency", "table", self.table, "must be a latency table file or null")

    @classmethod
    def from_dict(cls, data: Any) -> LatencySettings:
        if not isinstance(data, Mapping):
            raise ShuffleSearchError(f"budget.latency = {data!r}: must be a mapping")
        reject_unknown_keys(data, field_names(cls), "budget.latency")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


@dataclass(frozen=True)
class SupernetConfig:
    """The space file's `supernet:` section: how the supernet is trained and how a path is scored.

    `epochs` over the training split at `batch_size` (the global batch, split among `workers`), SGD
    with Nesterov momentum 0.9 at `lr` decayed linearly to 0 (after `warmup_epochs`), `weight_decay`
    on weights only (timm's default). `flops_band` = [low, high]: fractions of the budget a training
    path's cost must lie in (SPOS's FLOPs-band sampling; [0, 1] takes every path). `bn_batches`
    training batches of `batch_size` re-estimate a scored path's BatchNorm statistics.
    `checkpoint_every` steps between checkpoints (and one at the end of each epoch). `workers`
    data-parallel Ray Train workers of `threads` torch threads each. `storage`: where Ray Train keeps
    a data-parallel training's checkpoints, a path or URI every node reaches (NFS, `s3://...`); needed
    when its workers may run on other nodes than the driver, else Ray's default (`~/ray_results`).
    `learned_loss`: the supernet learned if its last epoch's mean training loss is below this fraction
    of chance's, ln(num_classes); else the training ends in a one-line error and no path is scored
    (`supernet._train.check_learned`); null: no check.
    """
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 4e-5
    warmup_epochs: int = 0
    flops_band: tuple = (0.0, 1.0)
    bn_batches: int = 8
    checkpoint_every: int = 100
    workers: int = 1
    threads: int = 1
    storage: str | None = None
    # 0.8: the demo space's supernet on Fashion-MNIST (500/class) ends at 1.36 = 0.59 x ln 10 and passes; each
    # shipped space's on digits ends at 2.08-2.86 (>= 0.9 x) with paths near chance and fails (docs/benchmarks.md)
    learned_loss: float | None = 0.8

    def __post_init__(self) -> None:
        if isinstance(self.flops_band, list):
            object.__setattr__(self, "flops_band", tuple(self.flops_band))
        check_types(self, "supernet")
        for name in ("epochs", "batch_size", "bn_batches", "checkpoint_every", "workers", "threads"):
            if getattr(self, name) < 1:
                fail("supernet", name, getattr(self, name), "must be an integer >= 1")
        if not 0 < self.lr < math.inf:
            fail("supernet", "lr", self.lr, "must be > 0")
        if self.weight_decay < 0:
            fail("supernet", "weight_decay", self.weight_decay, "must be >= 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            fail("supernet", "warmup_epochs", self.warmup_epochs, "must be >= 0 and less than epochs")
        band = self.flops_band
        if not (len(band) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in band)
                and 0 <= band[0] < band[1] <= 1):
            fail("supernet", "flops_band", list(band), "must be [low, high] with 0 <= low < high <= 1 "
                                                       "(fractions of the budget)")
        if self.batch_size % self.workers:
            fail("supernet", "batch_size", self.batch_size, f"must be divisible by workers={self.workers}")
        if self.storage is not None and not self.storage.strip():
            fail("supernet", "storage", self.storage, "must be a path or URI every Ray node reaches, or null")
        if self.learned_loss is not None and not 0 < self.learned_loss <= 1:
            fail("supernet", "learned_loss", self.learned_loss, "must be in (0, 1] (a fraction of ln(num_classes)) "
                                                                "or null (no check)")

    @classmethod
    def from_dict(cls, data: Any, source: str = "supernet") -> SupernetConfig:
        return from_mapping(cls, {} if data is None else data, source, "supernet")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flops_band": list(self.flops_band)}

    def training(self) -> dict[str, Any]:
        """The settings a checkpoint depends on (not the scoring's `bn_batches`, the `learned_loss` check,
        nor where it trains: `workers`, `threads`, `storage`)."""
        return {k: v for k, v in self.to_dict().items()
                if k not in ("bn_batches", "learned_loss", "workers", "threads", "storage")}




@dataclass(frozen=True)
class RerankConfig:
    """The space file's `rerank:` section: the search's last stage, which trains its near-ties again.

    The leader of a short search wins by less than the noise of its own score (a 6-epoch proxy, one
    seed, one search-validation split). With `enabled`, after the last trial the run's candidates within
    the noise of the leader (at most `candidates`, the leader included; see `runs._pareto.rerank_candidates`)
    are trained again from scratch at a higher fidelity, with `seeds` seeds each: `epochs_factor` x the
    proxy's epochs, on `subset_per_class` training images per class (null: the whole training split,
    search-validation excluded), scored on the same search-validation split. The run's best and the
    front's top then come from their mean accuracy (`runs._pareto.pareto_front`).

    "Within the noise": a search accuracy p measured on n search-validation images has the binomial
    standard error sqrt(p (1 - p) / n); a trial is a candidate when it is at most `margin` such errors
    (of the leader's accuracy) below the leader. On Fashion-MNIST's search-validation split (n = 12,000)
    at p = 0.88 one error is 0.30 points, about the 0.3-0.5 point spread issue 30 reports between seeds
    of one architecture, so the default 2 takes in the trials within about two such spreads. Off by
    default until a benchmark shows what it buys (benchmarks/search_quality.py).
    """
    enabled: bool = False
    candidates: int = 3
    margin: float = 2.0
    epochs_factor: int = 2
    subset_per_class: int | None = None
    seeds: int = 2

    def __post_init__(self) -> None:
        check_types(self, "rerank")
        if self.candidates < 2:
            fail("rerank", "candidates", self.candidates, "must be an integer >= 2 (the leader and one other)")
        if not 0 <= self.margin < math.inf:
            fail("rerank", "margin", self.margin, "must be a number >= 0 (standard errors of the leader's accuracy)")
        if self.epochs_factor < 1:
            fail("rerank", "epochs_factor", self.epochs_factor, "must be an integer >= 1 (x the proxy's epochs)")
        if self.subset_per_class is not None and self.subset_per_class < 1:
            fail("rerank", "subset_per_class", self.subset_per_class, "must be >= 1 or null (all)")
        if self.seeds < 1:
            fail("rerank", "seeds", self.seeds, "must be an integer >= 1")

    @classmethod
    def from_dict(cls, data: Any, source: str = "rerank") -> RerankConfig:
        return from_mapping(cls, {} if data is None else data, source, "rerank")
