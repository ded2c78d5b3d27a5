"""The re-ranking of a search's near-ties (`driver._rerank`, its rules in `runs._pareto`): the margin, the
candidates, the best and front it gives, and a search that runs it, is killed in it and resumes."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml
from helpers import run_cli, tiny_space
from test_pareto import numbers, row

import shufflesearch
from shufflesearch.cli import build_parser
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.evaluation._final import select_candidates
from shufflesearch.export import export_run, select
from shufflesearch.report._report import write_report
from shufflesearch.runs._pareto import (
    best_row,
    by_accuracy,
    noise_margin,
    pareto_front,
    rerank_candidates,
    rerank_results,
    reranked,
)
from shufflesearch.runs._records import read_rows, write_rows
from shufflesearch.runs._run import load_run
from shufflesearch.space._configs import DataConfig


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


# --- a real search that re-ranks (digits) -------------------------------------------------------------
def rerank_space(tmp_path, **rerank):
    """The tiny digits space (2-epoch proxy) with a re-ranking of 2 candidates, 2 seeds, 4 epochs; the margin
    wide enough that the front's two most accurate points are candidates whatever they score."""
    path = tiny_space(tmp_path, epochs=2)
    data = yaml.safe_load(path.read_text())
    data["rerank"] = {"enabled": True, "candidates": 2, "margin": 1000.0, "epochs_factor": 2, **rerank}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory, ray_local):
    """A 4-trial one-objective search with the re-ranking on, and the lines it printed (the rules' two-objective
    cases are the hand-row tests above)."""
    tmp = tmp_path_factory.mktemp("rerank")
    lines: list[str] = []
    result = shufflesearch.search(rerank_space(tmp), trials=4, objectives="acc", scheduler="none",
                                  runs_dir=tmp / "runs", progress=lines.append)
    return result, lines


@pytest.mark.slow
def test_a_search_re_ranks_its_near_ties_and_its_best_comes_from_that(searched):
    result, lines = searched
    plan = json.loads((result.run_dir / "rerank.json").read_text())
    assert plan["candidates"] == numbers(by_accuracy(result.rows, ["acc"])[:2]) and plan["seeds"] == [0, 1]
    assert plan["max_epochs"] == 4 and plan["n"] == len(load_data(DataConfig(), "search").eval_y)
    rows = read_rows(result.run_dir / "rerank.jsonl")
    assert sorted((r["number"], r["seed"]) for r in rows) == sorted((n, s) for n in plan["candidates"] for s in (0, 1))
    assert all(r["stage"] == "rerank" and r["epochs"] == 4 and r["cpu_seconds"] > 0 for r in rows)
    assert any(line.startswith("re-ranking: 2 candidate(s)") for line in lines)
    run = load_run(result.run_dir)
    assert result.rerank == run.rerank_results and [r["number"] for r in result.rerank] == plan["candidates"]
    assert result.best == best_row(result.rows, ["acc"], run.reranked) and "rerank_acc" in result.best
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["best"]["number"] == result.best["number"] and summary["proxy_best"] == plan["candidates"][0]
    assert summary["rerank"]["cpu_seconds"] == pytest.approx(sum(r["cpu_seconds"] for r in rows))
    assert json.loads((result.run_dir / "config.json").read_text())["command"].endswith("--rerank")


def _swap_winner(run_dir):
    """rerank.jsonl rewritten so that the proxy's second candidate re-ranks first (the proxy's top-1 last)."""
    plan = json.loads((run_dir / "rerank.json").read_text())
    rows = read_rows(run_dir / "rerank.jsonl")
    for r in rows:
        r["search_acc"] = 0.99 if r["number"] == plan["candidates"][1] else 0.5
    write_rows(run_dir / "rerank.jsonl", rows)
    return plan["candidates"]


@pytest.mark.slow
def test_export_report_and_final_take_the_re_ranked_best(searched, tmp_path):
    result, _ = searched
    run_dir = tmp_path / "copy"
    shutil.copytree(result.run_dir, run_dir)
    leader, second = _swap_winner(run_dir)
    run = load_run(run_dir)
    assert select(run, "best")[0][1]["number"] == second and select(run, "pareto")[-1][1]["number"] == second
    assert [c.number for c in select_candidates(run.trials, ["acc"], 1, run.reranked)] == [second]
    best = export_run(run_dir, "best")[0]
    assert json.loads((best / "config.json").read_text())["shufflesearch"]["trial"] == second
    report = (write_report(run_dir).with_suffix(".md")).read_text()
    table = report.split("Re-ranking (search-validation split)", 1)[1]
    # both rankings: the proxy's (leader first) and the re-ranked one (the second first)
    assert f"| {leader} |" in table and f"| {second} |" in table and "0.9900" in table and "0.5000" in table
    assert f"Best: trial {second}; the proxy's top-1 was trial {leader}" in report


@pytest.mark.slow
def test_a_re_ranking_cut_short_resumes_with_only_its_missing_jobs(searched, tmp_path):
    result, _ = searched
    space = rerank_space(tmp_path)
    runs = tmp_path / "runs"
    shutil.copytree(result.run_dir, runs / result.run_dir.name)
    run_dir = runs / result.run_dir.name
    rows = read_rows(run_dir / "rerank.jsonl")
    kept = rows[:-1]  # as a kill during the last job leaves it: the others recorded, that one not
    write_rows(run_dir / "rerank.jsonl", kept)
    assert load_run(run_dir).reranked is None  # an unfinished re-ranking decides nothing
    lines: list[str] = []
    again = shufflesearch.search(space, trials=4, objectives="acc", scheduler="none", runs_dir=runs, resume=True,
                                 progress=lines.append)
    assert any("1 training(s) to run" in line for line in lines), lines
    now = read_rows(run_dir / "rerank.jsonl")
    assert now[:-1] == kept and (now[-1]["number"], now[-1]["seed"]) == (rows[-1]["number"], rows[-1]["seed"])
    assert now[-1]["search_acc"] == rows[-1]["search_acc"]  # same seed, same result
    assert again.best == result.best and len(again.rows) == 4


# --- settings and refusals --------------------------------------------------------------------------
def test_a_bad_rerank_setting_is_one_line_naming_the_file_field_and_value(tmp_path):
    path = rerank_space(tmp_path, candidates=1)
    done = run_cli("space", str(path))
    why = "rerank.candidates = 1: must be an integer >= 2 (the leader and one other)"
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"shufflesearch space: error: {path}: {why}"]


def test_a_rerank_with_a_replaced_trainer_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ShuffleSearchError, match="rerank.enabled = true: not with train_fn"):
        shufflesearch.search(rerank_space(tmp_path), runs_dir=tmp_path / "runs", progress=None,
                             train_fn=shufflesearch.train_proxy)
    assert not (tmp_path / "runs").exists()
    assert build_parser().parse_args(["search", "demo", "--no-rerank"]).rerank is False
    assert build_parser().parse_args(["search", "demo"]).rerank is None
