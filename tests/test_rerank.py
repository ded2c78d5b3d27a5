"""The re-ranking of a search's near-ties (`driver._rerank`, its rules in `runs._pareto`): the margin, the
candidates, the best and front it gives, and a search that runs it, is killed in it and resumes."""

from __future__ import annotations

import math

import pytest

from shufflesearch.runs._pareto import (
    best_row,
    by_accuracy,
    noise_margin,
    pareto_front,
    rerank_candidates,
    rerank_results,
    reranked,
)
from test_pareto import numbers, row


# --- the margin and the candidates (hand rows) --------------------------------------------------------
def test_the_margin_is_factor_binomial_standard_errors_of_the_leaders_accuracy():
    assert noise_margin(0.88, 12000, 1.0) == pytest.approx(math.sqrt(0.88 * 0.12 / 12000))  # 0.30 points
    assert noise_margin(0.9, 300, 2.0) == pytest.approx(2 * math.sqrt(0.09 / 300))
    assert noise_margin(1.0, 300, 2.0) == 0.0  # a perfect leader has no binomial noise


def test_one_objective_candidates_are_the_rows_within_the_margin_at_most_top():
    # n = 900 at p = 0.9: one standard error is 0.01; the margin of 2 errors takes rows down to 0.88
    rows = [row(0, 30, 0.90), row(1, 10, 0.885), row(2, 20, 0.88), row(3, 5, 0.875), row(4, 40, 0.89)]
    chosen, margin = rerank_candidates(rows, ["acc"], 900, 2.0, top=5)
    assert margin == pytest.approx(0.02) and numbers(chosen) == [0, 4, 1, 2]
    assert numbers(rerank_candidates(rows, ["acc"], 900, 2.0, top=3)[0]) == [0, 4, 1]
    assert numbers(rerank_candidates(rows, ["acc"], 900, 0.0, top=3)[0]) == [0]  # margin 0: the leader alone


def test_two_objective_candidates_are_the_fronts_points_within_the_margin():
    # trial 4 is within the margin but dominated by trial 0 (dearer, less accurate): not a candidate
    rows = [row(0, 30, 0.90), row(1, 10, 0.885), row(2, 20, 0.88), row(3, 5, 0.80), row(4, 40, 0.89)]
    chosen, _ = rerank_candidates(rows, ["acc", "mflops"], 900, 2.0, top=3)
    assert numbers(chosen) == [0, 1]


def test_no_full_fidelity_row_no_candidates():
    assert rerank_candidates([row(0, 10, 0.9, status="failed")], ["acc"], 900, 2.0, 3) == ([], 0.0)


# --- the best and the front from a re-ranking -------------------------------------------------------
ROWS = [row(0, 30, 0.90), row(1, 25, 0.89), row(2, 20, 0.885), row(3, 10, 0.80), row(4, 5, 0.70)]


def test_the_rereanked_leader_is_the_best_and_the_fronts_top_is_the_candidates_front():
    assert numbers(pareto_front(ROWS, "acc,mflops")) == [4, 3, 2, 1, 0]
    rerank = {0: 0.91, 1: 0.93, 2: 0.925}  # the proxy's top-1 (trial 0) re-ranks last
    front = pareto_front(ROWS, "acc,mflops", rerank)
    # the non-candidates keep their proxy accuracy; among the candidates, 2 (cheaper than 1, 0.925) and 1
    # (0.93); 0 is dominated by 1 on the re-ranked accuracy
    assert numbers(front) == [4, 3, 2, 1]
    assert [r.get("rerank_acc") for r in front] == [None, None, 0.925, 0.93]
    assert front[-1]["search_acc"] == 0.89  # the proxy's number stays in its field
    assert best_row(ROWS, "acc,mflops", rerank)["number"] == 1
    assert best_row(ROWS, ["acc"], rerank)["number"] == 1
    assert numbers(by_accuracy(ROWS, ["acc"], rerank)) == [1, 2, 0, 3, 4]


def test_rerank_ties_go_to_the_cheaper_then_the_lower_number():
    assert best_row(ROWS, "acc,mflops", {0: 0.93, 1: 0.93, 2: 0.9})["number"] == 1
    rows = ROWS + [row(5, 25, 0.89)]
    assert best_row(rows, "acc,mflops", {0: 0.9, 1: 0.93, 5: 0.93})["number"] == 1


def test_a_candidate_without_a_complete_seed_drops_out_and_a_rerank_without_any_changes_nothing():
    assert best_row(ROWS, "acc,mflops", {0: None, 1: 0.90, 2: 0.91})["number"] == 2
    assert numbers(pareto_front(ROWS, "acc,mflops", {0: None, 1: None})) == numbers(pareto_front(ROWS, "acc,mflops"))


def rerank_row(number, seed, acc, status="complete", epochs=6, max_epochs=6, subset_per_class=None, cpu=10.0):
    return row(number, 0, acc, status=status, epochs=epochs, max_epochs=max_epochs, seed=seed,
               subset_per_class=subset_per_class, cpu_seconds=cpu, stage="rerank")


PLAN = {"candidates": [0, 1], "seeds": [0, 1], "max_epochs": 6, "subset_per_class": None}


def test_results_wait_for_every_candidate_and_seed_at_the_plans_fidelity():
    rows = [rerank_row(0, 0, 0.90), rerank_row(0, 1, 0.92), rerank_row(1, 0, 0.93)]
    assert rerank_results(rows, PLAN) is None
    assert rerank_results(rows + [rerank_row(1, 1, 0.95, max_epochs=9, epochs=9)], PLAN) is None  # another fidelity
    results = rerank_results(rows + [rerank_row(1, 1, 0.95)], PLAN)
    assert [(r["number"], r["accs"]) for r in results] == [(0, [0.90, 0.92]), (1, [0.93, 0.95])]
    assert results[0]["mean"] == pytest.approx(0.91) and results[0]["sd"] == pytest.approx(math.sqrt(2e-4))
    assert results[1]["cpu_seconds"] == 20.0
    assert reranked(results) == {0: pytest.approx(0.91), 1: pytest.approx(0.94)}


def test_a_diverged_seed_is_left_out_of_the_mean():
    rows = [rerank_row(0, 0, 0.90), rerank_row(0, 1, 0.1, status="diverged"), rerank_row(1, 0, 0.93),
            rerank_row(1, 1, 0.0, status="failed", epochs=0)]
    results = rerank_results(rows, PLAN)
    assert [(r["accs"], r["sd"]) for r in results] == [([0.90], None), ([0.93], None)]
