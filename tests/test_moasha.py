"""MO-ASHA (`--scheduler moasha`): successive halving that promotes by Pareto rank, so a cheap, less
accurate trial on the front goes on while a dominated one of similar accuracy is stopped."""

from __future__ import annotations

import json
import math
import sys

import optuna
import pytest
from helpers import tiny_space

import shufflesearch
from shufflesearch.driver._moasha import crowding_distances, nondominated_fronts, promoted, rung_epochs
from shufflesearch.runs._records import read_rows
from shufflesearch.train._proxy import ProxyResult


def test_rungs_are_a_geometric_series_below_the_full_training():
    assert rung_epochs(1, 9, 3) == [1, 3] and rung_epochs(1, 10, 3) == [1, 3, 9]
    assert rung_epochs(2, 20, 2) == [2, 4, 8, 16] and rung_epochs(3, 3, 3) == []


def test_fronts_and_crowding_follow_nsga2():
    points = [(0.1, 10.0), (0.2, 5.0), (0.15, 12.0), (0.3, 1.0), (0.25, 6.0)]
    assert nondominated_fronts(points) == [[0, 1, 3], [2, 4]]
    d = crowding_distances([points[0], points[1], points[3]])
    assert d[0] == d[2] == math.inf and d[1] == pytest.approx((0.3 - 0.1) / 0.2 + (10 - 1) / 9)


def test_a_non_dominated_cheap_trial_goes_on_and_a_dominated_one_of_similar_accuracy_stops():
    rung = {"accurate": (-0.80, 20.0)}
    assert promoted(rung, "accurate", 3)  # the first at a rung always goes on
    rung["cheap"] = (-0.70, 8.0)  # less accurate but cheaper: on the front
    assert promoted(rung, "cheap", 3)
    rung["dominated"] = (-0.79, 22.0)  # about as accurate as the first, and dearer
    assert not promoted(rung, "dominated", 3)
    # single-objective accuracy would have ranked "dominated" above "cheap"
    assert sorted(rung, key=lambda t: rung[t][0]) == ["accurate", "dominated", "cheap"]


def scripted_accuracy(arch) -> float:
    """An accuracy fixed by the architecture: rises with its MFLOPs, plus an offset from its hash."""
    return 0.3 + 0.01 * shufflesearch.cost(arch).mflops + 0.2 * int(arch.hash[:6], 16) / 16 ** 6


def scripted_trainer(arch, data, train_cfg, report=None):
    """Reports `scripted_accuracy(arch)` (+0.01 an epoch) instead of training, so each of MO-ASHA's
    decisions can be replayed from the records; the weights are the untrained model's."""
    history = []
    for epoch in range(1, train_cfg.epochs + 1):
        history.append({"epoch": epoch, "search_acc": scripted_accuracy(arch) + 0.01 * epoch, "search_loss": 1.0,
                        "train_loss": 1.0, "images_per_s": 1.0, "lr": 0.1, "train_seconds": 0.0, "eval_seconds": 0.0})
        if report is not None and report(epoch, history[-1]):
            break
    state = shufflesearch.build(arch, num_classes=data.num_classes).state_dict()
    return ProxyResult("complete", len(history), history, state, 0.0, 0.0, 0.0)


@pytest.mark.slow
def test_moasha_search_promotes_by_pareto_rank_and_tells_optuna_pruned(tmp_path):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/
    # 2 CPUs a trial on a 2-CPU Ray: one trial at a time, so they reach the rung in trial-number order
    result = shufflesearch.search(tiny_space(tmp_path, epochs=3), trials=10, scheduler="moasha", sampler="random",
                                  objectives="acc,mflops", cpus_per_trial=2, runs_dir=tmp_path / "runs",
                                  train_fn=scripted_trainer, progress=None)
    rows = sorted(read_rows(result.run_dir / "trials.jsonl"), key=lambda r: r["number"])
    assert len(rows) == 10 and {r["status"] for r in rows} == {"complete", "early_stopped"}
    assert all(r["epochs"] == (3 if r["status"] == "complete" else 1) for r in rows)  # rungs: epoch 1
    assert all(r["cpu_seconds"] > 0 for r in rows)

    # replay the rung at epoch 1: each trial went on exactly when it ranked in the best third
    rung = {}
    for r in rows:
        rung[r["number"]] = (-(scripted_accuracy(shufflesearch.Arch.from_dict(r["arch"])) + 0.01), r["mflops"])
        assert promoted(rung, r["number"], 3) == (r["status"] == "complete"), r["number"]
    # both cases of the issue occurred: a cheaper, less accurate trial went on, and a dominated one of
    # similar accuracy (within 0.05) was stopped, though accuracy alone ranked it above the cheap one
    def acc(r): return -rung[r["number"]][0]
    kept = [r for r in rows if r["status"] == "complete"]
    stopped = [r for r in rows if r["status"] == "early_stopped"]
    assert any(acc(c) < acc(k) and c["mflops"] < k["mflops"] and c["number"] > k["number"] for c in kept for k in kept)
    assert any(any(acc(k) >= acc(s) and k["mflops"] <= s["mflops"] and acc(s) > acc(k) - 0.05 for k in kept)
               for s in stopped)

    # Optuna saw the same: complete trials COMPLETE, stopped ones PRUNED
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.run_dir / "optuna.journal"))))
    states = {t.number: t.state for t in study.trials}
    expected = {"complete": optuna.trial.TrialState.COMPLETE, "early_stopped": optuna.trial.TrialState.PRUNED}
    assert all(states[r["number"]] == expected[r["status"]] for r in rows)
    assert json.loads((result.run_dir / "config.json").read_text())["scheduler"] == "moasha"
    assert {p["number"] for p in result.pareto} <= {r["number"] for r in kept}
