"""A run's Pareto front, its best trial and hypervolume, defined once.

The search's result and `summary.json`, the exported model names (`ss_<run>_best`, `ss_<run>_p<k>`)
and the report all take them from here, so they name the same trials. Conventions:

* **Fidelity.** Only full-fidelity rows are compared: status `complete` with `epochs == max_epochs`;
  if a run holds rows of several `max_epochs`, the highest is the run's fidelity.
* **Front.** A row is on the front of accuracy against a cost (`objectives.cost_axis`) if no other
  row is at least as good in both and better in one. Of identical points (same cost, same accuracy)
  only the lowest trial number is kept: one row per point, credited to the trial that found it
  first. Equal cost with different accuracy keeps the more accurate; equal accuracy with different
  cost keeps the cheaper. The front is listed cheapest first.
* **Best.** The last point of the front: the most accurate full-fidelity row, of equally accurate
  ones the cheapest, of identical ones the lowest trial number. A run's best is that of its own
  objectives (a single-objective run's: cheapest in MFLOPs).
* **Re-ranking.** A search may train its near-ties again at a higher fidelity (`driver._rerank`):
  the candidates (`rerank_candidates`: the leader and the trials within the noise of its accuracy) get
  a re-ranked accuracy (`rerank_acc`: the mean over seeds, on the same search-validation split), and
  `rerank` maps each candidate's trial number to it (None where no seed completed). Proxy and re-ranked
  accuracies are never compared with each other: the front is then the proxy front's points that are
  not candidates and cost less than every candidate (they keep their proxy accuracy), followed by the
  front of the candidates on their re-ranked accuracy (same ties). Since the candidates are the most
  accurate (with two objectives: the dearest) points within the margin, every other front point is
  cheaper than all of them, so this replaces the top of the front and keeps the rest. The best is its
  last point, as always: the candidate of the highest re-ranked accuracy. A re-ranking in which no
  candidate completed a seed changes nothing.
* **Hypervolume** is computed in a normalised minimisation space: x = cost / scale, y = 1 - accuracy,
  against the reference point (1.1, 1.0), i.e. 10% over the scale at accuracy 0. The scale is the
  run's budget for that cost (`budget.mflops`, `budget.max_params`) or, with no budget (latency), the
  largest value among the rows plotted; runs compared together share the largest of their scales.
  Our own 2-D sweep (Optuna's hypervolume is private API); tests hold it against inclusion-exclusion.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

from shufflesearch.runs._records import is_full_fidelity
from shufflesearch.space._objectives import ACCURACY, Objective, cost_axis, parse_objectives

REFERENCE = (1.1, 1.0)  # normalised (cost / scale, 1 - accuracy)
ACC = ACCURACY.field


def finite(value: Any) -> bool:
    """A real number (not None, not a bool, not NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(row: Mapping[str, Any]) -> float:
    return row["number"] if row.get("number") is not None else math.inf


def full_fidelity(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows trained to the run's full fidelity: complete, epochs == max_epochs, the highest max_epochs."""
    done = [r for r in rows if is_full_fidelity(r)]
    top = max((r["max_epochs"] for r in done), default=None)
    return [r for r in done if r["max_epochs"] == top]


Reranked = Mapping[int, "float | None"]  # a re-ranking: trial number -> re-ranked accuracy (None: none complete)


def _front(rows: Iterable[Mapping[str, Any]], key: str, acc: str = ACC) -> list[dict]:
    """The non-dominated `rows` (max `acc`, min `key`), cheapest first; ties: see the module doc."""
    ordered = sorted((r for r in rows if finite(r.get(acc)) and finite(r.get(key))),
                     key=lambda r: (r[key], -r[acc], _number(r)))
    front: list[dict] = []
    for r in ordered:
        if not front or r[acc] > front[-1][acc]:
            front.append(dict(r))
    return front


def _scored(done: Sequence[Mapping[str, Any]], rerank: Reranked | None) -> list[dict]:
    """Of the full-fidelity rows `done`, the candidates `rerank` gives an accuracy, each with it as `rerank_acc`."""
    return [{**r, RERANK_ACC: rerank[r["number"]]} for r in done if rerank and finite(rerank.get(r.get("number")))]


def pareto_front(rows: Iterable[Mapping[str, Any]], objectives: str | Sequence[str] | None = None,
                 rerank: Reranked | None = None) -> list[dict]:
    """The non-dominated full-fidelity rows (max accuracy, min cost), cheapest first; ties and a
    re-ranking (`rerank`, see `Reranked`): see the module doc."""
    key = cost_axis(objectives).field
    done = full_fidelity(rows)  # once: `rows` may be an iterator
    front = _front(done, key)
    scored = _scored(done, rerank)
    if not scored:
        return front
    candidates = [r for r in done if r.get("number") in rerank and finite(r.get(key))]
    cheapest = min(r[key] for r in candidates)
    return [r for r in front if r["number"] not in rerank and r[key] < cheapest] + _front(scored, key, RERANK_ACC)


def by_accuracy(rows: Iterable[Mapping[str, Any]], objectives: str | Sequence[str] | None = None,
                rerank: Reranked | None = None) -> list[dict]:
    """The full-fidelity rows, best first: most accurate, then cheapest in the run's cost, then the lowest
    trial number (the order `best_row` picks by, continued past the best). With a re-ranking, its
    candidates come first, in the same order on their re-ranked accuracy (`rerank_acc`)."""
    key = cost_axis(objectives).field
    done = full_fidelity(rows)  # once: `rows` may be an iterator
    scored = sorted(_scored(done, rerank), key=lambda r: (-r[RERANK_ACC], r[key], _number(r)))
    first = {s["number"] for s in scored}
    ranked = [r for r in done if finite(r.get(ACC)) and finite(r.get(key)) and r.get("number") not in first]
    return scored + [dict(r) for r in sorted(ranked, key=lambda r: (-r[ACC], r[key], _number(r)))]


def best_row(rows: Iterable[Mapping[str, Any]], objectives: str | Sequence[str] | None = None,
             rerank: Reranked | None = None) -> dict | None:
    """The best row (see module doc) for `objectives` and the re-ranking `rerank` if any, None before any
    full-fidelity row."""
    front = pareto_front(rows, objectives, rerank)
    return front[-1] if front else None


# --- the re-ranking of the near-ties (`driver._rerank` runs it) ------------------------------------
RERANK_ACC = "rerank_acc"  # a candidate's mean search-validation accuracy at the re-ranking's fidelity


def noise_margin(acc: float, n: int, factor: float) -> float:
    """`factor` binomial standard errors of an accuracy `acc` measured on `n` images: factor x sqrt(acc
    (1 - acc) / n). How far below the leader a trial may score and still be "within its noise"."""
    return factor * math.sqrt(max(acc * (1.0 - acc), 0.0) / max(n, 1))


def rerank_candidates(rows: Iterable[Mapping[str, Any]], objectives: str | Sequence[str] | None, n: int,
                      factor: float, top: int) -> tuple[list[dict], float]:
    """The trials a re-ranking trains again, most accurate first, and the margin that chose them.

    The leader is the run's best (`best_row`); the margin is `noise_margin(leader accuracy, n, factor)`.
    With two objectives the candidates are the front's points whose accuracy is within the margin of
    the leader's (the front's most accurate, hence dearest, points); with one (`acc`), any full-fidelity
    row's. At most `top`, in `by_accuracy` order, the leader first.

    Args:
        rows: The run's trial rows.
        objectives: The run's objectives (None: accuracy and MFLOPs).
        n: Images in the search-validation split the accuracies were measured on.
        factor: The margin in standard errors (`rerank.margin`).
        top: At most this many candidates (`rerank.candidates`).
    """
    rows = list(rows)
    leader = best_row(rows, objectives)
    if leader is None:
        return [], 0.0
    margin = noise_margin(leader[ACC], n, factor)
    two = objectives is None or len(parse_objectives(objectives)) == 2
    pool = pareto_front(rows, objectives) if two else by_accuracy(rows, objectives)
    within = [r for r in by_accuracy(pool, objectives) if leader[ACC] - r[ACC] <= margin + 1e-9]  # rounding
    return within[:top], margin


def rerank_results(rows: Iterable[Mapping[str, Any]], plan: Mapping[str, Any]) -> list[dict] | None:
    """Per candidate of a re-ranking `plan` (rerank.json: `candidates`, `seeds`, `max_epochs`,
    `subset_per_class`), in the plan's order: `number`, its re-ranked search accuracies `accs` (seed
    order, the seeds trained to full fidelity), their `mean` (None: none) and sample `sd` (None under two),
    and the `cpu_seconds` of its jobs. None until every candidate's every seed has a row in `rows`
    (rerank.jsonl) at the plan's fidelity: an unfinished re-ranking decides nothing."""
    got = {(r.get("number"), r.get("seed")): r for r in rows
           if r.get("max_epochs") == plan["max_epochs"] and r.get("subset_per_class") == plan["subset_per_class"]}
    if any((n, s) not in got for n in plan["candidates"] for s in plan["seeds"]):
        return None
    out = []
    for n in plan["candidates"]:
        jobs = [got[(n, s)] for s in plan["seeds"]]
        accs = [r[ACC] for r in jobs if is_full_fidelity(r) and finite(r.get(ACC))]
        out.append({"number": n, "accs": accs, "mean": statistics.fmean(accs) if accs else None,
                    "sd": statistics.stdev(accs) if len(accs) > 1 else None,
                    "cpu_seconds": sum(r.get("cpu_seconds") or 0.0 for r in jobs)})
    return out


def reranked(results: Sequence[Mapping[str, Any]] | None) -> dict[int, float | None] | None:
    """The re-ranking `rerank_results` gives, as `pareto_front` and `best_row` take it."""
    return None if results is None else {r["number"]: r["mean"] for r in results}


GREEDY_BY = {"mflops": "params", "params": "mflops"}  # a greedy pick's cost -> its tie-breaking cost


def within_budget(row: Mapping[str, Any], budget: Mapping[str, Any]) -> bool:
    """Whether a cost (a row's `mflops` and `params`, on the run's cost basis) is within a run's budget
    (config.json "budget": `mflops`, and `max_params` where set)."""
    cap = budget.get("max_params")
    return (finite(row.get("mflops")) and row["mflops"] <= budget["mflops"]
            and (cap is None or (finite(row.get("params")) and row["params"] <= cap)))


def greedy_pick(rows: Iterable[Mapping[str, Any]], budget: Mapping[str, Any], by: str = "mflops") -> dict | None:
    """A run's greedy pick: the choice a user makes without training anything.

    Among the run's candidates (every trial row that did not fail, trained to full fidelity, stopped
    early or diverged, and is within `budget`, see `within_budget`), the one of the greatest cost `by`:
    "mflops" (the FLOPs-greedy pick: most multiply-adds) or "params" (the params-greedy pick). Ties: the
    fewest of the other cost (params, or MFLOPs), then the lowest trial number. None where no row qualifies.

    Args:
        rows: The run's trial rows (`Run.trials`).
        budget: The run's budget (config.json "budget").
        by: "mflops" or "params".
    """
    other = GREEDY_BY[by]
    candidates = [r for r in rows if r.get("status") != "failed" and finite(r.get(by)) and finite(r.get(other))
                  and within_budget(r, budget)]
    best = min(candidates, key=lambda r: (-r[by], r[other], _number(r)), default=None)
    return None if best is None else dict(best)


def full_fidelity_acc(rows: Iterable[Mapping[str, Any]], row: Mapping[str, Any]) -> float | None:
    """`row`'s search accuracy where it is one of the run's full-fidelity `rows` (see `full_fidelity`), else
    None: a trial stopped early, diverged, failed or trained at a lower fidelity has no number to compare."""
    done = {r.get("number") for r in full_fidelity(rows) if finite(r.get(ACC))}
    return row[ACC] if row.get("number") in done and row.get("number") is not None else None


def hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by 2-D minimisation `points` and bounded by `reference`; points beyond it add nothing."""
    rx, ry = reference
    inside = sorted((float(x), float(y)) for x, y in points if x < rx and y < ry)
    area, level = 0.0, ry
    for x, y in inside:
        if y < level:
            area += (rx - x) * (level - y)
            level = y
    return area


def budget_of(config: Mapping[str, Any], axis: Objective) -> float | None:
    """The run's budget for this cost (config.json "budget"), None where it has none: a latency budget given
    alone caps no FLOPs (its recorded `mflops`, the space's dearest architecture, has `flops_capped: false`)."""
    budget = config.get("budget") or {}
    if axis.budget_key == "mflops" and not budget.get("flops_capped", True):
        return None
    value = budget.get(axis.budget_key) if axis.budget_key else None
    return float(value) if finite(value) and value > 0 else None


def cost_scale(config: Mapping[str, Any], axis: Objective, rows: Iterable[Mapping[str, Any]]) -> float:
    """The value that maps this cost to 1.0 in the normalised space: the budget, else the largest value."""
    budget = budget_of(config, axis)
    if budget is not None:
        return float(budget)
    return max((float(r[axis.field]) for r in rows if finite(r.get(axis.field))), default=1.0) or 1.0


def front_hypervolume(front: Iterable[Mapping[str, Any]], axis: Objective, scale: float) -> float:
    return hypervolume(((r[axis.field] / scale, 1.0 - r[ACC]) for r in front), REFERENCE)


def progress(rows: Sequence[Mapping[str, Any]], axis: Objective, scale: float) -> list[tuple[int, float, float]]:
    """(trial number, best full-fidelity accuracy so far, hypervolume so far) after each finished trial."""
    ordered = sorted((r for r in rows if r.get("number") is not None), key=_number)
    out = []
    for i, r in enumerate(ordered):
        front = pareto_front(ordered[: i + 1], (ACCURACY.name, axis.name))
        out.append((r["number"], front[-1][ACC] if front else math.nan, front_hypervolume(front, axis, scale)))
    return out
