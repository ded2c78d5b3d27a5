"""The budgeted search end to end: real Ray, real Optuna (journal storage), real training on digits.

The space here is the demo space with a 3-epoch proxy, so a trial takes a few seconds.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import run_cli, tiny_space

import shufflesearch
from shufflesearch.runs._pareto import pareto_front
from shufflesearch.runs._records import read_rows

pytestmark = pytest.mark.slow


def check_records(run_dir: Path, trials: int) -> list[dict]:
    rows = read_rows(run_dir / "trials.jsonl")
    assert len(rows) == trials
    assert len({r["number"] for r in rows}) == trials  # no trial recorded (or trained) twice
    budget = json.loads((run_dir / "config.json").read_text())["budget"]["mflops"]
    for r in rows:
        assert r["mflops"] <= budget
        assert 0 <= r["epochs"] <= r["max_epochs"]
        if r["status"] == "complete":
            assert r["epochs"] == r["max_epochs"]
            assert (run_dir / "weights" / f"trial_{r['number']}.safetensors").exists()
    return rows


def test_four_trial_search_end_to_end(tmp_path, ray_local):
    result = shufflesearch.search(tiny_space(tmp_path), scheduler="asha", runs_dir=tmp_path / "runs",
                                  progress=None)
    rows = check_records(result.run_dir, 4)
    assert result.best is not None and result.best["search_acc"] > 0.3  # 10 classes: chance is 0.1
    for name in ("space.yaml", "config.json", "optuna.journal", "trials.csv", "summary.json"):
        assert (result.run_dir / name).exists(), name
    assert any((result.run_dir / "tune").glob("part1/*"))
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["seed"] == 0 and config["versions"]["optuna"] == optuna.__version__

    # the default objectives are (acc, mflops): the result's Pareto set is non-dominated
    assert config["objectives"] == ["acc", "mflops"]
    front = pareto_front(rows, ("acc", "mflops"))
    assert {r["number"] for r in result.pareto} == {r["number"] for r in front}
    for a in result.pareto:
        assert not any(b["search_acc"] >= a["search_acc"] and b["mflops"] <= a["mflops"] and
                       (b["search_acc"], b["mflops"]) != (a["search_acc"], a["mflops"]) for b in result.pareto)

    # the Optuna study in the journal knows each trial's outcome (optuna-dashboard reads this file)
    study = optuna.load_study(study_name=result.run_dir.name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.run_dir / "optuna.journal"))))
    states = {t.number: t.state.name for t in study.trials}
    expected = {"complete": "COMPLETE", "early_stopped": "PRUNED", "failed": "FAIL", "diverged": "FAIL"}
    assert all(states[r["number"]] == expected[r["status"]] for r in rows)


@pytest.mark.parametrize("sampler", ["random", "nsga2", "gp"])
def test_each_sampler_runs(tmp_path, ray_local, sampler):
    result = shufflesearch.search(tiny_space(tmp_path), sampler=sampler, trials=3, scheduler="none",
                                  runs_dir=tmp_path / "runs", progress=None)
    rows = check_records(result.run_dir, 3)
    assert all(r["status"] == "complete" for r in rows)
    assert json.loads((result.run_dir / "config.json").read_text())["sampler"] == sampler


def test_same_seed_same_result(tmp_path, ray_local):
    """Random sampling does not depend on completion order, so two runs train the same architectures
    to the same metrics (on one machine)."""
    runs = [shufflesearch.search(tiny_space(tmp_path), name=f"r{i}", sampler="random", trials=3, scheduler="none",
                                 runs_dir=tmp_path / "runs", progress=None) for i in range(2)]
    first, second = ({r["number"]: (r["arch_hash"], r["search_acc"], r["search_loss"]) for r in run.rows} for run in runs)
    assert first == second


@pytest.mark.parametrize("objectives", ["acc", "acc,latency"])
def test_other_objectives(tmp_path, ray_local, objectives):
    result = shufflesearch.search(tiny_space(tmp_path), objectives=objectives, trials=2, scheduler="none",
                                  runs_dir=tmp_path / "runs", progress=None)
    rows = check_records(result.run_dir, 2)
    assert all(r["latency_ms"] > 0 for r in rows)
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.run_dir / "optuna.journal"))))
    assert len(study.directions) == len(objectives.split(","))
    by_number = {r["number"]: r for r in rows}
    for t in study.trials:  # the study was told the recorded accuracy (and latency)
        expected = [by_number[t.number]["search_acc"], by_number[t.number]["latency_ms"]]
        assert t.values == expected[:len(study.directions)]


def fail_once(arch, data, train_cfg, report=None, *, marker: Path):
    """A proxy trainer that raises in the first trial to call it and trains normally in the others."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # atomic: exactly one caller wins
    except FileExistsError:
        return shufflesearch.train_proxy(arch, data, train_cfg, report=report)
    raise RuntimeError("this architecture cannot be trained")


def test_a_raising_trial_does_not_end_the_search(tmp_path, ray_local):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/
    result = shufflesearch.search(tiny_space(tmp_path), trials=3, scheduler="none",
                                  runs_dir=tmp_path / "runs", progress=None,
                                  train_fn=functools.partial(fail_once, marker=tmp_path / "failed"))
    rows = check_records(result.run_dir, 3)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError: this architecture cannot be trained"
    assert failed[0]["attempts"] == 1 and failed[0]["faults"] == []  # its own error: never retried
    assert sum(r["status"] == "complete" for r in rows) == 2
    assert json.loads((result.run_dir / "summary.json").read_text())["counts"]["failed"] == 1


def test_kill_9_then_resume(tmp_path):
    space = tiny_space(tmp_path)
    runs = tmp_path / "runs"
    records = runs / "tiny" / "trials.jsonl"
    driver = subprocess.Popen([sys.executable, "-m", "shufflesearch", "search", str(space), "--trials", "6",
                               "--scheduler", "none", "--runs-dir", str(runs)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(read_rows(records)) < 2:
            assert driver.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        time.sleep(1)
        _kill_group(driver.pid)  # the killed driver's own Ray processes
    before = {r["number"]: r for r in read_rows(records)}
    assert 2 <= len(before) < 6

    resumed = run_cli("search", str(space), "--resume", "--runs-dir", str(runs))
    assert resumed.returncode == 0, resumed.stderr
    after = check_records(runs / "tiny", 6)
    for r in after:  # finished trials were kept as they were, not trained again
        if r["number"] in before:
            assert r == before[r["number"]]
    assert len([r for r in after if r["number"] not in before]) == 6 - len(before)
    assert (runs / "tiny" / "tune" / "part2").exists()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_search_on_a_ray_cluster_on_loopback(tmp_path):
    # a throwaway loopback cluster: no token authentication (Ray 2.60 turns it on by default). It runs
    # in its own session and is stopped by killing that session: `ray stop` would stop every Ray here.
    # Its temp dir is short: Ray's socket paths must fit in 107 characters.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    address = "127.0.0.1:6391"
    head = subprocess.Popen(["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={address.split(':')[1]}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={tempfile.mkdtemp(prefix='ray')}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(["ray", "status", f"--address={address}"], env=env, capture_output=True).returncode:
            assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(1)
        done = run_cli("search", str(tiny_space(tmp_path)), "--trials", "2", "--scheduler", "none",
                       "--address", address, "--runs-dir", str(tmp_path / "runs"), env=env)
        assert done.returncode == 0, done.stderr
        check_records(tmp_path / "runs" / "tiny", 2)
        config = json.loads((tmp_path / "runs" / "tiny" / "config.json").read_text())
        assert config["address"] == address
        baseline = run_cli("baseline", "tiny", "--models", "shufflenet_v1_g3_x0_25", "--address", address,
                           "--runs-dir", str(tmp_path / "runs"), env=env)
        assert baseline.returncode == 0, baseline.stderr
        assert [r["model"] for r in read_rows(tmp_path / "runs" / "tiny" / "baselines.jsonl")] == \
            ["shufflenet_v1_g3_x0_25"]
    finally:
        _kill_group(head.pid)
        head.wait()


def test_impossible_budget_and_unreadable_data_fail_before_ray(tmp_path):
    space = tiny_space(tmp_path)
    low = run_cli("search", str(space), "--budget-mflops", "0.5", "--runs-dir", str(tmp_path / "runs"))
    assert low.returncode == 2 and "Traceback" not in low.stderr
    assert len(low.stderr.strip().splitlines()) == 1 and "MFLOPs" in low.stderr
    data = yaml.safe_load(space.read_text())
    data["proxy"]["dataset"] = f"mnist:{tmp_path / 'nowhere'}"
    space.write_text(yaml.safe_dump(data))
    missing = run_cli("search", str(space), "--runs-dir", str(tmp_path / "runs"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "nowhere" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "tiny").exists()  # nothing half-written
