"""Infrastructure faults: a trial or job whose Ray worker is killed (kill -9) starts again and is
recorded with its attempts; Ray's own messages go to the run's ray.log, not to the console."""

from __future__ import annotations

import builtins
import functools
import os
import signal
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from helpers import tiny_space
from ray.exceptions import ActorDiedError, ActorUnavailableError, NodeDiedError, OutOfMemoryError, WorkerCrashedError

import shufflesearch
from shufflesearch._exec._retries import failure_reason
from shufflesearch.runs._records import read_rows


def test_failure_reasons_from_rays_own_errors():
    oom = OutOfMemoryError("Task was killed due to the node running low on memory.\nMemory on the node "
                           "(IP: 10.0.0.5, ID: 4a1b) where the task (task ID: 1f, name=run_trial) was running "
                           "was 30.02GB / 31.26GB (0.96), which exceeds the memory usage threshold of 0.95.")
    assert failure_reason(str(oom)) == "out of memory on node 10.0.0.5"
    assert failure_reason(str(WorkerCrashedError())) == "worker died"
    assert failure_reason(str(ActorDiedError())) == "worker died"
    assert failure_reason(str(NodeDiedError("node 10.0.0.7 has died"))) == "node died"
    # what a task (run_jobs: the type, then the text) and a Tune trial (its error file: the text) get when
    # their worker node is killed (tests/test_multinode.py)
    task = NodeDiedError("Task failed because the node it was running on is dead or unavailable. Node IP: "
                         "127.0.0.3, node ID: 8bd6ab. This can happen if the node was preempted, ...")
    assert failure_reason(f"{type(task).__name__}: {task}") == "node died"
    actor = ActorUnavailableError("The actor is temporarily unavailable: RpcError: RPC error: recvmsg:Connection "
                                  "reset by peer rpc_code: 14", None)
    assert failure_reason(f"Failure # 1 (occurred at 2026-12-07_22-41-26)\n{actor}\n") == "node died"
    assert failure_reason("Traceback ...\nSomethingElse: the raylet went away\n") == "SomethingElse: the raylet went away"


def test_the_retries_callback_pickles_after_ray_has_replaced_print(monkeypatch):
    # Tune pickles its callbacks into tuner.pkl. Ray's printer of a worker's output or error replaces
    # builtins.print for good (ray.experimental.tqdm_ray.instance, in a process that has seen a worker
    # die, e.g. a test before this one): the callback's printer, print itself, must not need to pickle.
    from ray import cloudpickle

    from shufflesearch.driver._study_searcher import TrialRetries

    retries = TrialRetries(2, print)
    monkeypatch.setattr(builtins, "print", lambda *args, **kwargs: None)
    assert cloudpickle.loads(cloudpickle.dumps(retries)).max_retries == 2


def _wait_and_kill(marker: Path) -> None:
    """kill -9 the process whose pid `marker` receives (a Ray worker running a trial or a job)."""
    deadline = time.monotonic() + 300
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(int(marker.read_text()), signal.SIGKILL)


def _first_caller_waits_to_be_killed(marker: Path) -> bool:
    """True in the first process to call it (the others get False): it has written its pid to
    `marker`, and the test kills it within seconds."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # atomic: exactly one caller wins
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(300)
    raise AssertionError("the test did not kill this worker")


def killed_once(arch, data, train_cfg, report=None, *, marker: Path):
    """The proxy trainer, except that the first trial to call it is killed (kill -9) by the test."""
    _first_caller_waits_to_be_killed(marker)
    return shufflesearch.train_proxy(arch, data, train_cfg, report=report)


@pytest.mark.slow
def test_a_trial_whose_worker_is_killed_is_retried_and_ray_stays_off_the_console(tmp_path, capfd):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/
    marker = tmp_path / "pid"
    killer = threading.Thread(target=_wait_and_kill, args=(marker,), daemon=True)
    killer.start()
    result = shufflesearch.search(tiny_space(tmp_path, epochs=2), trials=3, scheduler="none",
                                  runs_dir=tmp_path / "runs", train_fn=functools.partial(killed_once, marker=marker))
    killer.join(timeout=1)
    rows = read_rows(result.run_dir / "trials.jsonl")
    assert len(rows) == 3 and all(r["status"] == "complete" for r in rows)
    (killed,) = [r for r in rows if r["attempts"] > 1]
    assert killed["attempts"] == 2 and killed["faults"] == ["worker died"]
    assert all(r["attempts"] == 1 and r["faults"] == [] for r in rows if r is not killed)

    # the study saw each trial once, complete; none failed or was told twice
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.run_dir / "optuna.journal"))))
    states = [t.state for t in study.trials if t.state != optuna.trial.TrialState.PRUNED]  # pruned: over budget
    assert states == [optuna.trial.TrialState.COMPLETE] * 3

    out, err = capfd.readouterr()
    assert err == ""
    lines = out.splitlines()
    ours = [line for line in lines if line.startswith(("[", f"{result.run_dir}:", "        trial"))]
    assert ours == lines, f"not ours: {[line for line in lines if line not in ours]}"
    assert f"trial {killed['number']:>3}  retry 1/2 (worker died); Ray's messages: {result.run_dir / 'ray.log'}" in out
    assert "(2 attempts)" in out
    log = (result.run_dir / "ray.log").read_text()
    assert "(raylet) A worker died" in log and "ActorDiedError" in log


def killed_job(arch, seed, marker, data, train_cfg):
    """`evaluation.train_job`, except that a call finding no `marker` waits there to be killed."""
    from shufflesearch.evaluation._jobs import train_job

    _first_caller_waits_to_be_killed(Path(marker))
    return train_job(arch, seed, data, train_cfg)


def _kill(marker: Path, times: int) -> None:
    """kill -9 the job waiting at `marker`, `times` times (removing the marker between kills, so the
    next attempt waits to be killed too)."""
    for k in range(times):
        _wait_and_kill(marker)
        if k < times - 1:
            marker.unlink()


@pytest.mark.slow
def test_a_job_whose_worker_is_killed_is_retried_up_to_its_limit(tmp_path, capfd):
    from ray import cloudpickle

    from shufflesearch._exec._ray import run_jobs
    from shufflesearch.space._configs import TrainConfig

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    data = shufflesearch.load_data("digits", subset_per_class=5)
    arch = shufflesearch.get_arch("shufflenet_v1_g3_x0_25").to_dict()
    for kills, max_retries in ((1, 2), (2, 1)):  # retried and then complete; lost in every attempt
        marker = tmp_path / f"pid{kills}"
        killer = threading.Thread(target=_kill, args=(marker, kills), daemon=True)
        killer.start()
        results, retries = [], []
        run_jobs(killed_job, [{"arch": arch, "seed": 0, "marker": str(marker)}],
                 cpus_per_job=1, on_result=lambda job, result: results.append(result),
                 shared={"data": data, "train_cfg": TrainConfig(epochs=1)}, max_retries=max_retries,
                 on_retry=lambda job, attempt, reason: retries.append((attempt, reason)), log=tmp_path / "ray.log")
        killer.join(timeout=5)
        (result,) = results
        assert retries == [(1, "worker died")] and result["attempts"] == 2
        if kills > max_retries:
            assert result["status"] == "failed" and result["faults"] == ["worker died"] * 2
            assert result["error"].startswith("worker died in each of 2 attempts")
        else:
            assert result["status"] == "complete" and result["faults"] == ["worker died"]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert "A worker died" in (tmp_path / "ray.log").read_text()
