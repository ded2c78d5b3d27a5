"""The search space file: its settings (`Budget`, `SearchSettings`), its choices (`Choice`, `StageSpace`),
and the parsing and validation of its YAML mapping into the fields of a `SearchSpace`.

The format is documented in search_spaces/README.md. The validation is written here because each
rule (choices, sharing, v1-only keys, strides) is specific to this format; which values a genome
field takes, which keys only v1 units use and which shuffles each unit has are the genome's rules
(`arch.py`), used here as they are.
"""

from __future__ import annotations

import copy
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping

from shufflesearch._config import check_types, fail, from_mapping
from shufflesearch._exec._devices import gpu_share_problem
from shufflesearch._exec._retries import DEFAULT_MAX_RETRIES
from shufflesearch.errors import ShuffleSearchError, reject_unknown_keys
from shufflesearch.genome._arch import SHUFFLES, STAGE_DEFAULTS, V1_ONLY, Stem, invalid_value
from shufflesearch.genome._cost import Cost
from shufflesearch.space._configs import LatencySettings, RerankConfig, SupernetConfig, proxy_config_from_dict
from shufflesearch.space._objectives import OBJECTIVE_SETS

STAGE_KEYS = ("unit", "base_channels", "repeats", "stride", "groups", "kernel_size", "bottleneck_ratio",
              "grouped_first_conv", "shuffle")
SHARED_KEYS = tuple(k for k in STAGE_KEYS if k not in ("base_channels", "stride"))
_TOP_KEYS = ("name", "description", "budget", "width_multiplier", "stem", "head", "shared", "stages",
             "proxy", "search", "evaluator", "supernet", "rerank")
EVALUATORS = ("proxy", "supernet")  # how a candidate is scored: proxy training, or a path of a trained supernet


@dataclass(frozen=True)
class Budget:
    """The cost caps: `mflops` millions of multiply-adds (the papers' FLOPs) at `input_size`, and/or
    `latency_ms` milliseconds of inference on `latency.target` (`LatencySettings`).

    Costs count a `num_classes`-way classifier on 3-channel input. `max_params` optionally caps the
    parameters too. Samples aim at a fraction of the budget drawn log-uniformly from
    [`min_fraction`, 1], so a search also explores the cost axis: of the FLOPs budget, or of the latency
    budget when that is given alone. Given alone, the latency budget leaves FLOPs uncapped: `SearchSpace`
    sets `mflops` to its dearest architecture's cost and `flops_capped` to False.
    """

    mflops: float | None = None
    input_size: int = 224
    num_classes: int = 1000
    max_params: int | None = None
    min_fraction: float = 0.3
    latency_ms: float | None = None
    latency: LatencySettings = field(default_factory=LatencySettings)
    flops_capped: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.latency, Mapping):
            object.__setattr__(self, "latency", LatencySettings.from_dict(self.latency))
        check_types(self, "budget")
        if self.mflops is None and self.latency_ms is None:
            raise ShuffleSearchError("budget: give mflops (millions of multiply-adds), latency_ms (milliseconds "
                                     "on budget.latency.target), or both")
        if self.mflops is not None and self.mflops <= 0:
            fail("budget", "mflops", self.mflops, "must be > 0 (millions of multiply-adds)")
        if self.latency_ms is not None and not 0 < self.latency_ms < math.inf:
            fail("budget", "latency_ms", self.latency_ms, "must be > 0 (milliseconds on budget.latency.target)")
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

    @property
    def latency_size(self) -> int:
        """The input size latency is measured at: `latency.input_size`, else the budget's."""
        return self.latency.input_size or self.input_size

    def fits(self, c: Cost, macs: float | None = None) -> bool:
        """Whether `c` is within `macs` multiply-adds (default the budget) and the params cap."""
        return c.macs <= (self.macs if macs is None else macs) and \
            (self.max_params is None or c.params <= self.max_params)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Budget:
        """The budget a run recorded (config.json "budget"; older runs lack the latency keys, runs without a
        latency budget record `latency` as null: the defaults)."""
        return cls(**{k: v for k, v in record.items() if k in {f.name for f in fields(cls)} and v is not None})

    def describe(self) -> str:
        """The budget in words: "30 MFLOPs (multiply-adds) at 224px", "8 ms on local (torch, batch 1, 1 thread)"."""
        parts = [f"{self.mflops:g} MFLOPs (multiply-adds) at {self.input_size}px"] if self.flops_capped else []
        if self.latency_ms is not None:
            lat = self.latency
            parts.append(f"{self.latency_ms:g} ms on {lat.target} ({lat.backend}, batch {lat.batch}, "
                         f"{lat.threads} thread{'s' if lat.threads > 1 else ''}, {self.latency_size}px"
                         f"{', predicted from ' + lat.table if lat.table else ''})")
        return " and ".join(parts)


@dataclass(frozen=True)
class SearchSettings:
    """The `search:` section: how many trials, which Optuna sampler, objectives and Tune scheduler.

    `objectives` is one of `objectives.OBJECTIVE_SETS`: [acc] or accuracy and one cost, e.g. [acc,
    mflops] (multiply-adds). The proxy task's epochs live in the `proxy:` section. The `tpe_*` keys are
    `optuna.samplers.TPESampler`'s `n_startup_trials` (random proposals before TPE models anything;
    Optuna's default 10 leaves a 16-trial search only 6 guided ones; GP's too), `multivariate` (one
    joint density per group of parameters that occur together, instead of one per parameter) and
    `constant_liar` (running trials count as bad results, so
    parallel proposals spread out). `gpus_per_trial` is each trial's GPU share (0.25: four trials a
    GPU), with the `proxy.device` rules of `_devices.py`. `max_retries`: how often a trial whose Ray
    worker or node died starts again (`_retries`); a trial that raises is never retried.
    `scheduler`: `asha` (Ray's, on accuracy alone: one rung at half the epochs), `moasha` (`_moasha`:
    rungs at `grace_period` x `reduction_factor`^k epochs, promotion by Pareto rank) or `none`; left
    out (None), `default_scheduler(objectives)`: moasha for two objectives, asha for one.
    `grace_period` and `reduction_factor` are moasha's alone (`SCHEDULER_SETTINGS`): set under another
    scheduler they would be ignored, so they are refused. `sampler: evolution` (the supernet evaluator's
    default, `default_sampler`) is SPOS's evolutionary search (`driver._evolution`): generations of
    `evolution_population` candidates, children of the best `evolution_parents` so far, by mutation (each
    choice redrawn with `evolution_mutation_prob`) or crossover.
    """

    trials: int = 32
    sampler: Literal["tpe", "gp", "nsga2", "random", "evolution"] = "tpe"
    objectives: tuple = ("acc", "mflops")
    scheduler: Literal["asha", "moasha", "none"] = None  # type: ignore[assignment]  # None: by the objectives
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    seed: int = 0
    # Optuna's defaults: 4 start-up trials with multivariate TPE did not beat random search or the FLOPs-greedy
    # pick (docs/benchmarks.md#search-quality: +0.20 [-0.69, +1.08] and -0.01 [-0.33, +0.30] points at 10 MFLOPs)
    tpe_startup_trials: int = 10
    tpe_multivariate: bool = False
    tpe_constant_liar: bool = True
    max_retries: int = DEFAULT_MAX_RETRIES
    reduction_factor: int = 3
    grace_period: int = 1
    evolution_population: int = 50  # SPOS's population_num (arXiv 1904.00420, its search.py)
    evolution_parents: int = 10  # SPOS's select_num
    evolution_mutation_prob: float = 0.1  # SPOS's m_prob

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...]:
        """The values a Literal field takes (the CLI offers these)."""
        return typing.get_args(typing.get_type_hints(cls)[name])

    def __post_init__(self) -> None:
        objectives = self.objectives
        if isinstance(objectives, str):
            objectives = [o.strip() for o in objectives.split(",")]
        if not isinstance(objectives, (list, tuple)):
            fail("search", "objectives", objectives, "must be a list such as [acc, mflops]")
        object.__setattr__(self, "objectives", tuple(objectives))
        if self.scheduler is None:
            object.__setattr__(self, "scheduler", default_scheduler(self.objectives))
        check_types(self, "search")
        if self.trials < 1:
            fail("search", "trials", self.trials, "must be an integer >= 1")
        if self.cpus_per_trial < 1:
            fail("search", "cpus_per_trial", self.cpus_per_trial, "must be an integer >= 1")
        if gpu_share_problem(self.gpus_per_trial):
            fail("search", "gpus_per_trial", self.gpus_per_trial, gpu_share_problem(self.gpus_per_trial))
        if self.tpe_startup_trials < 0:
            fail("search", "tpe_startup_trials", self.tpe_startup_trials, "must be an integer >= 0")
        if self.max_retries < 0:
            fail("search", "max_retries", self.max_retries, "must be an integer >= 0")
        if self.reduction_factor < 2:
            fail("search", "reduction_factor", self.reduction_factor, "must be an integer >= 2")
        if self.grace_period < 1:
            fail("search", "grace_period", self.grace_period, "must be an integer >= 1 (epochs)")
        if self.evolution_population < 2:
            fail("search", "evolution_population", self.evolution_population, "must be an integer >= 2")
        if not 1 <= self.evolution_parents <= self.evolution_population:
            fail("search", "evolution_parents", self.evolution_parents,
                 f"must be an integer in [1, evolution_population = {self.evolution_population}]")
        if not 0 <= self.evolution_mutation_prob <= 1:
            fail("search", "evolution_mutation_prob", self.evolution_mutation_prob, "must be a number in [0, 1]")
        if self.objectives not in OBJECTIVE_SETS:
            fail("search", "objectives", list(self.objectives),
                 f"must be one of {[list(o) for o in OBJECTIVE_SETS]}")
        defaults = {f.name: f.default for f in fields(self)}
        why = scheduler_conflict(self.scheduler, {k: getattr(self, k) for k in MOASHA_ONLY
                                                  if getattr(self, k) != defaults[k]})
        if why:
            raise ShuffleSearchError(why)


MOASHA_ONLY = ("grace_period", "reduction_factor")  # the `search:` keys only the moasha scheduler reads
SCHEDULER_SETTINGS = {"asha": (), "moasha": MOASHA_ONLY, "none": ()}  # what each scheduler reads of them


def default_scheduler(objectives: tuple[str, ...]) -> str:
    """The scheduler of a search that names none: moasha (Pareto promotion) for two objectives, asha for one."""
    return "moasha" if len(objectives) == 2 else "asha"


SUPERNET_SAMPLERS = ("evolution", "random")  # samplers made for thousands of cheap candidates (`driver._evolution`)


def default_sampler(evaluator: str) -> str:
    """The sampler of a search whose space file names none: evolution for the supernet evaluator, tpe for the proxy."""
    return "evolution" if evaluator == "supernet" else "tpe"


def sampler_conflict(sampler: str, evaluator: str) -> str | None:
    """Why `sampler` does not go with `evaluator`, or None.

    The supernet evaluator scores thousands of candidates: the model-based samplers' asks read the whole
    study, so they slow as it grows, and they propose scored genomes again; evolution's candidates are
    made by the supernet's loop alone (a proxy search asks Optuna's samplers through Tune).
    """
    if evaluator == "supernet" and sampler not in SUPERNET_SAMPLERS:
        return (f"search.sampler = {sampler!r}: the supernet evaluator takes {' or '.join(SUPERNET_SAMPLERS)} "
                f"(its thousands of candidates would slow {sampler}'s every ask); choose --sampler evolution")
    if evaluator != "supernet" and sampler == "evolution":
        return (f"search.sampler = 'evolution': is for the supernet evaluator, not {evaluator}; "
                "choose another --sampler")
    return None


def scheduler_conflict(scheduler: str, given: Mapping[str, Any]) -> str | None:
    """Why `given` (`search:` settings) do not go with `scheduler`: one it would ignore, or None."""
    for key in MOASHA_ONLY:
        if key in given and key not in SCHEDULER_SETTINGS.get(scheduler, MOASHA_ONLY):
            return (f"search.{key} = {given[key]!r}: is ignored by scheduler {scheduler}; only moasha reads "
                    f"it (set search.scheduler: moasha, or remove {key})")
    return None


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


def parse_space(data: Any, source: str) -> dict[str, Any]:
    """The fields of a `SearchSpace` (all but the budget's feasibility) from a parsed space file."""
    if not isinstance(data, Mapping):
        raise ShuffleSearchError(f"a search space must be a YAML mapping, got {type(data).__name__}")
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

    if isinstance(data["budget"], Mapping) and "flops_capped" in data["budget"]:
        raise ShuffleSearchError("budget.flops_capped: unknown key (set by the space itself; give mflops or not)")
    budget = from_mapping(Budget, data["budget"], source, "budget")
    width = _width_range(data.get("width_multiplier", [0.25, 2.0]))

    stem_data = _mapping(data.get("stem"), "stem", ("channels", "stride", "max_pool"))
    stem_channels = _choice("stem.channels", "channels", stem_data.get("channels", Stem.channels))
    for key in ("stride", "max_pool"):
        if key in stem_data:
            _choice(f"stem.{key}", key, stem_data[key], fixed_only=True)
    stem = Stem(stem_channels.values[0], stem_data.get("stride", Stem.stride),
                stem_data.get("max_pool", Stem.max_pool))
    head_data = _mapping(data.get("head"), "head", ("conv_channels",))
    head_conv = _choice("head.conv_channels", "conv_channels", head_data.get("conv_channels"))

    shared_data = _mapping(data.get("shared"), "shared", SHARED_KEYS)
    shared = {k: _choice(f"shared.{k}", k, v) for k, v in shared_data.items()}
    stages = _parse_stages(data["stages"], shared)
    _check_shared_used(shared, stages)

    proxy = proxy_config_from_dict({} if data.get("proxy") is None else data["proxy"], source)
    search = from_mapping(SearchSettings, data.get("search") or {}, source, "search")
    why = scheduler_conflict(search.scheduler, data.get("search") or {})  # a key given, even at its default
    if why:
        raise ShuffleSearchError(f"{source}: {why}")
    evaluator = data.get("evaluator", "proxy")
    if evaluator not in EVALUATORS:
        raise ShuffleSearchError(f"evaluator = {evaluator!r}: must be one of {list(EVALUATORS)}")
    supernet = SupernetConfig.from_dict(data.get("supernet"), source)
    rerank = RerankConfig.from_dict(data.get("rerank"), source)
    return dict(name=name, description=description, source=source, budget=budget, width_multiplier=width,
                stem=stem, stem_channels=stem_channels, head_conv=head_conv, shared=shared, stages=stages,
                proxy=proxy, search=search, evaluator=evaluator, supernet=supernet, rerank=rerank,
                raw=copy.deepcopy(dict(data)))


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
        why = invalid_value("out_channels" if key == "base_channels" else key, v)
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
    reject_unknown_keys(data, known, path)
    return data


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
        stride = own["stride"].values[0] if "stride" in own else STAGE_DEFAULTS["stride"]
        choices = {}
        for key in STAGE_KEYS:
            if key in own:
                choices[key] = own[key]
            elif key in shared:
                choices[key] = shared[key]
            elif key in STAGE_DEFAULTS:
                choices[key] = Choice(f"{path}.{key}", (STAGE_DEFAULTS[key],))
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
            for v in shuffle.values:
                if v and v not in SHUFFLES[unit]:
                    raise ShuffleSearchError(f"{shuffle.path} = {v!r}: not a shuffle placement of a {unit} unit "
                                             f"({list(SHUFFLES[unit])}), and {path} may be {unit}")
        stages.append(StageSpace(i, choices))
    return tuple(stages)


def _check_shared_used(shared: dict[str, Choice], stages: tuple[StageSpace, ...]) -> None:
    for key, c in shared.items():
        users = [st for st in stages if st.choices[key] is c]
        if not users:
            raise ShuffleSearchError(f"{c.path} = {_shown(c)}: every stage sets its own {key}, so this is unused")
        if key in V1_ONLY and not any("v1" in st.units() for st in users):
            raise ShuffleSearchError(f"{c.path} = {_shown(c)}: is a v1 option, but no stage using it can be v1")


def _shown(c: Choice) -> Any:
    return c.values[0] if not c.open else {"choices": list(c.values)}
