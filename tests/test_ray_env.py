"""The Ray a user's environment already names: $RAY_ADDRESS is the cluster when no --address is given
(as Ray's own tools, and `ray job submit`, do), and a local Ray uses the CPUs this process may run on
(Ray's own count, which reads a container's cgroup quota, capped by the CPU affinity `taskset` sets),
never os.cpu_count(), and runs that many one-CPU jobs at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from cluster import ROOT, Cluster, skip_unless_unshare

from shufflesearch._exec._ray import ray_session

pytestmark = pytest.mark.slow


def _python(code: str, *prefix: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


CONCURRENCY = ("import ray\nfrom shufflesearch._exec._ray import concurrency, ray_session\n"
               "with ray_session():\n    print(int(ray.cluster_resources()['CPU']), concurrency(1))\n")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_a_local_ray_under_taskset_uses_the_one_cpu_it_may_run_on():
    done = _python(CONCURRENCY, "taskset", "-c", "0", RAY_ADDRESS="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_a_local_ray_uses_every_cpu_this_process_may_run_on():
    done = _python(CONCURRENCY, RAY_ADDRESS="")
    assert done.returncode == 0, done.stderr
    cpus = str(len(os.sched_getaffinity(0)))
    assert done.stdout.split() == [cpus, cpus]


@pytest.mark.cluster
def test_ray_address_from_the_environment_is_the_cluster_when_no_address_is_given(tmp_path, monkeypatch):
    import ray

    skip_unless_unshare()
    with Cluster(hidden=[tmp_path], workers=1) as cluster:
        monkeypatch.setenv("RAY_ADDRESS", cluster.address)
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # as the cluster's nodes run (tests/cluster.py)
        with ray_session():
            nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert nodes == {cluster.head_node_id, *cluster.node_ids}
