"""The one trial body (`train._trial.run_trial_body`) that search trials, baseline and final jobs and
supernet candidates run: real training on digits, real latency measurement; an architecture's own error,
wherever in the body it arises (latency included), is the trial's "failed" report, never an exception
that Ray would retry as a fault of the infrastructure."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from helpers import too_wide

import shufflesearch
from shufflesearch.data import load_data
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import TrainConfig
from shufflesearch.train._trial import proxy_training, run_trial_body

SMALL = shufflesearch.get_arch("shufflenet_v1_g3_x0_25")
TOO_WIDE = too_wide(SMALL)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", subset_per_class=20)


def test_the_body_measures_latency_first_reports_every_epoch_and_returns_a_complete_trials_weights(
        digits, tmp_path, one_thread):
    cfg = TrainConfig(epochs=2, device="cpu")
    reports = []
    out = run_trial_body(SMALL.to_dict(), proxy_training(digits, cfg), cfg, latency_size=32, keep_weights=True,
                         on_epoch=reports.append)
    assert out["status"] == "complete" and out["error"] is None and out["epoch"] == 2
    assert [r["epoch"] for r in reports] == [1, 2] and all(r["latency_ms"] == out["latency_ms"] > 0 for r in reports)
    assert out["best_search_acc"] == max(r["search_acc"] for r in reports)
    assert out["train_seconds"] == reports[-1]["train_seconds"] > reports[0]["train_seconds"] > 0  # summed
    assert out["time_total_s"] >= out["train_seconds"] + out["eval_seconds"] and out["cpu_seconds"] > 0
    trained = shufflesearch.train_proxy(SMALL, digits, cfg)  # the same seed: the same weights
    assert out["search_acc"] == trained.final["search_acc"]
    # the weights come back in the report, as safetensors bytes; the body writes nothing
    torch.testing.assert_close(safetensors.torch.load(out["weights"]), trained.state_dict, rtol=0, atol=0)
    assert list(tmp_path.iterdir()) == [] and all("weights" not in r for r in reports)


def test_an_architecture_whose_latency_measurement_raises_is_the_trials_failure(digits):
    cfg = TrainConfig(epochs=1, device="cpu")
    reports = []
    out = run_trial_body(TOO_WIDE.to_dict(), proxy_training(digits, cfg), cfg, latency_size=32, keep_weights=True,
                         on_epoch=reports.append)
    assert out["status"] == "failed" and "can't allocate memory" in out["error"]
    assert out["epoch"] == 0 and out["latency_ms"] is None and reports == []
    assert "weights" not in out


def test_an_unreadable_genome_is_the_trials_failure(digits):
    cfg = TrainConfig(epochs=1, device="cpu")
    out = run_trial_body({**SMALL.to_dict(), "stages": []}, proxy_training(digits, cfg), cfg)
    assert out["status"] == "failed" and "stages" in out["error"]


@pytest.mark.slow
def test_a_job_whose_latency_measurement_raises_is_recorded_failed_not_retried_and_the_others_go_on(
        digits, tmp_path, capfd):
    from shufflesearch._exec._ray import run_jobs
    from shufflesearch.evaluation._jobs import train_job

    jobs = [{"arch": a.to_dict(), "seed": 0, "latency_size": 32} for a in (TOO_WIDE, SMALL)]
    results, retries = [], []
    run_jobs(train_job, jobs, cpus_per_job=1, on_result=lambda job, result: results.append((job, result)),
             shared={"data": digits, "train_cfg": TrainConfig(epochs=1, device="cpu")},
             on_retry=lambda *retry: retries.append(retry), log=tmp_path / "ray.log")
    by_arch = {Arch.from_dict(job["arch"]).hash: result for job, result in results}
    failed, trained = by_arch[TOO_WIDE.hash], by_arch[SMALL.hash]
    assert failed["status"] == "failed" and "can't allocate memory" in failed["error"]
    assert failed["attempts"] == 1 and failed["faults"] == [] and retries == []  # its own error: never retried
    assert trained["status"] == "complete" and trained["latency_ms"] > 0
    out, err = capfd.readouterr()
    assert out == "" and err == ""
