"""The greedy picks of a run (`runs.greedy_pick`): the costliest candidate within the budget, what a user
takes without training anything; and the greedy candidate `final --greedy` retrains. Hand-made rows."""

from __future__ import annotations

import json

import pytest

from shufflesearch import cli
from shufflesearch.evaluation._final import greedy_candidate
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._pareto import full_fidelity_acc, greedy_pick, within_budget

BUDGET = {"mflops": 30.0, "input_size": 224, "max_params": None}
ARCH = ZOO["shufflenet_v1_g3_x0_25"].to_dict()


def row(number, mflops, params, status="complete", acc=0.5, epochs=3):
    return {"number": number, "mflops": mflops, "params": params, "status": status, "search_acc": acc,
            "epochs": epochs, "max_epochs": 3, "arch": ARCH, "arch_hash": f"h{number}"}


def numbers(pick):
    return None if pick is None else pick["number"]


def test_the_flops_greedy_pick_is_the_costliest_candidate_within_the_budget_trained_or_not():
    rows = [row(0, 10.0, 100), row(1, 25.0, 200, "early_stopped", epochs=1), row(2, 20.0, 300)]
    assert numbers(greedy_pick(rows, BUDGET)) == 1  # stopped early: still a candidate, it was not trained to pick


def test_failed_and_over_budget_rows_are_no_candidates():
    rows = [row(0, 20.0, 100), row(1, 29.0, 100, "failed", acc=None), row(2, 30.5, 100), row(3, 30.0, 500)]
    assert numbers(greedy_pick(rows, BUDGET)) == 3  # exactly at the budget is within it
    assert numbers(greedy_pick(rows, {**BUDGET, "max_params": 400})) == 0  # 3 is over the params cap
    assert greedy_pick([row(0, 31.0, 1), row(1, 5.0, 1, "failed")], BUDGET) is None
    assert greedy_pick([], BUDGET) is None


def test_ties_go_to_the_fewest_params_then_the_lowest_trial_number():
    rows = [row(4, 25.0, 300), row(3, 25.0, 200, "diverged"), row(2, 25.0, 200), row(1, 12.0, 900)]
    assert numbers(greedy_pick(rows, BUDGET)) == 2
    # params-greedy: the most params; ties: the fewest MFLOPs, then the lowest number
    assert numbers(greedy_pick(rows, BUDGET, by="params")) == 1
    tied = [row(7, 20.0, 500), row(6, 15.0, 500), row(5, 15.0, 500)]
    assert numbers(greedy_pick(tied, BUDGET, by="params")) == 5


def test_within_budget_caps_mflops_and_params_where_set():
    assert within_budget({"mflops": 30.0, "params": 10**9}, BUDGET)
    assert not within_budget({"mflops": 30.01, "params": 1}, BUDGET)
    assert not within_budget({"mflops": 1.0, "params": 11}, {**BUDGET, "max_params": 10})
    assert not within_budget({"mflops": None, "params": 1}, BUDGET)


def test_a_greedy_pick_has_a_search_accuracy_only_at_full_fidelity():
    rows = [row(0, 20.0, 1, acc=0.8), row(1, 29.0, 1, "early_stopped", acc=0.6, epochs=1),
            row(2, 28.0, 1, "diverged", acc=0.1, epochs=2)]
    assert full_fidelity_acc(rows, rows[0]) == 0.8
    assert full_fidelity_acc(rows, rows[1]) is None and full_fidelity_acc(rows, rows[2]) is None
    stopped = greedy_candidate(rows, BUDGET)
    assert (stopped.kind, stopped.name, stopped.number, stopped.search_acc) == ("greedy", "greedy_t1", 1, None)
    trained = greedy_candidate(rows[:1], BUDGET)
    assert (trained.name, trained.search_acc) == ("greedy_t0", 0.8)
    assert greedy_candidate([row(0, 40.0, 1)], BUDGET) is None


def test_final_greedy_on_a_run_with_no_candidate_in_budget_is_one_line_and_writes_nothing(tmp_path, capsys,
                                                                                          monkeypatch):
    run = tmp_path / "runs" / "over"
    run.mkdir(parents=True)
    (run / "trials.jsonl").write_text(json.dumps(row(0, 29.0, 1, "failed", acc=None)) + "\n"
                                      + json.dumps(row(1, 45.0, 1)) + "\n")
    (run / "config.json").write_text(json.dumps({"budget": BUDGET, "objectives": ["acc", "mflops"], "seed": 0,
                                                 "proxy": {"dataset": "digits", "epochs": 1}}))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["final", "over", "--top", "0", "--zoo", "none", "--greedy"]) == 2
    err = capsys.readouterr().err
    assert "trials.jsonl: --greedy: no trial within the budget (30 MFLOPs)" in err and len(err.splitlines()) == 1
    assert not (run / "final").exists()


@pytest.mark.parametrize("budget, within, extras", [
    (30.0, ["shufflenet_v1_g8_x0_25", "shufflenet_v1_g1_x0_25", "shufflenet_v1_g3_x0_25", "shufflenet_v1_g4_x0_25",
            "shufflenet_v1_g2_x0_25"],
     ["shufflenet_v1_g8_x0_5", "shufflenet_v1_g4_x0_5", "shufflenet_v1_g3_x0_5", "shufflenet_v1_g1_x0_5",
      "shufflenet_v1_g2_x0_5", "shufflenet_v2_x0_5"]),
    (10.0, [], ["shufflenet_v1_g8_x0_25", "shufflenet_v1_g1_x0_25", "shufflenet_v1_g3_x0_25",
                "shufflenet_v1_g4_x0_25", "shufflenet_v1_g2_x0_25"]),
])
def test_default_baselines_are_the_zoo_within_the_budget_first_then_extras_above_it(budget, within, extras):
    from shufflesearch.evaluation._baselines import _defaults_line, default_baselines

    b = {"mflops": budget, "input_size": 224}
    assert default_baselines(b) == (within, extras)  # each cheapest first
    line = _defaults_line(b, within, extras)
    assert ("no zoo model fits the budget of 10 MFLOPs (multiply-adds) at 224px" in line) == (not within)
    assert f"{len(extras)} above it, up to 1.5x, as extras marked 'above budget'" in line
