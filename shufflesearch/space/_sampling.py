"""From a space's choices to architectures within its budget: suggestion, width fitting, counting, cost range.

A *structure* is one value for every choice of the space (a dict from YAML path to value), everything
but the width. `structure_arch` turns a structure and a width multiplier into an `Arch`: each stride-2
stage wants `base_channels * multiplier` channels, and `arch.round_channels` makes that valid (the
divisors a stage and its successor need, `out > in` for a stride-2 v1 stage, the stem rounded down to
what stage 1 needs, as the paper zoo does for g=8 below 1x). `fit` finds by bisection the widest
multiplier whose architecture costs at most a target, costing only what it returns.

Written here because the width is not an Optuna parameter: it is solved for, so that every sample
is within the budget by construction instead of rejected after the fact.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from shufflesearch._config import fail
from shufflesearch.genome._arch import STAGE_DEFAULTS, V1_ONLY, Arch, Head, Stage, Stem, round_channels
from shufflesearch.genome._cost import Cost
from shufflesearch.space._file import Choice

if TYPE_CHECKING:
    import optuna

    from shufflesearch.space._space import SearchSpace

BISECTION_STEPS = 24  # the multiplier to ~1e-7 of its range: finer than any channel step


def all_choices(space: SearchSpace) -> list[Choice]:
    """Every distinct choice of the space: the shared ones, the stem's and head's, then each stage's own."""
    own = [c for st in space.stages for c in st.choices.values() if c.path.startswith(f"stages[{st.index}]")]
    return [*_global_choices(space), *own]


def _global_choices(space: SearchSpace) -> list[Choice]:
    return [*space.shared.values(), space.stem_channels, space.head_conv]


def sample(space: SearchSpace, trial: optuna.Trial, latency: Callable[[Arch], float] | None = None) -> Arch | None:
    """`SearchSpace.sample`: a structure, a budget fraction, the widest width within it (see there)."""
    assign = suggest_structure(space, trial)
    budget = space.budget
    fraction = trial.suggest_float("budget.fraction", budget.min_fraction, 1.0, log=True) \
        if budget.min_fraction < 1 else 1.0
    if latency is not None and budget.latency_ms is not None and not budget.flops_capped:
        target = fraction * budget.latency_ms
        arch, c, mult = fit(space, assign, lambda a, cost: budget.fits(cost) and latency(a) <= target)
    else:
        arch, c, mult = fit(space, assign, lambda a, cost: budget.fits(cost, fraction * budget.macs))
    trial.set_constraint("budget", c.macs / budget.macs - 1)
    if budget.max_params is not None:
        trial.set_constraint("params", c.params / budget.max_params - 1)
    feasible = budget.fits(c)
    prefix = "" if feasible else "smallest_"
    if feasible and latency is not None and budget.latency_ms is not None:
        ms = latency(arch)
        trial.set_constraint("latency", ms / budget.latency_ms - 1)
        feasible = feasible and ms <= budget.latency_ms
        prefix = "" if feasible else "rejected_"
        trial.set_user_attr(f"{prefix}latency_ms", ms)
    trial.set_user_attr(f"{prefix}arch", arch.to_json())
    trial.set_user_attr(f"{prefix}mflops", c.mflops)
    trial.set_user_attr(f"{prefix}params", c.params)
    if not feasible:
        return None
    trial.set_user_attr("arch_hash", arch.hash)
    trial.set_user_attr("width_multiplier", mult)
    return arch


def suggest_structure(space: SearchSpace, trial: optuna.Trial) -> dict[str, Any]:
    """Every choice's value (YAML path -> value): open ones suggested, fixed ones as written."""
    assign: dict[str, Any] = {}
    for choice in _suggestion_order(space, assign):
        assign[choice.path] = (trial.suggest_categorical(choice.path, list(choice.values))
                               if choice.open else choice.values[0])
    return assign


def _suggestion_order(space: SearchSpace, assign: dict[str, Any]) -> Iterator[Choice]:
    """Choices in the order a trial suggests them; a stage's v1-only ones only when it is v1.

    Reads `assign` as the caller fills it, so each stage's unit is known before its other keys.
    """
    seen: set[str] = set()
    for c in _global_choices(space):
        seen.add(c.path)
        yield c
    for st in space.stages:
        unit = st.choices["unit"]
        if unit.path not in seen:
            seen.add(unit.path)
            yield unit
        for key, c in st.choices.items():
            if c.path not in seen and st.active(key, assign[unit.path]):
                seen.add(c.path)
                yield c


def structure_arch(space: SearchSpace, assign: Mapping[str, Any], mult: float) -> Arch:
    """The architecture of structure `assign` at width multiplier `mult`, channels made valid."""
    settings, widths = [], []
    for st in space.stages:
        unit = assign[st.choices["unit"].path]
        settings.append((unit, {k: assign[c.path] if st.active(k, unit) else STAGE_DEFAULTS[k]
                                for k, c in st.choices.items() if k not in ("unit", "base_channels")}))
        base = assign[st.choices["base_channels"].path]
        widths.append(None if base is None else base * mult)
    stem, outs = round_channels(assign[space.stem_channels.path],
                                [(unit, v["stride"], v["groups"]) for unit, v in settings], widths)
    return Arch(stages=tuple(Stage(unit, out_channels=out, **v) for (unit, v), out in zip(settings, outs)),
                stem=Stem(stem, space.stem.stride, space.stem.max_pool), head=Head(assign[space.head_conv.path]))


def fit(space: SearchSpace, assign: Mapping[str, Any], within: Callable[[Arch, Cost], bool]) -> tuple[Arch, Cost, float]:
    """The widest architecture of `assign` that is `within(arch, cost)` (a cap that grows with the width:
    a fraction of the FLOPs or of the latency budget), by bisection over the width multiplier.

    Falls back to the smallest width when even that is not within; the caller checks it against the
    budget. Only architectures actually costed (and tested) are returned; each distinct one is tested once.
    """
    tested: dict[Arch, bool] = {}

    def ok(arch: Arch, c: Cost) -> bool:
        if arch not in tested:
            tested[arch] = within(arch, c)
        return tested[arch]

    lo, hi = space.width_multiplier
    best = structure_arch(space, assign, lo)
    best_cost = space.cost(best)
    if not ok(best, best_cost):
        return best, best_cost, lo
    top = structure_arch(space, assign, hi)
    top_cost = space.cost(top)
    if ok(top, top_cost):
        return top, top_cost, hi
    best_mult = lo
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        arch = structure_arch(space, assign, mid)
        c = best_cost if arch == best else space.cost(arch)
        if ok(arch, c):
            lo, best, best_cost, best_mult = mid, arch, c, mid
        else:
            hi = mid
    return best, best_cost, best_mult


def count(space: SearchSpace) -> int:
    """`SearchSpace.count`: the number of distinct discrete structures (see there)."""
    glob = _global_choices(space)
    both = only_v2 = 0
    for values in itertools.product(*(c.values for c in glob)):
        assign = {c.path: v for c, v in zip(glob, values)}
        total = v2 = 1
        for st in space.stages:
            unit = st.choices["unit"]
            units = (assign[unit.path],) if unit.path in assign else unit.values
            n = {u: math.prod(len(c.values) for k, c in st.choices.items()
                              if k != "unit" and c.path not in assign and st.active(k, u)) for u in units}
            total *= sum(n.values())
            v2 *= n.get("v2", 0)
        both += total
        only_v2 += v2
    # shared v1-only choices make no difference to an all-v2 architecture: count each once
    shared_v1 = math.prod(len(c.values) for k, c in space.shared.items() if k in V1_ONLY)
    return both - only_v2 + only_v2 // shared_v1


def extreme(space: SearchSpace, mult: float, pick: Callable, key: str = "macs") -> Cost:
    """Coordinate descent (`pick=min`) or ascent (`max`) of one cost field over the choices at `mult`."""
    choices = all_choices(space)
    assign = {c.path: c.values[0] for c in choices}

    def value(a: Mapping[str, Any]) -> tuple[int, Cost]:
        c = space.cost(structure_arch(space, a, mult))
        return getattr(c, key), c

    best, best_cost = value(assign)
    changed = True
    while changed:
        changed = False
        for choice in (c for c in choices if c.open):
            for v in choice.values:
                candidate = {**assign, choice.path: v}
                score, c = value(candidate)
                if pick(score, best) != best:
                    assign, best, best_cost, changed = candidate, score, c, True
    return best_cost


def check_budget(space: SearchSpace) -> None:
    """Fail if even the space's smallest architecture exceeds the budget (MACs, or the params cap)."""
    b = space.budget
    where = f"at {b.input_size}x{b.input_size}, {b.num_classes} classes"
    cheapest = extreme(space, space.width_multiplier[0], min)
    if cheapest.macs > b.macs:
        fail("budget", "mflops", b.mflops, f"the smallest architecture of this space costs "
             f"{cheapest.mflops:.2f} MFLOPs (multiply-adds) {where}, over the budget")
    if b.max_params is not None:
        fewest = extreme(space, space.width_multiplier[0], min, key="params")
        if fewest.params > b.max_params:
            fail("budget", "max_params", b.max_params,
                 f"the smallest architecture of this space has {fewest.params:,d} params {where}")
