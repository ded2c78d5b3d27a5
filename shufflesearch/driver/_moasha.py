"""MO-ASHA: asynchronous successive halving that promotes trials by Pareto rank, as a Ray Tune scheduler.

Ray Tune's schedulers and Optuna's pruners rank on one metric, so in a search for accuracy against a
cost they would stop the cheap, less accurate trials that make up half of the Pareto front. MO-ASHA
(Schmucker et al., arXiv 2106.12639; Syne Tune's `MOASHA`) keeps successive halving's rungs and
changes only whom a rung lets through:

* rungs at `grace_period * reduction_factor**k` epochs, below the trials' full `max_t` epochs;
* a trial that reaches a rung is recorded there as a point (every objective minimised: accuracy
  negated, and the cost, known before training; see `search._points`), and goes on if it is among
  the best `ceil(n / reduction_factor)` of the `n` points recorded at that rung so far, ordered by
  non-dominated sorting and, within a front, by crowding distance (NSGA-II's order); a point that
  ties with the last one let through goes on too. Otherwise Tune stops it;
* the first trial at a rung always goes on, as in ASHA: promotion is decided on arrival, never
  revised (asynchronous), so no trial waits for others.

A stopped trial's record says at which rung it stopped; Optuna is told it was PRUNED (the study
searcher does that for every early stop).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

Point = Sequence[float]


def rung_epochs(grace_period: int, max_t: int, reduction_factor: int) -> list[int]:
    """The rungs' epochs: grace_period * reduction_factor**k below max_t (the full training is no rung)."""
    rungs, epoch = [], grace_period
    while epoch < max_t:
        rungs.append(epoch)
        epoch *= reduction_factor
    return rungs


def dominates(a: Point, b: Point) -> bool:
    """`a` is at least as good as `b` in every objective and better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_fronts(points: Sequence[Point]) -> list[list[int]]:
    """Indices of `points` by front: the non-dominated ones, then those only they dominate, and so on."""
    left, fronts = set(range(len(points))), []
    while left:
        front = sorted(i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i))
        fronts.append(front)
        left -= set(front)
    return fronts


def crowding_distances(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front (the extremes of each objective: inf)."""
    distance = [0.0] * len(points)
    for m in range(len(points[0]) if points else 0):
        order = sorted(range(len(points)), key=lambda i: points[i][m])
        span = points[order[-1]][m] - points[order[0]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        for k in range(1, len(order) - 1):
            if span > 0:
                distance[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / span
    return distance


def promoted(points: dict[str, Point], trial_id: str, reduction_factor: int) -> bool:
    """Whether `trial_id` is among the best ceil(n / reduction_factor) of a rung's `points` (NSGA-II's
    order: front, then larger crowding distance; ties with the last place go on)."""
    ids = list(points)
    rank: dict[str, tuple[int, float]] = {}
    for f, front in enumerate(nondominated_fronts([points[i] for i in ids])):
        for i, crowding in zip(front, crowding_distances([points[ids[i]] for i in front])):
            rank[ids[i]] = (f, -crowding)
    better = sum(r < rank[trial_id] for r in rank.values())
    return better < math.ceil(len(ids) / reduction_factor)


class MOASHA(FIFOScheduler):
    """Multi-objective asynchronous successive halving for Ray Tune (see the module's docstring).

    Args:
        points: `points(trial.config, result)` -> the trial's objective values, all minimised.
        max_t: the full training, in `time_attr` units (epochs).
        grace_period: the first rung.
        reduction_factor: η: rungs η times apart; a rung lets through 1/η of the trials it has seen.
        time_attr: the result key that counts training progress.
    """

    def __init__(self, points: Callable[[dict[str, Any], dict[str, Any]], Point], max_t: int,
                 grace_period: int = 1, reduction_factor: int = 3, time_attr: str = "epoch"):
        super().__init__()
        self.points, self.reduction_factor, self.time_attr = points, reduction_factor, time_attr
        self.rungs = rung_epochs(grace_period, max_t, reduction_factor)
        self.recorded: dict[int, dict[str, Point]] = {epoch: {} for epoch in self.rungs}
        self.stopped_at: dict[int, int] = {}  # Optuna trial number -> the rung (its epoch) that stopped it

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        epoch = result.get(self.time_attr)
        if epoch is None:
            return TrialScheduler.CONTINUE
        for rung in self.rungs:
            recorded = self.recorded[rung]
            if epoch < rung or trial.trial_id in recorded:  # a retried trial's repeated reports pass
                continue
            recorded[trial.trial_id] = tuple(self.points(trial.config, result))
            if not promoted(recorded, trial.trial_id, self.reduction_factor):
                self.stopped_at[trial.config["number"]] = rung
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return "MOASHA: " + ", ".join(f"epoch {r}: {len(self.recorded[r])} seen" for r in self.rungs)
