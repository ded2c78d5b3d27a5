"""The genome: one immutable description of a ShuffleNet-family network.

An `Arch` is a stem, an ordered tuple of stages and a head. Every other part of shufflesearch takes or
gives an `Arch`: the cost model, the model builder, the search-space sampler, the registry.

The genome's rules live here, once: which values each field takes (`invalid_value`), which fields
only v1 units use (`V1_ONLY`), which shuffle placements each unit has (`SHUFFLES`), and the channel
rules, checked by `Arch.units()` (which expands the stages into the concrete per-unit channel counts
that both `cost.py` and `model.py` consume) and applied by `round_channels` (which the search space
uses to turn wanted widths into valid ones):

* ShuffleNet v1 unit (Zhang et al., arXiv 1707.01083): bottleneck width is
  ``round_to_multiple(out_channels * bottleneck_ratio, groups)`` (the paper's 1/4, rounded to the
  nearest multiple of the groups so the grouped convs divide it); a stride-2 unit's main branch
  outputs ``out - in`` channels, concatenated with the 3x3 avg-pooled input.
* ShuffleNet V2 unit (Ma et al., arXiv 1807.11164), as torchvision builds it: each branch carries
  ``out_channels / 2`` channels, so ``out_channels`` must be even.
* A stride-1 unit keeps its input width; a stride-2 v1 unit needs ``out > in`` and its input a
  multiple of its groups (the ``out - in`` branch is grouped).

No torch here: the search calls this on every sample.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from shufflesearch._io import parse_yaml, read_text, write_text_atomic
from shufflesearch.errors import ShuffleSearchError, errors_from, reject_unknown_keys

UnitType = Literal["v1", "v2"]
UNITS = ("v1", "v2")
V1_SHUFFLES = ("after_gconv1", "before_gconv1", "after_dwconv", "none")
V2_SHUFFLES = ("after_concat", "none")
SHUFFLES = {"v1": V1_SHUFFLES, "v2": V2_SHUFFLES}
KERNEL_SIZES = (3, 5, 7)
DEFAULT_SHUFFLE = {"v1": "after_gconv1", "v2": "after_concat"}
V1_ONLY = ("groups", "bottleneck_ratio", "grouped_first_conv")  # Stage fields a v2 unit leaves at their defaults


def round_to_multiple(value: float, divisor: int) -> int:
    """The multiple of `divisor` nearest to `value` (halves round up), at least `divisor`."""
    return max(divisor, int(value / divisor + 0.5) * divisor)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def invalid_value(name: str, value: Any) -> str | None:
    """Why `value` cannot be the stem, stage or head field `name`, or None. A shuffle placement is
    checked against every unit's here; `Stage.validate` checks it against its own unit's."""
    if name in ("channels", "out_channels", "repeats", "groups"):
        return None if _is_int(value) and value >= 1 else "must be an integer >= 1"
    if name == "conv_channels":
        return None if value is None or (_is_int(value) and value >= 1) else "must be an integer >= 1 or null"
    if name == "unit":
        return None if value in UNITS else "must be 'v1' or 'v2'"
    if name == "stride":
        return None if _is_int(value) and value in (1, 2) else "must be 1 or 2"
    if name == "kernel_size":
        return None if _is_int(value) and value in KERNEL_SIZES else f"must be one of {list(KERNEL_SIZES)}"
    if name == "bottleneck_ratio":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
        return None if ok else "must be a number in (0, 1]"
    if name in ("grouped_first_conv", "max_pool"):
        return None if isinstance(value, bool) else "must be true or false"
    if name == "shuffle":
        every = list(dict.fromkeys(V1_SHUFFLES + V2_SHUFFLES))
        return None if value in every else f"must be one of {every}"
    raise AssertionError(name)


def _check_fields(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        why = invalid_value(f.name, getattr(obj, f.name))
        if why:
            _fail(where, f.name, getattr(obj, f.name), why)


def out_divisor(unit: str, groups: int) -> int:
    """What a stage's output channels must be a multiple of: its groups (v1), 2 (v2 splits them in halves)."""
    return groups if unit == "v1" else 2


def stride2_in_divisor(unit: str, groups: int) -> int:
    """What a stride-2 unit needs its input channels to be a multiple of: its groups for v1 (the
    `out - in` branch is grouped), nothing for v2."""
    return groups if unit == "v1" else 1


def round_channels(stem: int, stages: Sequence[tuple[str, int, int]],
                   widths: Sequence[float | None]) -> tuple[int, list[int]]:
    """Valid channel counts near wanted ones: the stem's and each stage's `out_channels`.

    `stages` are (unit, stride, groups). A stride-2 stage's `widths[i]` is rounded to a multiple of
    the lcm of its own divisor and what the next stage needs of its input, and a v1 stage is made
    one step wider than its input if it is not; a stride-1 stage keeps its input width (its width
    is ignored); the stem is rounded down to what stage 1 needs of its input (at least that).
    """
    need_out, after = [1] * len(stages), 1
    for i in reversed(range(len(stages))):
        unit, stride, groups = stages[i]
        need_out[i] = math.lcm(out_divisor(unit, groups), after)
        after = need_out[i] if stride == 1 else stride2_in_divisor(unit, groups)
    in_channels = stem = max(after, stem // after * after)
    outs = []
    for (unit, stride, _), d, width in zip(stages, need_out, widths):
        if stride == 2:
            out = round_to_multiple(width, d)
            if unit == "v1" and out <= in_channels:  # a stride-2 v1 unit needs out > in
                out = (in_channels // d + 1) * d
            in_channels = out
        outs.append(in_channels)
    return stem, outs


def _fail(where: str, field_name: str, value: Any, why: str) -> None:
    raise ShuffleSearchError(f"{where}.{field_name} = {value!r}: {why}")


@dataclass(frozen=True)
class Stem:
    """3x3 conv (stride `stride`) -> BN -> ReLU, then an optional 3x3 stride-2 max-pool."""

    channels: int = 24
    stride: int = 2
    max_pool: bool = True

    def __post_init__(self) -> None:
        _check_fields(self, "stem")


@dataclass(frozen=True)
class Stage:
    """`repeats` units of one type; the first has stride `stride`, the others stride 1.

    `groups`, `bottleneck_ratio` and `grouped_first_conv` apply to v1 units only (v2 takes the
    defaults). `shuffle` is where the channel shuffle goes: for v1 `after_gconv1` (the paper),
    `before_gconv1`, `after_dwconv` or `none` (Table 3's ablation); for v2 `after_concat`
    (torchvision) or `none`. Left out, it is the unit type's default.
    """

    unit: UnitType
    out_channels: int
    repeats: int
    stride: int = 2
    groups: int = 1
    kernel_size: int = 3
    bottleneck_ratio: float = 0.25
    grouped_first_conv: bool = True
    shuffle: str = ""

    def __post_init__(self) -> None:
        if not self.shuffle and self.unit in DEFAULT_SHUFFLE:
            object.__setattr__(self, "shuffle", DEFAULT_SHUFFLE[self.unit])

    def validate(self, where: str) -> None:
        _check_fields(self, where)
        if self.shuffle not in SHUFFLES[self.unit]:
            _fail(where, "shuffle", self.shuffle, f"must be one of {list(SHUFFLES[self.unit])} for a {self.unit} unit")
        if self.unit == "v2":
            for name in V1_ONLY:
                if getattr(self, name) != STAGE_DEFAULTS[name]:
                    _fail(where, name, getattr(self, name), f"is a v1 option; a v2 unit takes {STAGE_DEFAULTS[name]!r}")
        divisor = out_divisor(self.unit, self.groups)
        if self.out_channels % divisor:
            _fail(where, "out_channels", self.out_channels, f"must be divisible by groups={divisor}"
                  if self.unit == "v1" else "must be even for a v2 unit (split in two)")

    def mid_channels(self) -> int:
        """Bottleneck width of a v1 unit; the branch width of a v2 unit."""
        if self.unit == "v2":
            return self.out_channels // 2
        return round_to_multiple(self.out_channels * self.bottleneck_ratio, self.groups)


STAGE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Stage) if f.default is not dataclasses.MISSING}


@dataclass(frozen=True)
class Head:
    """Optional 1x1 conv -> BN -> ReLU (V2's conv5, `conv_channels`), global pool, classifier."""

    conv_channels: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "head")


@dataclass(frozen=True)
class Unit:
    """One unit with all channel counts resolved: what a layer is built from and costed by."""

    unit: UnitType
    in_channels: int
    out_channels: int
    mid_channels: int
    stride: int
    groups1: int  # groups of the first pointwise conv (v1)
    groups2: int  # groups of the second pointwise conv (v1)
    kernel_size: int
    shuffle: str
    shuffle_groups: int  # the g of the channel shuffle; 1 means no shuffle

    @property
    def branch_out(self) -> int:
        """Channels produced by the main (v1) or second (v2) branch."""
        if self.unit == "v2":
            return self.out_channels // 2
        return self.out_channels - self.in_channels if self.stride == 2 else self.out_channels


@dataclass(frozen=True)
class Arch:
    """A ShuffleNet-family architecture: the genome every part of shufflesearch exchanges."""

    stages: tuple[Stage, ...]
    stem: Stem = field(default_factory=Stem)
    head: Head = field(default_factory=Head)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            _fail("arch", "stages", [], "needs at least one stage")
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, Stage):
                _fail("arch", f"stages[{i}]", stage, "must be a Stage")
            stage.validate(f"stages[{i}]")
        self.units()  # validates the channel rules between stages

    @property
    def reduction(self) -> int:
        """Total downsampling of the input: the stem's stride, its max-pool, each stage's stride."""
        reduction = self.stem.stride * (2 if self.stem.max_pool else 1)
        for stage in self.stages:
            reduction *= stage.stride
        return reduction

    @property
    def num_features(self) -> int:
        return self.head.conv_channels or self.stages[-1].out_channels

    def units(self) -> list[list[Unit]]:
        """The stages expanded to resolved units, one list per stage; raises on channel conflicts."""
        stages: list[list[Unit]] = []
        in_channels = self.stem.channels
        for i, stage in enumerate(self.stages):
            where = f"stages[{i}]"
            units = []
            for r in range(stage.repeats):
                stride = stage.stride if r == 0 else 1
                units.append(_resolve_unit(stage, in_channels, stride, first=(r == 0), where=where))
                in_channels = stage.out_channels
            stages.append(units)
        return stages

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "stem": dataclasses.asdict(self.stem),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "head": dataclasses.asdict(self.head),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "arch") -> Arch:
        """Build from a dict as written by `to_dict`; unknown or missing keys name `source`."""
        with errors_from(source):
            if not isinstance(data, Mapping):
                raise ShuffleSearchError(f"expected a mapping with 'stages', got {type(data).__name__}")
            reject_unknown_keys(data, ("stem", "stages", "head"))
            if "stages" not in data or not isinstance(data["stages"], list):
                raise ShuffleSearchError("stages: a list of stages is required")
            return cls(stages=tuple(_dataclass_from(Stage, s, f"stages[{i}]") for i, s in enumerate(data["stages"])),
                       stem=_dataclass_from(Stem, data.get("stem", {}), "stem"),
                       head=_dataclass_from(Head, data.get("head", {}), "head"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: str = "arch") -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ShuffleSearchError(f"{source}: not valid JSON ({e})") from None
        return cls.from_dict(data, source)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "arch") -> Arch:
        return cls.from_dict(parse_yaml(text, source), source)

    @classmethod
    def load(cls, path: str | Path) -> Arch:
        """Read a genome from a .yaml/.yml or .json file."""
        path = Path(path)
        text = read_text(path, "genome file")
        if path.suffix == ".json":
            return cls.from_json(text, str(path))
        return cls.from_yaml(text, str(path))

    def save(self, path: str | Path) -> None:
        """Write the genome as YAML (or JSON for a .json path), atomically."""
        path = Path(path)
        write_text_atomic(path, self.to_json() if path.suffix == ".json" else self.to_yaml())

    @property
    def hash(self) -> str:
        """A short stable identity: the first 10 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:10]

    def summary(self) -> str:
        """One line, e.g. `v1g3k3x4:240 | v1g3k3x8:480 | v1g3k3x4:960`."""
        parts = []
        for s in self.stages:
            g = f"g{s.groups}" if s.unit == "v1" else ""
            sh = "" if s.shuffle == DEFAULT_SHUFFLE[s.unit] else f"[{s.shuffle}]"
            parts.append(f"{s.unit}{g}k{s.kernel_size}x{s.repeats}:{s.out_channels}{sh}")
        head = f" | conv{self.head.conv_channels}" if self.head.conv_channels else ""
        return f"stem{self.stem.channels} | " + " | ".join(parts) + head


def _resolve_unit(stage: Stage, in_channels: int, stride: int, first: bool, where: str) -> Unit:
    out = stage.out_channels
    if stage.unit == "v2":
        if stride == 1 and in_channels != out:
            _fail(where, "out_channels", out,
                  f"a stride-1 v2 unit needs in == out, but its input has {in_channels} channels")
        return Unit("v2", in_channels, out, out // 2, stride, 1, 1, stage.kernel_size, stage.shuffle,
                    2 if stage.shuffle != "none" else 1)

    g = stage.groups
    groups1 = g if (stage.grouped_first_conv or not first) else 1
    mid = stage.mid_channels()
    if stride == 2 and out <= in_channels:
        _fail(where, "out_channels", out,
              f"a stride-2 v1 unit concatenates its input, so it needs out > in ({in_channels})")
    if stride == 1 and in_channels != out:
        _fail(where, "out_channels", out,
              f"a stride-1 v1 unit adds its input, so it needs in == out, but its input has {in_channels}")
    if in_channels % groups1:
        _fail(where, "groups", g, f"does not divide the unit's {in_channels} input channels "
                                  "(set grouped_first_conv: false, as the paper does in stage 2)")
    branch_out = out - in_channels if stride == 2 else out
    if branch_out % g:
        _fail(where, "out_channels", out,
              f"the main branch's {branch_out} channels (out - in) are not divisible by groups={g}")
    if stage.shuffle == "before_gconv1" and in_channels % g:
        _fail(where, "shuffle", stage.shuffle, f"needs the {in_channels} input channels divisible by groups={g}")
    return Unit("v1", in_channels, out, mid, stride, groups1, g, stage.kernel_size, stage.shuffle,
                g if stage.shuffle != "none" else 1)


def _dataclass_from(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ShuffleSearchError(f"{where} = {data!r}: must be a mapping")
    reject_unknown_keys(data, [f.name for f in dataclasses.fields(cls)], where)
    try:
        return cls(**data)
    except TypeError as e:  # a required field is missing
        raise ShuffleSearchError(f"{where}: {e}") from None
