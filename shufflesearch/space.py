"""Search spaces: a YAML file of open ShuffleNet choices and a FLOPs budget, sampled within that budget.

FLOPs here, as in both ShuffleNet papers and torchvision's model tables, means multiply-adds (MACs):
the paper's "140 MFLOPs" ShuffleNet costs 140 here (`shufflesearch.cost`).

`SearchSpace.sample(trial)` is an Optuna define-by-run function. It suggests the discrete structure
(unit type, groups, repeats, kernel, shuffle, ... per stage or shared), then a fraction of the budget
(`budget.fraction`, log-uniform in [budget.min_fraction, 1]), then picks by bisection the largest
width multiplier whose rounded architecture costs at most that fraction of the budget. Only costed
architectures are returned, so none exceeds the budget. A structure too big even at the smallest
width is not returned: the trial gets the Optuna constraint `budget` > 0 (`trial.set_constraint`).

Channel rules (the divisors; `arch.py` checks them):
* a stage's width is `round_to_multiple(base_channels * multiplier, d)` where `d` is the lcm of the
  stage's own divisor (its groups for v1, 2 for v2's split) and what the next stage needs of its input
  (a v1 stage its groups, because a stride-2 v1 unit concatenates its input with an `out - in` branch;
  a stride-1 v2 stage 2); a stride-1 stage keeps its input width;
* a stride-2 v1 stage is at least one divisor step wider than its input (the branch needs `out > in`);
* the stem's channels are rounded down to a multiple of what stage 1 needs of its input (at least
  that), as the paper zoo does for g=8 below 1x.

The format is documented in search_spaces/README.md. The YAML validation is written here because
each rule (choices, sharing, v1-only keys, budget) is specific to this format.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping

import yaml

from ._config import check_types, fail, from_mapping
from ._io import parse_yaml, read_text
from .arch import KERNEL_SIZES, V1_SHUFFLES, V2_SHUFFLES, Arch, Head, Stage, Stem, \
    round_to_multiple
from .cost import Cost, cost
from .errors import ShuffleSearchError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "nsga2", "random")
SCHEDULERS = ("asha", "none")
OBJECTIVE_SETS = (("acc",), ("acc", "mflops"), ("acc", "latency"))

STAGE_KEYS = ("unit", "base_channels", "repeats", "stride", "groups", "kernel_size", "bottleneck_ratio",
              "grouped_first_conv", "shuffle")
SHARED_KEYS = tuple(k for k in STAGE_KEYS if k not in ("base_channels", "stride"))
V1_ONLY = ("groups", "bottleneck_ratio", "grouped_first_conv")
_STAGE_DEFAULTS = {"stride": 2, "groups": 1, "kernel_size": 3, "bottleneck_ratio": 0.25,
                   "grouped_first_conv": True, "shuffle": ""}
_BISECTION_STEPS = 24  # the multiplier to ~1e-7 of its range: finer than any channel step


@dataclass(frozen=True)
class Budget:
    """The cost cap: `mflops` millions of multiply-adds (the papers' FLOPs) at `input_size`.

    Costs count a `num_classes`-way classifier on 3-channel input. `max_params` optionally caps the
    parameters too. Samples aim at a fraction of the budget drawn log-uniformly from
    [`min_fraction`, 1], so a search also explores the cost axis.
    """

    mflops: float
    input_size: int = 224
    num_classes: int = 1000
    max_params: int | None = None
    min_fraction: float = 0.3

    def __post_init__(self) -> None:
        check_types(self, "budget")
        if self.mflops <= 0:
            fail("budget", "mflops", self.mflops, "must be > 0 (millions of multiply-adds)")
        if self.input_size < 8:
            fail("budget", "input_size", self.input_size, "must be an integer >= 8")
        if self.num_classes < 1:
            fail("budget", "num_classes", self.num_classes, "must be an integer >= 1")
        if self.max_params is not None and self.max_params < 1:
            fail("budget", "max_params", self.max_params, "must be an integer >= 1 or null")
        if not 0 < self.min_fraction <= 1:
            fail("budget", "min_fraction", self.min_fraction, "must be a number in (0, 1]")

    @property
    def macs(self) -> int:
        return int(self.mflops * 1e6)

    def fits(self, c: Cost, macs: float | None = None) -> bool:
        """Whether `c` is within `macs` multiply-adds (default the budget) and the params cap."""
        return c.macs <= (self.macs if macs is None else macs) and \
            (self.max_params is None or c.params <= self.max_params)


@dataclass(frozen=True)
class SearchSettings:
    """The `search:` section: how many trials, which Optuna sampler, objectives and Tune scheduler.

    `objectives` is one of [acc], [acc, mflops] (multiply-adds) or [acc, latency]. The proxy task's
    epochs live in the `proxy:` section.
    """

    trials: int = 32
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    objectives: tuple = ("acc", "mflops")
    scheduler: Literal["asha", "none"] = "asha"
    cpus_per_trial: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        objectives = self.objectives
        if isinstance(objectives, str):
            objectives = [o.strip() for o in objectives.split(",")]
        if not isinstance(objectives, (list, tuple)):
            fail("search", "objectives", objectives, "must be a list such as [acc, mflops]")
        object.__setattr__(self, "objectives", tuple(objectives))
        check_types(self, "search")
        if self.trials < 1:
            fail("search", "trials", self.trials, "must be an integer >= 1")
        if self.cpus_per_trial < 1:
            fail("search", "cpus_per_trial", self.cpus_per_trial, "must be an integer >= 1")
        if self.objectives not in OBJECTIVE_SETS:
            fail("search", "objectives", list(self.objectives),
                 f"must be one of {[list(o) for o in OBJECTIVE_SETS]}")


@dataclass(frozen=True)
class Choice:
    """One setting of the space: its YAML path (also the Optuna parameter name) and its values.

    One value means fixed; several mean an open choice the sampler decides.
    """

    path: str
    values: tuple

    @property
    def open(self) -> bool:
        return len(self.values) > 1


@dataclass(frozen=True)
class StageSpace:
    """One stage's settings, each its own `Choice` or the `shared:` one it inherits."""

    index: int
    choices: dict[str, Choice]

    def units(self) -> tuple[str, ...]:
        return self.choices["unit"].values

    def active(self, key: str, unit: str) -> bool:
        """Whether setting `key` is used by a unit of type `unit` (v1-only keys are not for v2)."""
        return unit == "v1" or key not in V1_ONLY


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """A validated search space; build with `from_yaml(path)` or `from_dict(data, source)`."""

    name: str
    description: str
    source: str
    budget: Budget
    width_multiplier: tuple[float, float]
    stem: Stem
    stem_channels: Choice
    head_conv: Choice
    shared: dict[str, Choice]
    stages: tuple[StageSpace, ...]
    proxy: Any
    search: SearchSettings
    raw: dict[str, Any] = field(repr=False)

    # --- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Load and validate a space file (`yaml.safe_load`)."""
        path = Path(path)
        data = parse_yaml(read_text(path, "search space file"), str(path))
        if isinstance(data, Mapping) and "name" not in data:
            data = {"name": path.stem, **data}
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "search space") -> SearchSpace:
        """Validate a parsed space; errors name `source`, the YAML path and the value."""
        try:
            return _parse(data, source)
        except ShuffleSearchError as e:
            if str(e).startswith(f"{source}:"):
                raise
            raise ShuffleSearchError(f"{source}: {e}") from None

    def with_budget(self, mflops: float) -> SearchSpace:
        """This space with another budget (millions of multiply-adds)."""
        raw = copy.deepcopy(self.raw)
        raw.setdefault("budget", {})["mflops"] = mflops
        return SearchSpace.from_dict(raw, self.source)

    def to_yaml(self) -> str:
        """The space as loaded (with any budget override), as YAML."""
        return yaml.safe_dump(self.raw, sort_keys=False)

    # --- sampling --------------------------------------------------------------------------------
    def sample(self, trial: optuna.Trial) -> Arch | None:
        """Define-by-run: suggest an architecture within the budget, or None if its structure cannot fit.

        Records in `trial.user_attrs`: `arch` (genome JSON), `arch_hash`, `mflops` (multiply-adds),
        `params`, `width_multiplier`; and the constraint `budget` (cost / budget - 1, feasible <= 0),
        plus `params` when `budget.max_params` is set. On None the constraints are > 0 and the caller
        should tell the study the trial is PRUNED (Optuna's TPE then learns to avoid it), never train it.
        """
        assign = self._suggest_structure(trial)
        lo = self.budget.min_fraction
        fraction = trial.suggest_float("budget.fraction", lo, 1.0, log=True) if lo < 1 else 1.0
        arch, c, mult = self._fit(assign, fraction * self.budget.macs)
        trial.set_constraint("budget", c.macs / self.budget.macs - 1)
        if self.budget.max_params is not None:
            trial.set_constraint("params", c.params / self.budget.max_params - 1)
        feasible = self.budget.fits(c)
        prefix = "" if feasible else "smallest_"
        trial.set_user_attr(f"{prefix}arch", arch.to_json())
        trial.set_user_attr(f"{prefix}mflops", c.mflops)
        trial.set_user_attr(f"{prefix}params", c.params)
        if not feasible:
            return None
        trial.set_user_attr("arch_hash", arch.hash)
        trial.set_user_attr("width_multiplier", mult)
        return arch

    def cost(self, arch: Arch) -> Cost:
        """`cost(arch)` at the budget's input size and classes: what the budget caps."""
        return cost(arch, self.budget.input_size, self.budget.num_classes)

    def count(self) -> int:
        """The number of distinct discrete structures (every choice but the width).

        Each structure is then sampled at a continuous width multiplier, so widths are not counted.
        Two stem choices that round to the same channels still count twice.
        """
        glob = self._global_choices()
        both = only_v2 = 0
        for values in itertools.product(*(c.values for c in glob)):
            assign = {c.path: v for c, v in zip(glob, values)}
            total = v2 = 1
            for st in self.stages:
                unit = st.choices["unit"]
                units = (assign[unit.path],) if unit.path in assign else unit.values
                n = {u: math.prod(len(c.values) for k, c in st.choices.items()
                                  if k != "unit" and c.path not in assign and st.active(k, u)) for u in units}
                total *= sum(n.values())
                v2 *= n.get("v2", 0)
            both += total
            only_v2 += v2
        # shared v1-only choices make no difference to an all-v2 architecture: count each once
        shared_v1 = math.prod(len(c.values) for k, c in self.shared.items() if k in V1_ONLY)
        return both - only_v2 + only_v2 // shared_v1

    def cost_range(self) -> tuple[Cost, Cost]:
        """The cheapest and dearest architecture of the space, ignoring the budget (at its input size).

        Found by coordinate descent over the choices at the smallest / largest width multiplier;
        exact when each choice's effect on cost does not depend on the others' (true of the shipped
        spaces, whose results the tests check against enumeration).
        """
        return self._extreme(self.width_multiplier[0], min), self._extreme(self.width_multiplier[1], max)

    # --- internals -------------------------------------------------------------------------------
    def _global_choices(self) -> list[Choice]:
        return [*self.shared.values(), self.stem_channels, self.head_conv]

    def _own_choices(self) -> list[Choice]:
        return [c for st in self.stages for c in st.choices.values() if c.path.startswith(f"stages[{st.index}]")]

    def _suggest_structure(self, trial: optuna.Trial) -> dict[str, Any]:
        """Every choice's value (YAML path -> value): open ones suggested, fixed ones as written."""
        assign: dict[str, Any] = {}
        for choice in self._suggestion_order(assign):
            assign[choice.path] = (trial.suggest_categorical(choice.path, list(choice.values))
                                   if choice.open else choice.values[0])
        return assign

    def _suggestion_order(self, assign: dict[str, Any]) -> Iterator[Choice]:
        """Choices in the order a trial suggests them; a stage's v1-only ones only when it is v1.

        Reads `assign` as the caller fills it, so each stage's unit is known before its other keys.
        """
        seen: set[str] = set()
        for c in self._global_choices():
            seen.add(c.path)
            yield c
        for st in self.stages:
            unit = st.choices["unit"]
            if unit.path not in seen:
                seen.add(unit.path)
                yield unit
            for key, c in st.choices.items():
                if c.path not in seen and st.active(key, assign[unit.path]):
                    seen.add(c.path)
                    yield c

    def _arch(self, assign: Mapping[str, Any], mult: float) -> Arch:
        """The architecture of structure `assign` at width multiplier `mult`, channels rounded."""
        stages = []
        for st in self.stages:
            unit = assign[st.choices["unit"].path]
            v = {k: assign[c.path] if st.active(k, unit) else _STAGE_DEFAULTS[k]
                 for k, c in st.choices.items() if k not in ("unit", "base_channels")}
            stages.append((unit, v, assign.get(st.choices["base_channels"].path)))
        # what each stage needs of its input channels, and of its output channels (back to front)
        need_in, need_out = [1] * len(stages), [1] * len(stages)
        after = 1
        for i in reversed(range(len(stages))):
            unit, v, _ = stages[i]
            own = v["groups"] if unit == "v1" else 2
            need_out[i] = math.lcm(own, after)
            need_in[i] = need_out[i] if v["stride"] == 1 else (v["groups"] if unit == "v1" else 1)
            after = need_in[i]
        stem = max(need_in[0], assign[self.stem_channels.path] // need_in[0] * need_in[0])
        in_ch, built = stem, []
        for (unit, v, base), d in zip(stages, need_out):
            if v["stride"] == 1:
                out = in_ch
            else:
                out = round_to_multiple(base * mult, d)
                if unit == "v1" and out <= in_ch:
                    out = (in_ch // d + 1) * d
            built.append(Stage(unit, out_channels=out, **v))
            in_ch = out
        return Arch(stages=tuple(built), stem=Stem(stem, self.stem.stride, self.stem.max_pool),
                    head=Head(assign[self.head_conv.path]))

    def _fit(self, assign: Mapping[str, Any], target_macs: float) -> tuple[Arch, Cost, float]:
        """The widest architecture of `assign` within `target_macs` (and the params cap), by bisection.

        Falls back to the smallest width when even that exceeds the target; the caller checks it
        against the budget. Only architectures actually costed are returned.
        """
        lo, hi = self.width_multiplier
        best = self._arch(assign, lo)
        best_cost = self.cost(best)
        if not self.budget.fits(best_cost, target_macs):
            return best, best_cost, lo
        top = self._arch(assign, hi)
        top_cost = self.cost(top)
        if self.budget.fits(top_cost, target_macs):
            return top, top_cost, hi
        best_mult = lo
        for _ in range(_BISECTION_STEPS):
            mid = (lo + hi) / 2
            arch = self._arch(assign, mid)
            c = best_cost if arch == best else self.cost(arch)
            if self.budget.fits(c, target_macs):
                lo, best, best_cost, best_mult = mid, arch, c, mid
            else:
                hi = mid
        return best, best_cost, best_mult

    def _extreme(self, mult: float, pick: Any, key: str = "macs") -> Cost:
        """Coordinate descent (`pick=min`) or ascent (`max`) of one cost field over the choices."""
        choices = [c for c in [*self._global_choices(), *self._own_choices()] if c.open]
        assign = {c.path: c.values[0] for c in [*self._global_choices(), *self._own_choices()]}

        def value(a: Mapping[str, Any]) -> tuple[int, Cost]:
            c = self.cost(self._arch(a, mult))
            return getattr(c, key), c

        best, best_cost = value(assign)
        changed = True
        while changed:
            changed = False
            for choice in choices:
                for v in choice.values:
                    candidate = {**assign, choice.path: v}
                    score, c = value(candidate)
                    if pick(score, best) != best:
                        assign, best, best_cost, changed = candidate, score, c, True
        return best_cost


# --- parsing -------------------------------------------------------------------------------------
_TOP_KEYS = ("name", "description", "budget", "width_multiplier", "stem", "head", "shared", "stages",
             "proxy", "search")


def _check_value(key: str, value: Any) -> str | None:
    """Why `value` is not a valid `key` of a stage (or stem/head), or None."""
    if key in ("base_channels", "repeats", "groups", "channels"):
        return None if _is_int(value) and value >= 1 else "must be an integer >= 1"
    if key == "conv_channels":
        return None if value is None or (_is_int(value) and value >= 1) else "must be an integer >= 1 or null"
    if key == "unit":
        return None if value in ("v1", "v2") else "must be 'v1' or 'v2'"
    if key == "stride":
        return None if value in (1, 2) and _is_int(value) else "must be 1 or 2"
    if key == "kernel_size":
        return None if _is_int(value) and value in KERNEL_SIZES else f"must be one of {list(KERNEL_SIZES)}"
    if key == "bottleneck_ratio":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
        return None if ok else "must be a number in (0, 1]"
    if key in ("grouped_first_conv", "max_pool"):
        return None if isinstance(value, bool) else "must be true or false"
    if key == "shuffle":
        return None if value in V1_SHUFFLES + V2_SHUFFLES else f"must be one of {list(V1_SHUFFLES + V2_SHUFFLES)}"
    raise AssertionError(key)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _choice(path: str, key: str, spec: Any, fixed_only: bool = False) -> Choice:
    """A `Choice` from `value` or `{choices: [values]}`, each value checked."""
    if isinstance(spec, Mapping):
        if fixed_only:
            fail(path.rsplit(".", 1)[0], key, dict(spec), "is fixed: give one value, not choices")
        if set(spec) != {"choices"}:
            extra = sorted(set(spec) - {"choices"})
            raise ShuffleSearchError(f"{path}.{extra[0] if extra else 'choices'}: "
                                     f"a choice is written {{choices: [value, ...]}}")
        values = spec["choices"]
        if not isinstance(values, list) or not values:
            raise ShuffleSearchError(f"{path}.choices = {values!r}: must be a non-empty list")
    else:
        values = [spec]
    seen = []
    for v in values:
        why = _check_value(key, v)
        if why:
            raise ShuffleSearchError(f"{path} = {v!r}: {why}")
        if v in seen:
            raise ShuffleSearchError(f"{path} = {v!r}: listed twice in choices")
        seen.append(v)
    return Choice(path, tuple(values))


def _mapping(data: Any, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ShuffleSearchError(f"{path} = {data!r}: must be a mapping")
    for key in data:
        if key not in known:
            raise ShuffleSearchError(f"{path + '.' if path else ''}{key}: unknown key (expected one of {list(known)})")
    return data


def _parse(data: Any, source: str) -> SearchSpace:
    if not isinstance(data, Mapping):
        raise ShuffleSearchError(f"{source}: a search space must be a YAML mapping, got {type(data).__name__}")
    data = _mapping(data, "", _TOP_KEYS)
    for key in ("budget", "stages"):
        if key not in data:
            raise ShuffleSearchError(f"{key}: required section is missing")
    name = data.get("name", "space")
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\ "):
        raise ShuffleSearchError(f"name = {name!r}: must be a non-empty string without spaces or slashes")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ShuffleSearchError(f"description = {description!r}: must be a string")

    if isinstance(data["budget"], Mapping) and "mflops" not in data["budget"]:
        raise ShuffleSearchError("budget.mflops: required (millions of multiply-adds, the papers' FLOPs)")
    budget = from_mapping(Budget, data["budget"], source, "budget")
    width = _width_range(data.get("width_multiplier", [0.25, 2.0]))

    stem_data = _mapping(data.get("stem"), "stem", ("channels", "stride", "max_pool"))
    stem_channels = _choice("stem.channels", "channels", stem_data.get("channels", Stem.channels))
    for key in ("stride", "max_pool"):
        if key in stem_data:
            _choice(f"stem.{key}", "stride" if key == "stride" else "max_pool", stem_data[key], fixed_only=True)
    stem = Stem(stem_channels.values[0], stem_data.get("stride", Stem.stride),
                stem_data.get("max_pool", Stem.max_pool))
    head_data = _mapping(data.get("head"), "head", ("conv_channels",))
    head_conv = _choice("head.conv_channels", "conv_channels", head_data.get("conv_channels"))

    shared_data = _mapping(data.get("shared"), "shared", SHARED_KEYS)
    shared = {k: _choice(f"shared.{k}", k, v) for k, v in shared_data.items()}
    stages = _parse_stages(data["stages"], shared)
    _check_shared_used(shared, stages)

    proxy = _parse_proxy(data.get("proxy"), source)
    search = from_mapping(SearchSettings, data.get("search") or {}, source, "search")
    space = SearchSpace(name=name, description=description, source=source, budget=budget,
                        width_multiplier=width, stem=stem, stem_channels=stem_channels, head_conv=head_conv,
                        shared=shared, stages=stages, proxy=proxy, search=search, raw=copy.deepcopy(dict(data)))
    _check_budget(space)
    return space


def _width_range(value: Any) -> tuple[float, float]:
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok or value[0] > value[1]:
        raise ShuffleSearchError(f"width_multiplier = {value!r}: must be [min, max] with 0 < min <= max")
    return float(value[0]), float(value[1])


def _parse_stages(data: Any, shared: dict[str, Choice]) -> tuple[StageSpace, ...]:
    if not isinstance(data, list) or not data:
        raise ShuffleSearchError(f"stages = {data!r}: must be a non-empty list of stages")
    stages = []
    for i, stage_data in enumerate(data):
        path = f"stages[{i}]"
        stage_data = _mapping(stage_data, path, STAGE_KEYS)
        own = {k: _choice(f"{path}.{k}", k, v, fixed_only=(k == "stride")) for k, v in stage_data.items()}
        stride = own["stride"].values[0] if "stride" in own else _STAGE_DEFAULTS["stride"]
        choices = {}
        for key in STAGE_KEYS:
            if key in own:
                choices[key] = own[key]
            elif key in shared:
                choices[key] = shared[key]
            elif key in _STAGE_DEFAULTS:
                choices[key] = Choice(f"{path}.{key}", (_STAGE_DEFAULTS[key],))
            elif key == "base_channels" and stride == 1:
                choices[key] = Choice(f"{path}.{key}", (None,))
            else:
                raise ShuffleSearchError(f"{path}.{key}: required (in the stage or in shared:)")
        if stride == 1 and "base_channels" in own:
            fail(path, "base_channels", own["base_channels"].values[0],
                 "a stride-1 stage keeps its input width; leave base_channels out")
        units = choices["unit"].values
        for key in V1_ONLY:
            if key in own and "v1" not in units:
                fail(path, key, stage_data[key], f"is a v1 option, but {path} can only be a v2 unit")
        shuffle = choices["shuffle"]
        for unit in units:
            valid = V1_SHUFFLES if unit == "v1" else V2_SHUFFLES
            for v in shuffle.values:
                if v and v not in valid:
                    raise ShuffleSearchError(f"{shuffle.path} = {v!r}: not a shuffle placement of a {unit} unit "
                                             f"({list(valid)}), and {path} may be {unit}")
        stages.append(StageSpace(i, choices))
    return tuple(stages)


def _check_shared_used(shared: dict[str, Choice], stages: tuple[StageSpace, ...]) -> None:
    for key, c in shared.items():
        users = [st for st in stages if st.choices[key] is c]
        if not users:
            raise ShuffleSearchError(f"{c.path} = {_shown(c)}: every stage sets its own {key}, so this is unused")
        if key in V1_ONLY and users and not any("v1" in st.units() for st in users):
            raise ShuffleSearchError(f"{c.path} = {_shown(c)}: is a v1 option, but no stage using it can be v1")


def _shown(c: Choice) -> Any:
    return c.values[0] if not c.open else {"choices": list(c.values)}


def _parse_proxy(data: Any, source: str) -> Any:
    from .proxy import proxy_config_from_dict  # lazily: it brings torch

    return proxy_config_from_dict({} if data is None else data, source)


def _check_budget(space: SearchSpace) -> None:
    b = space.budget
    where = f"at {b.input_size}x{b.input_size}, {b.num_classes} classes"
    cheapest = space._extreme(space.width_multiplier[0], min)
    if cheapest.macs > b.macs:
        fail("budget", "mflops", b.mflops, f"the smallest architecture of this space costs "
             f"{cheapest.mflops:.2f} MFLOPs (multiply-adds) {where}, over the budget")
    if b.max_params is not None:
        fewest = space._extreme(space.width_multiplier[0], min, key="params")
        if fewest.params > b.max_params:
            fail("budget", "max_params", b.max_params,
                 f"the smallest architecture of this space has {fewest.params:,d} params {where}")
