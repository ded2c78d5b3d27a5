"""The Pareto front, the best trial and the hypervolume (pareto.py), and that every consumer of them
(the search's result and summary.json, the export's names, the report) names the same trials."""

from __future__ import annotations

import csv
import itertools
import json
import random
import re

import pytest

from shufflesearch.driver._search import _result, _write_summary
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.export import select
from shufflesearch.report._report import write_report
from shufflesearch.runs._pareto import REFERENCE, best_row, front_hypervolume, hypervolume, pareto_front
from shufflesearch.runs._run import load_run
from shufflesearch.space._objectives import COSTS, cost_axis
from shufflesearch.space._space import SearchSettings


def row(number, mflops, acc, status="complete", epochs=3, max_epochs=3, **extra):
    return {"number": number, "mflops": mflops, "search_acc": acc, "status": status, "epochs": epochs,
            "max_epochs": max_epochs, **extra}


# --- the front ---------------------------------------------------------------------------------------
def numbers(front):
    return [r["number"] for r in front]


def test_front_keeps_only_non_dominated_rows_cheapest_first():
    rows = [row(0, 30, 0.90), row(1, 10, 0.80), row(2, 20, 0.70), row(3, 25, 0.85), row(4, 40, 0.88)]
    assert numbers(pareto_front(rows, "acc,mflops")) == [1, 3, 0]


def test_front_ties_identical_points_keep_lowest_trial_number():
    rows = [row(7, 10, 0.8), row(2, 10, 0.8), row(5, 10, 0.8), row(9, 20, 0.9)]
    assert numbers(pareto_front(rows)) == [2, 9]


def test_front_equal_cost_keeps_more_accurate_and_equal_accuracy_keeps_cheaper():
    assert numbers(pareto_front([row(0, 10, 0.80), row(1, 10, 0.85)])) == [1]
    assert numbers(pareto_front([row(0, 15, 0.80), row(1, 10, 0.80)])) == [1]


def test_front_only_full_fidelity_rows():
    rows = [row(0, 10, 0.70),
            row(1, 5, 0.99, status="early_stopped", epochs=1),  # better, but not trained to the end
            row(2, 5, 0.95, epochs=2),                            # complete but short of max_epochs
            row(3, 8, None, status="failed", epochs=0),
            row(4, 6, 0.10, status="diverged", epochs=3),
            row(5, 20, 0.80)]
    assert numbers(pareto_front(rows)) == [0, 5]
    # a run holding two fidelities: the front is made of the highest one only
    rows.append(row(6, 50, 0.75, epochs=9, max_epochs=9))
    assert numbers(pareto_front(rows)) == [6]


def test_front_other_costs_and_missing_values():
    rows = [row(0, 10, 0.8, latency_ms=None, params=900), row(1, 20, 0.9, latency_ms=2.0, params=800)]
    assert numbers(pareto_front(rows, "acc,latency")) == [1]
    assert numbers(pareto_front(rows, ["acc", "params"])) == [1]
    assert numbers(pareto_front(rows, ("acc",))) == [0, 1]  # single-objective runs: against MFLOPs


@pytest.mark.parametrize("bad", ["acc,foo", "mflops,acc", "acc,mflops,latency", "acc,"])
def test_unknown_objectives_are_one_line_errors(bad):
    with pytest.raises(ShuffleSearchError, match="objectives = .*must be one of acc,mflops"):
        cost_axis(bad)


def test_front_matches_the_definition_on_random_rows():
    rng = random.Random(0)
    for _ in range(200):
        # coarse values so that ties and equal costs are frequent
        rows = [row(n, rng.randint(1, 8), rng.randint(0, 8) / 8) for n in rng.sample(range(100), rng.randint(1, 12))]

        def beaten(r, s):
            better_or_equal = s["mflops"] <= r["mflops"] and s["search_acc"] >= r["search_acc"]
            same = s["mflops"] == r["mflops"] and s["search_acc"] == r["search_acc"]
            return better_or_equal and (not same or s["number"] < r["number"])

        expected = sorted((r for r in rows if not any(beaten(r, s) for s in rows if s is not r)),
                          key=lambda r: r["mflops"])
        assert numbers(pareto_front(rows)) == numbers(expected)


# --- hypervolume -------------------------------------------------------------------------------------
def inclusion_exclusion(points, reference):
    """Exact area of the union of the boxes [p, reference]: sum over subsets of +- their intersection."""
    boxes = [p for p in points if all(c < r for c, r in zip(p, reference))]
    total = 0.0
    for k in range(1, len(boxes) + 1):
        for subset in itertools.combinations(boxes, k):
            corner = [max(c) for c in zip(*subset)]
            volume = 1.0
            for c, r in zip(corner, reference):
                volume *= r - c
            total += (-1) ** (k + 1) * volume
    return total


def test_hypervolume_small_cases():
    assert hypervolume([], (1, 1)) == 0
    assert hypervolume([(0.5, 0.5)], (1, 1)) == pytest.approx(0.25)
    assert hypervolume([(0.5, 0.5), (0.5, 0.5), (0.6, 0.6)], (1, 1)) == pytest.approx(0.25)
    assert hypervolume([(1.2, 0.1), (0.1, 1.0)], (1.1, 1.0)) == 0  # on or beyond the reference


def test_hypervolume_matches_inclusion_exclusion_on_random_sets():
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randint(1, 9)
        pts = [(rng.uniform(0, 1.3), rng.uniform(0, 1.2)) for _ in range(n)]
        pts += [pts[0]] * rng.randint(0, 1)  # duplicates
        pts += [(pts[-1][0], rng.uniform(0, 1.2))] * rng.randint(0, 1)  # equal x
        assert hypervolume(pts, REFERENCE) == pytest.approx(inclusion_exclusion(pts, REFERENCE), abs=1e-12)


def test_front_hypervolume_equals_the_hypervolume_of_all_full_fidelity_points():
    rng = random.Random(2)
    rows = [row(n, rng.uniform(5, 60), rng.uniform(0.3, 0.95)) for n in range(40)]
    axis = COSTS["mflops"]
    everything = [(r["mflops"] / 50, 1 - r["search_acc"]) for r in rows]
    assert front_hypervolume(pareto_front(rows), axis, 50) == pytest.approx(inclusion_exclusion(
        [(r["mflops"] / 50, 1 - r["search_acc"]) for r in pareto_front(rows)], REFERENCE))
    assert front_hypervolume(pareto_front(rows), axis, 50) == pytest.approx(hypervolume(everything, REFERENCE))


# --- one definition, every consumer ---------------------------------------------------------------------
# rows in completion order, not trial-number order, with every kind of tie
TIED = [row(5, 10, 0.80, latency_ms=3.0), row(2, 10, 0.80, latency_ms=3.0),  # identical points: 2 stays
        row(8, 20, 0.85, latency_ms=2.0), row(6, 20, 0.83, latency_ms=1.0),  # equal cost: 8 is the more accurate
        row(7, 30, 0.90, latency_ms=4.0), row(4, 30, 0.90, latency_ms=4.0),  # the most accurate: 4 of identical
        row(3, 40, 0.90, latency_ms=2.5),  # as accurate as 4, dearer in MFLOPs, cheaper in latency
        row(1, 5, 0.95, status="early_stopped", epochs=1), row(9, 50, None, status="failed", epochs=0)]


def test_best_is_the_last_point_of_the_runs_front():
    assert numbers(pareto_front(TIED, "acc,mflops")) == [2, 8, 4] and best_row(TIED)["number"] == 4
    assert numbers(pareto_front(TIED, "acc,latency")) == [6, 8, 3] and best_row(TIED, "acc,latency")["number"] == 3
    assert best_row(TIED, ("acc",))["number"] == 4  # a single-objective run's: the cheapest in MFLOPs
    assert best_row([row(0, 10, 0.5, status="early_stopped", epochs=1)]) is None


def tied_run(tmp_path, objectives):
    run = tmp_path / "tied"
    run.mkdir()
    rows = [{**r, "summary": f"genome {r['number']}", "arch_hash": f"h{r['number']}", "params": 1000} for r in TIED]
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.json").write_text(json.dumps({"name": "tied", "objectives": list(objectives), "trials": len(rows),
                                                 "budget": {"mflops": 60, "input_size": 224}}))
    return run, rows


@pytest.mark.parametrize("objectives", [("acc", "mflops"), ("acc", "latency"), ("acc",)])
def test_search_result_summary_export_and_report_agree(tmp_path, objectives):
    run, rows = tied_run(tmp_path, objectives)
    settings = SearchSettings(trials=len(rows), objectives=objectives)
    result = _result(run, rows, settings, wall=1.0)
    _write_summary(run, result, settings)
    best, pareto = result.best["number"], numbers(result.pareto)
    assert best == best_row(TIED, objectives)["number"] and pareto == numbers(pareto_front(TIED, objectives))

    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["number"] == best and summary["pareto"] == pareto
    exported = {name: r["number"] for name, r in select(load_run(run), "best") + select(load_run(run), "pareto")}
    assert exported == {"ss_tied_best": best, **{f"ss_tied_p{k}": n for k, n in enumerate(pareto, 1)}}
    write_report(run)
    assert [int(t["number"]) for t in csv.DictReader((run / "report" / "pareto.csv").open())] == pareto
    page = (run / "report" / "report.md").read_text()
    shown = re.search(r"best full-fidelity accuracy\*\*: [0-9.]+ \(trial (\d+)", page)
    assert int(shown.group(1)) == best
