"""The multi-node test cluster (tests/cluster.py) is what it claims: work runs on worker nodes only, each
a machine of its own as far as files go (the driver's folders hidden, the checkout visible), spread over
the nodes; a killed node is dead to Ray while the others work on; stop() ends every process the cluster
started and nothing else.

The module's cluster is shared by the tests that leave it whole; the two that kill start their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import ray
from cluster import ROOT, Cluster, cluster_for_module, connected, skip_unless_unshare
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and 2 worker nodes of 1 CPU, for the tests that leave it whole."""
    yield from cluster_for_module(tmp_path_factory)


@ray.remote(num_cpus=1)
def look(driver_file: str, basetemp: str, write: str) -> dict:
    """What a task sees of the driver's files, from wherever it runs."""
    import shufflesearch  # from the checkout, there too

    Path(write).parent.mkdir(parents=True, exist_ok=True)
    Path(write).write_text("from a worker node")
    mounts = [line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return {
        "node": ray.get_runtime_context().get_node_id(),
        "driver_file": os.path.exists(driver_file),
        "basetemp": sorted(os.listdir(basetemp)),
        "wrote": Path(write).read_text(),
        # the mount point (field 5) and, after the " - " separator, the file system type
        "tmpfs": any(m[4] == basetemp and m[m.index("-") + 1] == "tmpfs" for m in mounts),
        "pyproject": hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest(),
        "package": shufflesearch.__file__,
        "mnt_ns": os.readlink("/proc/self/ns/mnt"),
    }


@ray.remote(num_cpus=1)
def where(hold_s: float = 0.0) -> tuple[str, str]:
    time.sleep(hold_s)  # keeps the node's only CPU, so that a second task at once has to go elsewhere
    return ray.get_runtime_context().get_node_id(), os.readlink("/proc/self/ns/mnt")


def alive(node_id: str) -> bool:
    return next(n["Alive"] for n in ray.nodes() if n["NodeID"] == node_id)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"  # a zombie has ended (its reaper is init's business)


def test_work_runs_on_worker_nodes_that_do_not_see_the_drivers_folder(cluster, tmp_path, tmp_path_factory):
    basetemp = tmp_path_factory.getbasetemp().resolve()
    (tmp_path / "driver.txt").write_text("the driver's")
    with connected(cluster):
        nodes = {n["NodeID"]: n for n in ray.nodes()}
        seen = ray.get(look.remote(str(tmp_path / "driver.txt"), str(basetemp), str(tmp_path / "worker.txt")))

    assert set(nodes) == {cluster.head_node_id, *cluster.node_ids}
    assert "CPU" not in nodes[cluster.head_node_id]["Resources"]  # nothing runs beside the driver
    assert len({nodes[i]["NodeManagerAddress"] for i in nodes}) == 3  # an address each, as 3 machines
    assert seen["node"] in cluster.node_ids and seen["node"] != cluster.head_node_id
    assert seen["tmpfs"] and seen["basetemp"] == [tmp_path.relative_to(basetemp).parts[0]]  # only its own write
    assert not seen["driver_file"]
    assert seen["wrote"] == "from a worker node" and not (tmp_path / "worker.txt").exists()
    assert seen["mnt_ns"] != os.readlink("/proc/self/ns/mnt")
    # the checkout, and the package from it, as the driver has them
    assert seen["pyproject"] == hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    assert Path(seen["package"]).is_relative_to(ROOT)


def test_tasks_spread_over_the_worker_nodes(cluster):
    with connected(cluster):
        pinned = ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
                          for node in cluster.node_ids])
        # two tasks at once, spread, each holding its node's only CPU meanwhile: one per node
        at_once = ray.get([where.options(scheduling_strategy="SPREAD").remote(1.0) for _ in cluster.node_ids])

    assert [node for node, _ in pinned] == cluster.node_ids
    assert len({ns for _, ns in pinned}) == 2  # a mount namespace each
    assert sorted(node for node, _ in at_once) == sorted(cluster.node_ids)


def test_a_killed_node_is_dead_and_the_other_works_on(tmp_path):
    skip_unless_unshare()
    with Cluster(hidden=[tmp_path]) as c, connected(c):
        assert ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(c.node_ids[0], soft=False))
                       .remote())[0] == c.node_ids[0]  # it has a worker process to kill too
        node0 = c.pids(0)
        t0 = time.monotonic()
        c.kill_node(0)
        while alive(c.node_ids[0]):
            assert time.monotonic() - t0 < 30, f"node 0 still alive 30 s after kill_node(0)\n{c.logs()}"
            time.sleep(0.2)
        dead_after = time.monotonic() - t0
        assert alive(c.node_ids[1]) and alive(c.head_node_id)
        assert ray.get(where.remote())[0] == c.node_ids[1]
        assert not c.pids(0) and not [pid for pid in node0 if running(pid)]
        head, node0_start, node1_start = c.pgids
        assert running(head) and running(node1_start) and not running(node0_start)  # their `ray start`s
    print(f"node 0 dead to Ray {dead_after:.1f} s after SIGKILL")


def test_stop_kills_its_own_processes_only(tmp_path, monkeypatch):
    skip_unless_unshare()
    # A bystander named like a Ray process (`ray stop`, pkill raylet would take it) in a session of its own
    decoy = tmp_path / "raylet"
    shutil.copy(shutil.which("sleep"), decoy)
    bystander = subprocess.Popen([str(decoy), "300"], start_new_session=True)
    try:
        c = Cluster(hidden=[tmp_path], workers=1, cpus_per_worker=2, resources={"slot": 2}, gpus=1)
        try:
            with connected(c):
                worker = next(n for n in ray.nodes() if n["NodeID"] == c.node_ids[0])
                assert ray.get(where.remote())[0] == c.node_ids[0]  # worker processes started
            pids, pgids, temp = c.pids(), set(c.pgids), c.temp_dir
            namespaces = {os.readlink(f"/proc/{pid}/ns/mnt") for pid in pids}
            killed, killed_groups = [], []
            kill, killpg = os.kill, os.killpg

            def record_kill(pid, sig):
                killed.append((pid, _ns(pid)))
                return kill(pid, sig)

            def record_killpg(pgid, sig):
                killed_groups.append(pgid)
                return killpg(pgid, sig)

            monkeypatch.setattr(os, "kill", record_kill)
            monkeypatch.setattr(os, "killpg", record_killpg)
            c.stop()
            monkeypatch.undo()
        finally:
            c.stop()

        assert worker["Resources"]["CPU"] == 2 and worker["Resources"]["GPU"] == 1 and worker["Resources"]["slot"] == 2
        assert len(pgids) == 2 and pgids <= pids and len(namespaces) == 2
        assert set(killed_groups) <= pgids
        assert all(pid in pids or ns in namespaces for pid, ns in killed), killed
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if running(pid)]
        assert not [pid for pid in _all_pids() if running(pid) and _ns(pid) in namespaces]
        assert not temp.exists()
        assert bystander.poll() is None  # someone else's "raylet" lives on
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def _ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]
