"""A run's folder is guarded: its name is one folder name under the runs directory, and one driver at a
time holds it (`_exec._lock.run_lock`), the second one told who has it, with nothing written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from shufflesearch._exec._lock import LOCK, run_lock
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.runs._run import run_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".", "", "my run", "/abs", "a\\b", "ü"])
def test_a_run_name_that_is_not_one_folder_name_is_refused(name, tmp_path):
    with pytest.raises(ShuffleSearchError, match="must be one folder name"):
        run_folder(tmp_path / "runs", name)


@pytest.mark.parametrize("name", ["demo", "Demo-Run_2", "v1.2", "..a"])
def test_one_folder_names_are_runs_under_the_runs_dir(name, tmp_path):
    assert run_folder(tmp_path / "runs", name) == tmp_path / "runs" / name


def _hold(run_dir: Path) -> subprocess.Popen:
    """Another driver: a process holding the run's lock until it is killed."""
    code = ("import sys, time\nfrom shufflesearch._exec._lock import run_lock\n"
            "with run_lock(sys.argv[1], 'search'):\n    print('held', flush=True)\n    time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_driver_is_told_who_holds_the_run_and_writes_nothing(tmp_path):
    proc = _hold(tmp_path)
    try:
        before = (tmp_path / LOCK).read_bytes()
        with pytest.raises(ShuffleSearchError, match=rf"in use by another driver \(pid {proc.pid} on host "):
            with run_lock(tmp_path, "final evaluation"):
                pytest.fail("a second driver got the lock")
        assert (tmp_path / LOCK).read_bytes() == before and sorted(os.listdir(tmp_path)) == [LOCK]
    finally:
        proc.kill()
        proc.wait()
    # the holder died without a word: its lock is stale, taken over with a warning naming it
    with pytest.warns(UserWarning, match=rf"taken over from pid {proc.pid} \(search since"):
        with run_lock(tmp_path, "search"):
            assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert (tmp_path / LOCK).read_text() == ""  # released
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # free again: taken with no warning
        with run_lock(tmp_path, "search"):
            pass


def test_a_lock_left_by_another_host_is_refused_with_how_to_clear_it(tmp_path):
    held = {"pid": 4242, "host": f"not-{socket.gethostname()}", "what": "search", "since": "2026-12-01T00:00:00+00:00",
            "command": "shufflesearch search demo"}
    (tmp_path / LOCK).write_text(json.dumps(held) + "\n")
    with pytest.raises(ShuffleSearchError, match=rf"left by a driver on another host \(pid 4242 on host not-.*"
                                                 rf"delete {tmp_path / LOCK}"):
        with run_lock(tmp_path, "search"):
            pytest.fail("took another host's lock")
    assert json.loads((tmp_path / LOCK).read_text()) == held


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path, "search"):
            raise RuntimeError("the search failed")
    with run_lock(tmp_path, "search"):  # not held any more: taken at once, no error
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("name", ["../evil", "a/b"])
def test_the_cli_refuses_a_run_name_that_is_not_one_folder_name_with_one_line(name, tmp_path, capsys):
    from shufflesearch.cli import main

    assert main(["search", "demo", "--name", name, "--runs-dir", str(tmp_path / "runs"), "--trials", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"run name {name!r}: must be one folder name" in err
    assert list(tmp_path.iterdir()) == []


def test_a_search_on_a_run_another_driver_holds_stops_before_writing(tmp_path):
    from helpers import tiny_space

    import shufflesearch

    space = tiny_space(tmp_path)
    run_dir = tmp_path / "runs" / "held"
    run_dir.mkdir(parents=True)
    proc = _hold(run_dir)
    try:
        with pytest.raises(ShuffleSearchError, match=rf"held: in use by another driver \(pid {proc.pid} on host "):
            shufflesearch.search(space, name="held", trials=1, runs_dir=tmp_path / "runs", progress=None)
        assert sorted(os.listdir(run_dir)) == [LOCK]
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_final_and_baselines_on_a_run_another_driver_holds_stop_before_writing(tmp_path, ray_local):
    from helpers import tiny_space

    import shufflesearch

    done = shufflesearch.search(tiny_space(tmp_path, epochs=1), name="held", trials=1, scheduler="none",
                                runs_dir=tmp_path / "runs", progress=None)
    before = sorted(p.name for p in done.run_dir.iterdir())
    proc = _hold(done.run_dir)
    try:
        for call in (lambda: shufflesearch.final_evaluation(done.run_dir, top=1, seeds=1, epochs=1, zoo=[],
                                                            progress=None),
                     lambda: shufflesearch.run_baselines(done.run_dir, ["shufflenet_v1_g3_x0_25"])):
            with pytest.raises(ShuffleSearchError, match=rf"in use by another driver \(pid {proc.pid} on host "):
                call()
        assert sorted(p.name for p in done.run_dir.iterdir()) == before
    finally:
        proc.kill()
        proc.wait()
