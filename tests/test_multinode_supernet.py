"""A supernet search on a Ray cluster whose nodes share no disk (tests/cluster.py: a head that runs no work
and worker nodes of 1 CPU, each blind to pytest's temp folders): the supernet trains data-parallel on two
workers, one per node, through Ray Train, its checkpoints in the storage the user names (a folder every
node sees, outside pytest's), and the driver writes the run folder from what comes back; the candidates
are scored on actors on the worker nodes, the weights reaching them through Ray. Without --storage the
search stops with one line. A worker node killed (SIGKILL) in the middle of the training: Ray Train
restarts the workers from the last checkpoint, and the search finishes with nobody running it again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import timm
import yaml
from cluster import Cluster, cluster_for_module, skip_unless_unshare
from helpers import evaluate, run_cli, tiny_space

import shufflesearch
from shufflesearch.runs._records import read_rows

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and 2 worker nodes of 1 CPU, for the tests that leave it whole."""
    yield from cluster_for_module(tmp_path_factory)


@pytest.fixture
def storage():
    """A folder every node sees (not under pytest's temp folder, which the worker nodes don't), as NFS would be."""
    folder = Path(tempfile.mkdtemp(prefix="ss-storage-", dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _space(tmp_path: Path, trials: int, **supernet) -> Path:
    path = tiny_space(tmp_path, epochs=1, sampler="random")
    data = yaml.safe_load(path.read_text())
    data["search"]["trials"] = trials
    data["supernet"] = {"epochs": 1, "bn_batches": 4, "learned_loss": None, **supernet}  # too short to learn
    path.write_text(yaml.safe_dump(data))
    return path


def _files(folder: Path) -> set[str]:
    """The files under `folder`, but the run lock's (`_exec._lock`), which is there while a driver may come."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {".lock"}


def test_a_supernet_search_on_two_nodes_with_storage_every_node_reaches(cluster, storage, tmp_path):
    lines = []
    result = shufflesearch.search(_space(tmp_path, 12), name="msn", evaluator="supernet", workers=2, storage=storage,
                                  cpus_per_trial=1, address=cluster.address, runs_dir=tmp_path / "runs",
                                  progress=lines.append)
    run_dir = result.run_dir
    state = json.loads((run_dir / "supernet" / "state.json").read_text())
    assert state["done"] and state["step"] == state["total_steps"] == 17 and state["workers"] == 2
    assert state["resumed_from"] == [] and state["device"] == "cpu"
    assert any(line.startswith(f"supernet: training on 2 Ray Train worker(s) of 1 CPU; checkpoints in {storage}/msn-supernet-")
               for line in lines)
    assert "supernet trained: 17 steps, 2 worker(s) on cpu" in "\n".join(lines)
    rows = read_rows(run_dir / "trials.jsonl")
    assert len(rows) == 12 and all(r["status"] == "complete" and r["attempts"] == 1 for r in rows)
    assert len({r["search_acc"] for r in rows}) > 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["supernet"]["workers"] == 2 and config["supernet"]["storage"] == str(storage)
    # every file in the driver's run folder, written by the driver (a worker's writes under pytest's temp
    # folder land on its node's tmpfs); the storage keeps nothing of the finished run
    assert _files(run_dir) == {"space.yaml", "config.json", "trials.jsonl", "trials.csv", "optuna.journal",
                               "summary.json", "ray.log", "supernet/supernet.safetensors", "supernet/state.json"}
    assert list(storage.iterdir()) == []

    # export: the best path's weights, computed here from the run folder's supernet, score what its actor did
    (folder,) = shufflesearch.export_run(run_dir)
    assert (folder / "model.safetensors").is_file() and folder.name == "ss_msn_best"
    model = timm.create_model("ss_msn_best", pretrained=True)
    assert evaluate(model, run_dir, "search") == result.best["search_acc"]


def test_without_storage_on_a_cluster_it_is_one_line_naming_the_flag(cluster, tmp_path):
    out = run_cli("search", str(_space(tmp_path, 4)), "--name", "nostore", "--evaluator", "supernet", "--workers", "2",
                  "--address", cluster.address, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "--storage: the supernet's Ray Train workers may run on other nodes than this one (127.0.0.3, 127.0.0.4)" \
        in out.stderr and "with --storage PATH|URI" in out.stderr
    assert not (tmp_path / "runs" / "nostore" / "supernet").exists()


def _training_nodes(c: Cluster) -> list[int]:
    """The worker nodes with a Ray Train worker process (Ray titles an actor's process by its class)."""
    found = []
    for i in range(len(c.node_ids)):
        for pid in c.pids(i):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::RayTrainWorker"):
                    found.append(i)
                    break
            except OSError:
                continue
    return found


def _kill_mid_training(c: Cluster, storage: Path, killed: list) -> None:
    """SIGKILL a node one of the training's workers is on, once it has reported three checkpoints (Ray Train
    keeps only the last: seen by name) and is not done: the first is Ray Train's by then, the checkpoint
    a restart starts from (a checkpoint is Ray Train's once every worker's report of it went through)."""
    deadline, seen = time.monotonic() + 400, {}
    while time.monotonic() < deadline:
        for path in storage.glob("*-supernet-*/checkpoint_*/state.json"):
            try:
                seen.setdefault(path.parent.name, json.loads(path.read_text()))
            except (OSError, ValueError):  # being copied there, or deleted meanwhile
                pass
        nodes = _training_nodes(c)
        if len(seen) >= 3 and nodes:
            states = list(seen.values())
            killed.append((nodes[0], max(s["step"] for s in states), states[0]["total_steps"]))
            c.kill_node(nodes[0])
            return
        time.sleep(0.02)


def test_a_node_killed_mid_training_the_training_goes_on_from_its_last_checkpoint(storage, tmp_path):
    skip_unless_unshare()
    lines, killed = [], []
    space = _space(tmp_path, 8, epochs=4, checkpoint_every=2)
    with Cluster(hidden=[tmp_path], workers=3) as c:  # 2 training workers, and a node to go on with one lost
        killer = threading.Thread(target=_kill_mid_training, args=(c, storage, killed), daemon=True)
        killer.start()
        result = shufflesearch.search(space, name="kill", evaluator="supernet", workers=2, storage=storage,
                                      cpus_per_trial=1, address=c.address, runs_dir=tmp_path / "runs",
                                      progress=lines.append)
        killer.join(timeout=1)
    assert killed, "the training ended before a node could be killed"
    (node, step, total) = killed[0]
    assert 0 < step < total == 68
    state = json.loads((result.run_dir / "supernet" / "state.json").read_text())
    assert state["done"] and state["step"] == state["total_steps"] == 68 and state["workers"] == 2
    assert len(state["resumed_from"]) == 1 and 0 < state["resumed_from"][0] < 68  # on, not from the start
    rows = read_rows(result.run_dir / "trials.jsonl")
    assert len(rows) == 8 and all(r["status"] == "complete" for r in rows)
    assert _files(result.run_dir) >= {"supernet/supernet.safetensors", "supernet/state.json", "trials.jsonl"}
    assert list(storage.iterdir()) == []
    print(f"node {node} killed after step {step}; resumed at {state['resumed_from']}; "
          f"{state['seconds']:.0f}s of training")
