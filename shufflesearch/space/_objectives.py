"""The objectives, in one table: what a search optimises, a report plots and an export ranks by.

Accuracy (`acc`: the trial row's `search_acc`, top-1 on the search-validation split after the last
epoch trained; the test split is never read by a search) is maximised; each cost is minimised:
`mflops` (multiply-adds at the budget input size), `latency` (`latency_ms`, batch 1, CPU) or `params`.
A run's objectives are accuracy alone or accuracy and one cost (`OBJECTIVE_SETS`); a report plots
accuracy against one cost, a single-objective run's against MFLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from shufflesearch.errors import ShuffleSearchError


@dataclass(frozen=True)
class Objective:
    """One objective: its name, the trial-row field it reads, Optuna's direction, and how to show it."""

    name: str
    field: str
    direction: str  # "maximize" / "minimize", as Optuna spells it
    label: str  # an axis label
    unit: str
    display: float = 1.0  # plotted value = row value / display
    budget_key: str | None = None  # its cap in a run's config.json "budget", if it can have one


ACCURACY = Objective("acc", "search_acc", "maximize", "top-1 accuracy, search-validation", "")
COSTS = {c.name: c for c in (
    Objective("mflops", "mflops", "minimize", "MFLOPs (multiply-adds)", "MFLOPs", budget_key="mflops"),
    Objective("latency", "latency_ms", "minimize", "latency (ms, batch 1, CPU)", "ms"),
    Objective("params", "params", "minimize", "params (millions, the budget's classifier)", "M params", 1e6, "max_params"),
)}
OBJECTIVES = {ACCURACY.name: ACCURACY, **COSTS}
OBJECTIVE_SETS = (*((ACCURACY.name, cost) for cost in COSTS), (ACCURACY.name,))
OBJECTIVE_CHOICES = tuple(",".join(names) for names in OBJECTIVE_SETS)  # as the CLI's --objectives takes them


def parse_objectives(objectives: str | Sequence[str]) -> tuple[str, ...]:
    """`objectives` ('acc,mflops' or ['acc', 'mflops']) as a tuple of names, checked against OBJECTIVE_SETS."""
    names = tuple(s.strip() for s in objectives.split(",")) if isinstance(objectives, str) else tuple(objectives)
    if names not in OBJECTIVE_SETS:
        raise ShuffleSearchError(f"objectives = {','.join(map(str, names))!r}: must be one of "
                                 f"{' | '.join(OBJECTIVE_CHOICES)}")
    return names


def cost_axis(objectives: str | Sequence[str] | None) -> Objective:
    """The cost a run's `objectives` are plotted against: its cost objective, else (None, 'acc') MFLOPs."""
    names = parse_objectives(objectives) if objectives is not None else ()
    return COSTS[names[1]] if len(names) == 2 else COSTS["mflops"]
