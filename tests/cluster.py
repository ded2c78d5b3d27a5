"""A multi-node Ray cluster on one machine, for tests: a head that runs no work and N worker nodes that
don't see the driver's work folders.

    with Cluster(hidden=[tmp_path]) as cluster, connected(cluster):   # head + 2 worker nodes of 1 CPU
        ...                                                            # ray.* calls go to the cluster

or a module-scoped fixture made with cluster_for_module(tmp_path_factory), which hides pytest's basetemp
(every tmp_path) and skips where mount namespaces can't be made.

Every node is a `ray start --block` in a mount namespace of its own (`unshare --mount --propagation
private`) and a session (process group) of its own. In a worker node's namespace every `hidden` folder is
covered by an empty tmpfs before Ray starts, so its raylet and every worker process it spawns see an
empty folder there: what the driver wrote there is not there for them, and what they write there never
reaches the driver's disk, as on machines that share no file system. The checkout stays visible (the
package imports from it) and so does everything else. The head hides nothing; its namespace only makes
its processes findable. Nodes run with cwd = their own temp dir, never a hidden folder (a cwd under it
would still reach the driver's files through the covered directory).

Addresses: all on loopback, each node its own (as on separate machines: its own `node:<ip>` resource
and NodeManagerAddress): the head at 127.0.0.2, worker node i at 127.0.0.(3+i). Not 127.0.0.1: Ray
replaces that one address (in --node-ip-address and in --address/ray.init's address) with the machine's
routable IP. A driver (ray.init(address=cluster.address)) attaches to the head, the node Ray prefers
among the raylets on the driver's machine.

Ports and folders: Ray's fixed defaults would collide between nodes on one host or with a user's Ray:
GCS 6379, dashboard 8265 (its API server runs even with --include-dashboard false), Ray Client 10001
(only with ray[client]), dashboard agent 52365 (every node), worker ports 10002-19999 (the same range
for every raylet). The first three get free ports picked here, the last two 0 (the OS picks, as Ray does
for every other port: node manager, object manager, metrics, runtime-env agent). Each node has its own
--temp-dir under a new /tmp/ssc-* (sockets, logs, session; never /tmp/ray, a user's sessions); without
one a worker node would take the head's temp dir.

Environment of the nodes: RAY_AUTH_MODE=disabled (Ray 2.60 turns token auth on for `ray start --head`
where ~/.ray/auth_token exists, which any local ray.init() writes, but neither `ray start --address`
nor a driver given an explicit address turns it on for itself: they would be refused),
RAY_USAGE_STATS_ENABLED=0 (all --disable-usage-stats does; nothing is written to ~/.ray),
and GCS health checks that mark a killed node dead in about 5 s (Ray's defaults: 15-30 s).

stop() and kill_node() SIGKILL only processes this class started: each node's process group and every
process in the node's mount namespace (Ray puts each worker process in a process group of its own, so
the node's group alone misses them). Never `ray stop`, which kills every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the checkout: never hidden (the package imports from it)
HEAD_IP = "127.0.0.2"  # not 127.0.0.1: Ray rewrites that one address to the machine's routable IP

# GCS health checks: a killed node is dead after about 5 s (Ray's defaults: 3 s x 5 after a 5 s delay),
# and a node busy on 2 cores still has 5 s to answer.
_HEALTH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "5",
}


@functools.cache
def unshare_error() -> str | None:
    """Why a mount namespace with a tmpfs in it can't be made here, or None where it can."""
    if not sys.platform.startswith("linux"):
        return f"mount namespaces are Linux-only (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return "the `unshare` command (util-linux) is not installed"
    with tempfile.TemporaryDirectory(prefix="ssc-probe-") as folder:
        probe = f"mount -t tmpfs tmpfs {shlex.quote(folder)} && touch {shlex.quote(folder)}/x"
        try:
            done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", probe],
                                  capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"`unshare --mount` failed: {e}"
        if done.returncode:
            return (f"`unshare --mount` with a tmpfs mount is not permitted here (needs root or CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
        if os.listdir(folder):
            return "a tmpfs mounted in a new mount namespace showed outside it (mount propagation)"
    return None


def skip_unless_unshare() -> None:
    """pytest.skip, with the reason, where a mount namespace can't be made."""
    reason = unshare_error()
    if reason:
        pytest.skip(f"multi-node test cluster needs mount namespaces: {reason}")


def _free_ports(n: int) -> list[int]:
    """n distinct ports free on loopback now (held together while picked, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))  # free on every address: Ray binds some servers to 0.0.0.0
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_client_installed() -> bool:
    """Whether `ray start --head` starts a Ray Client server (default port 10001): only with ray[client]."""
    try:
        from ray._private.utils import get_ray_client_dependency_error
    except ImportError:  # moved in another Ray: pass the port (a wrong guess fails loudly at start)
        return True
    return get_ray_client_dependency_error() is None


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:  # gone, a zombie, or not ours to read
        return None


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _pids() -> Iterable[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _own_ns(pid: int, host_ns: str) -> str | None:
    """pid's mount namespace if it is not ours (unshare has made a new one), else None."""
    ns = _mnt_ns(pid)
    return ns if ns is not None and ns != host_ns else None


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _Node:
    def __init__(self, name: str, ip: str, temp_dir: Path, command: list[str], log: Path):
        self.name, self.ip, self.temp_dir, self.command, self.log = name, ip, temp_dir, command, log
        self.proc: subprocess.Popen | None = None
        self.ns: str | None = None  # its mount namespace, once unshare has made it
        self.node_id: str | None = None
        self.gone = False  # killed, and none of its processes left

    def pids(self, host_ns: str) -> set[int]:
        """Its running processes now: its process group and everything in its mount namespace.

        The group counts only while its leader (`ray start`) is not reaped, and neither counts once the node
        is gone: then the numbers may be reused by someone else's processes."""
        if self.proc is None or self.gone:
            return set()
        group = self.proc.pid if self.proc.poll() is None else None  # start_new_session: pgid == its pid
        if self.ns is None and group is not None:
            self.ns = _own_ns(group, host_ns)
        pids = set()
        for pid in _pids():
            if not _alive(pid):
                continue
            try:
                in_group = group is not None and os.getpgid(pid) == group
            except OSError:
                continue
            if in_group or (self.ns is not None and _mnt_ns(pid) == self.ns):
                pids.add(pid)
        return pids


class Cluster:
    """A head (no CPUs) and `workers` worker nodes on this machine, each in a mount namespace of its own
    in which every folder in `hidden` is an empty tmpfs. Starts in the constructor; a context manager.

    hidden: folders the worker nodes must not see (the driver's work folder: a test's tmp_path, or
        pytest's basetemp for all of them); each must exist and must not hold the checkout, Python,
        or the cluster's own temp folder.
    workers, cpus_per_worker, gpus (per worker node: a logical count, no device needed),
    resources: custom resources of every worker node (a dict), or one dict per worker node (a list).
    object_store_mb: each node's object store. timeout: seconds for all nodes to come up.

    .address ("127.0.0.2:PORT", for ray.init), .head_node_id, .node_ids (worker nodes' ids, hex, in
    order), .node_ips, .temp_dir, .pgids (each node's process group), .pids(), .kill_node(i), .logs(),
    .stop() (idempotent; also on leaving the `with`, and in the constructor if starting fails).
    """

    def __init__(
        self,
        hidden: Sequence[Path | str],
        workers: int = 2,
        cpus_per_worker: int = 1,
        resources: dict | Sequence[dict] | None = None,
        gpus: int = 0,
        *,
        object_store_mb: int = 100,
        timeout: float = 60.0,
    ):
        if workers < 1 or workers > 250:
            raise ValueError(f"workers must be 1..250, not {workers}")
        if resources is None or isinstance(resources, dict):
            per_node = [dict(resources or {})] * workers
        else:
            per_node = [dict(r) for r in resources]
            if len(per_node) != workers:
                raise ValueError(f"{len(per_node)} resource dicts for {workers} worker nodes")
        self.hidden = [Path(h).resolve() for h in hidden]
        # Short: Ray's unix sockets live under it (paths are limited to 107 bytes).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ssc-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self._host_ns = _mnt_ns(os.getpid())
        self._nodes: list[_Node] = []
        self._stopped = False
        try:
            if self._host_ns is None:
                raise RuntimeError("/proc/self/ns/mnt is not readable: the cluster could not find its processes")
            self._check_hidden()
            self._start(workers, cpus_per_worker, per_node, gpus, object_store_mb, timeout)
        except BaseException:
            self.stop()
            raise

    # -- start -------------------------------------------------------------------------------------
    def _check_hidden(self) -> None:
        keep = {"the checkout": ROOT, "the cluster's temp folder": self.temp_dir,
                "Python": Path(sys.prefix).resolve(), "Python's base": Path(sys.base_prefix).resolve(),
                "Ray": Path(_ray_dir())}
        for h in self.hidden:
            if not h.is_dir():
                raise ValueError(f"hidden folder {h} is not a folder (it must exist: tmpfs mounts over it)")
            for what, path in keep.items():
                if _within(path, h):
                    raise ValueError(f"hidden folder {h} holds {what} ({path}), which every node needs")

    def _start(self, workers, cpus, per_node, gpus, object_store_mb, timeout) -> None:
        gcs_port, dashboard_port, client_port = _free_ports(3)
        self.address = f"{HEAD_IP}:{gcs_port}"
        start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
                 "--object-store-memory", str(object_store_mb * 1024 * 1024),
                 # 52365 by default: a second node on the host (or a user's Ray) holds it. 0: the OS picks.
                 "--dashboard-agent-listen-port", "0",
                 # 10002-19999 by default, the same range for every raylet here: 0 is any free port.
                 "--min-worker-port", "0", "--max-worker-port", "0"]
        head = [*start, "--head", "--port", str(gcs_port), "--node-ip-address", HEAD_IP,
                "--num-cpus", "0", "--num-gpus", "0",
                "--include-dashboard", "false",  # the API server still runs: give it a free port, not 8265
                "--dashboard-host", HEAD_IP, "--dashboard-port", str(dashboard_port)]
        if _ray_client_installed():  # the head's Ray Client server: 10001 by default
            head += ["--ray-client-server-port", str(client_port)]
        self._add("head", HEAD_IP, head)
        for i in range(workers):
            ip = f"127.0.0.{3 + i}"
            self._add(f"worker{i}", ip, [*start, "--address", self.address, "--node-ip-address", ip,
                                         "--num-cpus", str(cpus), "--num-gpus", str(gpus),
                                         "--resources", json.dumps(per_node[i])])
        self._launch(self._nodes[0], hide=False)
        self._wait_gcs(gcs_port, timeout)  # a worker node's `ray start` gives up if the GCS isn't there
        for node in self._nodes[1:]:
            self._launch(node, hide=True)
        self._wait(self._nodes, timeout)

    def _add(self, name: str, ip: str, command: list[str]) -> None:
        temp = self.temp_dir / name
        temp.mkdir()
        self._nodes.append(_Node(name, ip, temp, [*command, "--temp-dir", str(temp)], self.temp_dir / f"{name}.log"))

    def _launch(self, node: _Node, hide: bool) -> None:
        mounts = [f"mount -t tmpfs -o mode=1777 tmpfs {shlex.quote(str(h))} && " for h in self.hidden] if hide else []
        script = "".join(mounts) + "exec " + shlex.join(node.command)
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
        # RAY_AUTH_MODE: a `ray start --head` turns token auth on where ~/.ray/auth_token exists (a local
        # ray.init() writes it), and then `ray start --address` and our GCS client need the token too.
        env.update(_HEALTH, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
        with open(node.log, "wb") as log:
            node.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                cwd=node.temp_dir,  # never a hidden folder: a cwd under it would still reach the driver's files
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, to kill
            )

    def _wait_gcs(self, port: int, timeout: float) -> None:
        head, deadline = self._nodes[0], time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((HEAD_IP, port), timeout=1).close()
                return
            except OSError:
                pass
            if head.proc.poll() is not None:
                raise RuntimeError(f"Ray head exited ({head.proc.returncode}) while starting\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Ray head's GCS not on {HEAD_IP}:{port} after {timeout:.0f} s\n{self.logs()}")
            time.sleep(0.1)

    def _wait(self, nodes: list[_Node], timeout: float) -> None:
        # Ray's own GCS client: no driver needed (ray.init stays the test's)
        from ray._raylet import GcsClient
        from ray.core.generated.gcs_pb2 import GcsNodeInfo

        deadline, client, last = time.monotonic() + timeout, None, ""
        want = {node.ip: node for node in nodes}
        while True:
            for node in nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError(
                        f"Ray node {node.name} exited ({node.proc.returncode}) while starting\n{self.logs()}")
            try:
                client = client or GcsClient(address=self.address)
                infos = client.get_all_node_info(timeout=2).values()
            except Exception as e:  # GCS not up yet
                last, client, infos = f"{type(e).__name__}: {e}", None, []
            alive = {i.node_manager_address: i for i in infos if i.state == GcsNodeInfo.GcsNodeState.ALIVE}
            if infos:
                last = f"alive: {sorted(alive)}"
            if want.keys() <= alive.keys():
                break
            if time.monotonic() > deadline:
                names = [n.name for n in nodes]
                raise TimeoutError(f"Ray nodes {names} not alive after {timeout:.0f} s ({last})\n{self.logs()}")
            time.sleep(0.25)
        for ip, node in want.items():
            node.node_id = alive[ip].node_id.hex()
            node.ns = node.ns or _own_ns(node.proc.pid, self._host_ns)  # alive: unshare is done
            if node.ns is None:
                raise RuntimeError(f"Ray node {node.name} is not in a mount namespace of its own")

    # -- use ---------------------------------------------------------------------------------------
    @property
    def head_node_id(self) -> str:
        return self._nodes[0].node_id

    @property
    def node_ids(self) -> list[str]:
        """The worker nodes' ids (hex), in order: kill_node(i) kills node_ids[i]."""
        return [node.node_id for node in self._nodes[1:]]

    @property
    def node_ips(self) -> list[str]:
        return [node.ip for node in self._nodes[1:]]

    @property
    def pgids(self) -> list[int]:
        """Each node's process group (its `ray start`'s pid), the head's first."""
        return [node.proc.pid for node in self._nodes if node.proc is not None]

    def pids(self, node: int | None = None) -> set[int]:
        """The running processes now of worker node `node`, or of the whole cluster (None)."""
        nodes = self._nodes if node is None else [self._nodes[1 + node]]
        return set().union(*(n.pids(self._host_ns) for n in nodes))

    def kill_node(self, i: int) -> None:
        """SIGKILL worker node i (its `ray start`, raylet and every worker process); returns once all are gone.
        The GCS marks it dead a few seconds later."""
        self._kill(self._nodes[1 + i])

    def _kill(self, node: _Node, timeout: float = 30.0) -> None:
        if node.proc is None or node.gone:
            return
        deadline = time.monotonic() + timeout
        while True:
            if node.proc.poll() is None:  # the group id is ours while its leader is not reaped
                try:
                    os.killpg(node.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            pids = node.pids(self._host_ns)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if node.proc.poll() is None:
                try:
                    node.proc.wait(0.05)
                except subprocess.TimeoutExpired:
                    pass
            if not pids and node.proc.poll() is not None:
                node.gone = True
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray node {node.name}: processes {sorted(pids)} survive SIGKILL")
            time.sleep(0.02)

    def logs(self, lines: int = 30) -> str:
        """The tail of each node's `ray start` output, raylet.out and every non-empty *.err log."""
        parts = []
        for node in self._nodes:
            logs = node.temp_dir / "session_latest" / "logs"
            files = [node.log, logs / "raylet.out", *sorted(logs.glob("*.err"))]
            for f in files:
                try:
                    text = f.read_text(errors="replace").splitlines()[-lines:]
                except OSError:
                    continue
                if text:
                    parts.append(f"--- {node.name}: {f.relative_to(self.temp_dir)}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Kill every process this cluster started (worker nodes first, then the head) and remove its
        temp folder. Idempotent. Disconnect the driver (ray.shutdown()) first."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for node in reversed(self._nodes):
                self._kill(node)
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _ray_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("ray")
    return os.path.dirname(spec.origin) if spec and spec.origin else "/nonexistent"


@contextlib.contextmanager
def connected(cluster: Cluster) -> Iterator[None]:
    """The calling process as the cluster's driver for the block (ray.init; ray.shutdown after, and the
    environment as it was: ray.init writes into it)."""
    import ray

    saved = dict(os.environ)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def cluster_for_module(tmp_path_factory: pytest.TempPathFactory, **kwargs) -> Iterator[Cluster]:
    """The body of a module-scoped `cluster` fixture: a Cluster(**kwargs) with every tmp_path (pytest's
    basetemp) hidden from the worker nodes; skips where mount namespaces can't be made.

        @pytest.fixture(scope="module")
        def cluster(tmp_path_factory):
            yield from cluster_for_module(tmp_path_factory)
    """
    skip_unless_unshare()
    with Cluster(hidden=[tmp_path_factory.getbasetemp()], **kwargs) as c:
        yield c
