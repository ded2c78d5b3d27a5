"""A search, its export, final evaluation and baselines on a Ray cluster whose nodes share no disk
(tests/cluster.py: a head that runs no work and 2 worker nodes of 1 CPU, each blind to pytest's temp
folders): every trial and job runs on a worker node, and every file they produce is in the driver's run
folder, written by the driver from what came back through Ray. And node loss: a worker node killed
(SIGKILL) in the middle of a search or a final evaluation, which finish on the other node, each trial or
job recorded once, the retried ones with `faults: ["node died"]`.

The module's cluster (and its one search) is shared by the tests that leave it whole; the two that kill
a node start their own.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import ray
from cluster import ROOT, Cluster, cluster_for_module, skip_unless_unshare
from helpers import tiny_space

import shufflesearch
from shufflesearch.data import load_data
from shufflesearch.runs._records import read_rows
from shufflesearch.space._configs import proxy_config_from_dict

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ZOO = "shufflenet_v1_g3_x0_25"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and 2 worker nodes of 1 CPU, for the tests that leave it whole."""
    yield from cluster_for_module(tmp_path_factory)


@pytest.fixture(scope="module")
def searched(cluster, tmp_path_factory):
    """A 3-trial demo search on the cluster; its Tune experiment's trials (`ExperimentAnalysis`)."""
    from ray.tune import ExperimentAnalysis

    tmp = tmp_path_factory.mktemp("multinode")
    result = shufflesearch.search(tiny_space(tmp, epochs=2), name="mn", trials=3, scheduler="none",
                                  address=cluster.address, runs_dir=tmp / "runs", progress=None)
    return result, ExperimentAnalysis(str((result.run_dir / "tune" / "part1").resolve())).trials


def run_config(run_dir: Path) -> tuple[dict, object]:
    """The run's config.json and its proxy settings."""
    config = json.loads((run_dir / "config.json").read_text())
    return config, proxy_config_from_dict(config["proxy"], "config.json")


def test_every_trial_runs_on_a_worker_node_and_the_driver_writes_its_weights(cluster, searched):
    from shufflesearch.train._trial import proxy_training, run_trial_body

    result, tune_trials = searched
    rows = read_rows(result.run_dir / "trials.jsonl")
    assert len(rows) == 3 and all(r["status"] == "complete" and r["attempts"] == 1 for r in rows)
    weights = {r["number"]: result.run_dir / "weights" / f"trial_{r['number']}.safetensors" for r in rows}
    assert sorted(p.name for p in (result.run_dir / "weights").iterdir()) == sorted(p.name for p in weights.values())
    # where each trial ran, as Tune recorded it in the driver's experiment state: a worker node, never the
    # head (the driver's machine); and the weights were taken out of the result before Tune kept it
    assert sorted(t.config["number"] for t in tune_trials) == sorted(weights)
    assert all(t.last_result["node_ip"] in cluster.node_ips for t in tune_trials)
    assert not any("weights" in t.last_result for t in tune_trials)
    state = b"".join(p.read_bytes() for p in (result.run_dir / "tune").rglob("*") if p.is_file())
    assert not any(p.read_bytes()[-4096:] in state for p in weights.values())  # nor in Tune's files

    # the bytes are the trial's: the best one trained again here, as its trial did, gives them exactly
    config, proxy = run_config(result.run_dir)
    cfg = replace(proxy.train, threads=config["cpus_per_trial"], seed=config["seed"], device="cpu")
    again = run_trial_body(result.best["arch"], proxy_training(load_data(proxy.data), cfg), cfg, keep_weights=True)
    assert again["search_acc"] == result.best["search_acc"]
    assert weights[result.best["number"]].read_bytes() == again["weights"]


def test_export_then_create_model_in_a_new_process(searched):
    result, _ = searched
    (folder,) = shufflesearch.export_run(result.run_dir)
    best = result.run_dir / "weights" / f"trial_{result.best['number']}.safetensors"
    assert folder.name == "ss_mn_best" and (folder / "model.safetensors").read_bytes() == best.read_bytes()
    code = ("import json, timm, shufflesearch; from helpers import evaluate; from pathlib import Path\n"
            "print(json.dumps(evaluate(timm.create_model('ss_mn_best', pretrained=True), Path('runs/mn'))))")
    # runs/ is found in the working directory, as a user's would be
    done = subprocess.run([sys.executable, "-c", code], cwd=result.run_dir.parent.parent, capture_output=True,
                          text=True, check=False, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == result.best["search_acc"]  # exactly: the trial's weights, its evaluation


def test_final_and_baselines_on_the_cluster(cluster, searched):
    from shufflesearch.evaluation._jobs import train_job

    result, _ = searched
    final = shufflesearch.final_evaluation(result.run_dir, top=1, seeds=1, epochs=1, zoo=[ZOO],
                                           address=cluster.address, progress=None)
    assert len(final.rows) == 2 and all(r["status"] == "complete" for r in final.rows)
    files = sorted((final.final_dir / "weights").iterdir())
    assert len(files) == 2 and sorted(p.name for p in final.models) == sorted(
        [f"ss_mn_t{result.best['number']}_final", f"ss_mn_{ZOO}_final"])
    for folder in final.models:
        assert (folder / "model.safetensors").is_file()
    # the zoo model's bytes are its job's: trained again here, as its job did, it gives them exactly
    zoo = next(r for r in final.rows if r["kind"] == "zoo")
    protocol = json.loads((final.final_dir / "config.json").read_text())
    config, proxy = run_config(result.run_dir)
    data = load_data(replace(proxy.data, subset_per_class=protocol["data"]["subset_per_class"]), "test")
    cfg = replace(proxy.train, epochs=1, threads=config["cpus_per_trial"], device="cpu")
    again = train_job(zoo["arch"], zoo["seed"], data, cfg, keep_weights=True)
    assert again["test_acc"] == zoo["test_acc"]
    (zoo_file,) = [p for p in files if p.name.startswith(f"{ZOO}_")]
    assert zoo_file.read_bytes() == again["weights"]

    rows = shufflesearch.run_baselines(result.run_dir, [ZOO], address=cluster.address)
    assert [(r["model"], r["status"]) for r in rows] == [(ZOO, "complete")]
    assert read_rows(result.run_dir / "baselines.jsonl") == rows


# --- node loss ------------------------------------------------------------------------------------
def _running_marks(folder: Path, node: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(f"{node}-")]


def _when_running_on(node: int, c: Cluster, rows: Path, marks: Path) -> None:
    """Kill worker node `node` once a row is recorded in `rows` and a trial or job is running on that node
    (a mark of it in `marks`)."""
    deadline = time.monotonic() + 300
    while not (read_rows(rows) and _running_marks(marks, c.node_ids[node])):
        assert time.monotonic() < deadline, "nothing ran on the node to kill"
        time.sleep(0.05)
    c.kill_node(node)


def _marked(folder: str, call):
    """Run `call()` with a mark in `folder` named by this node (and process) while it runs, after a pause
    that gives the test the time to kill the node under it."""
    mark = Path(folder) / f"{ray.get_runtime_context().get_node_id()}-{os.getpid()}"
    mark.touch()
    try:
        time.sleep(2)
        return call()
    finally:
        mark.unlink(missing_ok=True)


def marked_training(arch, data, train_cfg, report=None, *, folder: str):
    """The proxy trainer, marked while it runs (`_marked`)."""
    return _marked(folder, lambda: shufflesearch.train_proxy(arch, data, train_cfg, report=report))


def marked_jobs(folder: str):
    """`driver._jobs.train_job`, marked while it runs (`_marked`): a function (ray.remote takes no partial)."""
    def train_job(*args, **kwargs):
        from shufflesearch.driver import _jobs

        return _marked(folder, lambda: _jobs.train_job(*args, **kwargs))
    return train_job


@pytest.fixture
def own_cluster(tmp_path, tmp_path_factory):
    """A cluster for one test (it kills a node), hiding `tmp_path`; a folder every node sees, for marks."""
    from ray import cloudpickle

    skip_unless_unshare()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the marked trainers, by value
    with Cluster(hidden=[tmp_path]) as c:
        yield c, tmp_path_factory.mktemp("marks")


def _retried(rows: list[dict]) -> dict:
    """The row of the one trial or job the killed node was running (1 CPU: one at a time), after checking
    every row's attempts and faults."""
    retried = [r for r in rows if r["attempts"] > 1]
    assert len(retried) == 1, rows
    assert retried[0]["attempts"] == 2 and retried[0]["faults"] == ["node died"], retried
    assert all(r["attempts"] == 1 and r["faults"] == [] for r in rows if r is not retried[0])
    return retried[0]


def test_a_search_that_loses_a_node_finishes_on_the_other(own_cluster, tmp_path):
    c, marks = own_cluster
    runs = tmp_path / "runs"
    killer = threading.Thread(target=_when_running_on, args=(0, c, runs / "tiny" / "trials.jsonl", marks), daemon=True)
    killer.start()
    lines: list[str] = []
    t0 = time.monotonic()
    result = shufflesearch.search(tiny_space(tmp_path, epochs=2), trials=4, scheduler="none", address=c.address,
                                  runs_dir=runs, progress=lines.append,
                                  train_fn=functools.partial(marked_training, folder=str(marks)))
    killer.join(timeout=1)
    print(f"search with a node killed: {time.monotonic() - t0:.0f} s")
    rows = read_rows(result.run_dir / "trials.jsonl")
    assert len(rows) == 4 and len({r["number"] for r in rows}) == 4 and all(r["status"] == "complete" for r in rows)
    retried = _retried(rows)
    assert any(f"trial {retried['number']:>3}  retry 1/2 (node died)" in line for line in lines), lines
    for r in rows:
        assert (result.run_dir / "weights" / f"trial_{r['number']}.safetensors").is_file()


def test_a_final_evaluation_that_loses_a_node_finishes_on_the_other(own_cluster, tmp_path, monkeypatch):
    from shufflesearch.driver import _jobs

    c, marks = own_cluster
    runs = tmp_path / "runs"
    searched = shufflesearch.search(tiny_space(tmp_path, epochs=1), trials=2, scheduler="none", address=c.address,
                                    runs_dir=runs, progress=None)
    results = searched.run_dir / "final" / "results.jsonl"
    monkeypatch.setattr(_jobs, "train_job", marked_jobs(str(marks)))
    killer = threading.Thread(target=_when_running_on, args=(0, c, results, marks), daemon=True)
    killer.start()
    lines: list[str] = []
    final = shufflesearch.final_evaluation(searched.run_dir, top=1, seeds=2, epochs=1, zoo=[ZOO], address=c.address,
                                           progress=lines.append)
    killer.join(timeout=1)
    rows = read_rows(results)
    assert len(rows) == 4 and len({(r["name"], r["seed"]) for r in rows}) == 4
    assert all(r["status"] == "complete" for r in rows)
    retried = _retried(rows)
    assert any(f"{retried['name']} seed {retried['seed']}  retry 1/2 (node died)" in line for line in lines), lines
    assert len(list((final.final_dir / "weights").iterdir())) == 4
