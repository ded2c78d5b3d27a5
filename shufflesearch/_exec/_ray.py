"""Ray for the length of one library call, and the job pool that final evaluation and baselines share.

`ray_session(address)` joins a cluster or starts a quiet local Ray sized to this machine, and on exit
shuts down only what it started. Everything it changes for quiet output (Ray's and Tune's environment
switches, the `ray` loggers' levels) is restored on exit: the caller's process is not ours. A Ray the
caller already started is used as it is.

With `log`, what Ray itself would print on the user's terminal goes to that file instead, for the
block: its loggers' records (Tune's error tracebacks), the raylet's messages to the driver ("(raylet) A
worker died ...") and, for a Ray started here, the workers' own output. The console keeps to our lines.

`run_jobs` runs plain functions as Ray tasks (no Tune: they report once, at the end), at most as many
at a time as the cluster's CPUs allow, and hands each result to a callback in completion order, so the
caller records it at once (resumable) and prints one line per job as a search does per trial
(`_progress.Progress`). A job whose worker or node dies is retried (`_retries`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from shufflesearch._exec._devices import check_cluster_gpus, check_gpus_here, cluster_address, ray_resources
from shufflesearch._exec._retries import DEFAULT_MAX_RETRIES, failure_reason, lost_error
from shufflesearch.errors import ShuffleSearchError

# Ray's and Tune's own console output off: the library prints one line per finished trial or job
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"}
_QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Ray's quiet settings for a block; the environment and logger levels as they were afterwards (the
    whole environment: `ray.init` writes into it too, e.g. RAY_AUTH_MODE and PYTHONBREAKPOINT)."""
    saved_env = dict(os.environ)
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for k, v in _QUIET_ENV.items():
        os.environ.setdefault(k, v)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for k in os.environ.keys() - saved_env.keys():
            del os.environ[k]
        for k, v in saved_env.items():
            if os.environ.get(k) != v:
                os.environ[k] = v
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Ray's console output appended to `log` for the block; Ray's loggers and printers as they were after.

    Ray prints the raylet's messages with `ray._private.worker.print_to_stdstream` and workers' output
    through `global_worker_stdstream_dispatcher`; neither has a public switch, so both are redirected
    here by name, and left alone on a Ray that lacks them.
    """
    import ray._private.worker as ray_worker

    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as stream:
        stream.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} a Ray session of shufflesearch (pid {os.getpid()})\n")

        def write(data: dict[str, Any], ignore_prefix: bool = False) -> None:
            if data.get("pid") == "autoscaler":  # its periodic status report, which Ray hides too
                return
            for line in data.get("lines", []):
                stream.write(f"({data.get('pid', 'ray')}) {line}\n")

        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        loggers = [logging.getLogger(name) for name in sorted(logging.root.manager.loggerDict)
                   if name == "ray" or name.startswith("ray.")]
        saved = [(lg, lg.handlers[:], lg.level) for lg in loggers]
        for lg in loggers:
            lg.handlers = [handler] if lg.name == "ray" or not lg.propagate else []
            lg.setLevel(logging.WARNING)
        printer = getattr(ray_worker, "print_to_stdstream", None)
        dispatcher = getattr(ray_worker, "global_worker_stdstream_dispatcher", None)
        if printer:
            ray_worker.print_to_stdstream = write
        if dispatcher:
            dispatcher.add_handler("shufflesearch_log", write)
        try:
            yield
        finally:
            if dispatcher:
                dispatcher.remove_handler("shufflesearch_log")
            if printer:
                ray_worker.print_to_stdstream = printer
            for lg, handlers, level in saved:
                lg.handlers, lg.level = handlers, level


def local_cpus() -> int:
    """The CPUs a local Ray may use here: Ray's own count (which reads a container's cgroup CPU quota),
    and no more than this process may run on (its CPU affinity: `taskset`, a pinned container), which
    Ray's count does not see."""
    from ray._private.utils import get_num_cpus  # Ray's detection, which ray.init uses when given none

    return max(1, min(int(get_num_cpus()), len(os.sched_getaffinity(0))))


@contextlib.contextmanager
def ray_session(address: str | None = None, log: Path | None = None) -> Iterator[None]:
    """A quiet Ray for the block: the running one, the cluster at `address` (else at $RAY_ADDRESS), or a
    new local one of `local_cpus()` CPUs; with `log`, Ray's console output goes to that file."""
    import ray

    given = "--address" if address else "$RAY_ADDRESS"
    address = cluster_address(address)
    with _quiet(), (_output_to(log) if log else contextlib.nullcontext()):
        if ray.is_initialized():
            yield
            return
        try:
            # workers' output reaches the driver only to be written to `log`
            ray.init(address=address or "local", num_cpus=None if address else local_cpus(),
                     include_dashboard=False, log_to_driver=log is not None, logging_level=logging.ERROR)
        except ConnectionError as e:
            raise ShuffleSearchError(f"{given} {address}: cannot connect to a Ray cluster ({e})") from None
        if log:  # ray.init installs its own printer of workers' output: that one goes
            _drop_console_printer()
        try:
            yield
        finally:
            ray.shutdown()


def _drop_console_printer() -> None:
    """Remove the handler `ray.init(log_to_driver=True)` adds to print workers' output on the console."""
    import ray._private.worker as ray_worker

    dispatcher = getattr(ray_worker, "global_worker_stdstream_dispatcher", None)
    if dispatcher is not None:
        dispatcher.remove_handler("ray_print_logs")


def concurrency(cpus_per_job: int, gpus_per_job: float = 0.0) -> int:
    """How many jobs of `cpus_per_job` CPUs and `gpus_per_job` GPUs the running Ray fits at once (at least one)."""
    import ray

    resources = ray.cluster_resources()
    fits = int(resources.get("CPU", 1)) // cpus_per_job
    if gpus_per_job > 0:
        fits = min(fits, int(resources.get("GPU", 0.0) / gpus_per_job + 1e-9))
    return max(1, fits)


def run_jobs(fn: Callable[..., dict[str, Any]], jobs: Sequence[dict[str, Any]], *, cpus_per_job: int,
             on_result: Callable[[dict[str, Any], dict[str, Any]], None], shared: dict[str, Any] | None = None,
             address: str | None = None, gpus_per_job: float = 0.0, max_retries: int = DEFAULT_MAX_RETRIES,
             on_retry: Callable[[dict[str, Any], int, str], None] | None = None, log: Path | None = None) -> None:
    """Run `fn(**job, **shared)` for every job as a Ray task of `cpus_per_job` CPUs and `gpus_per_job` GPUs
    (a fraction shares one), in a `ray_session(address, log)`.

    `shared` values (e.g. the dataset) go to the object store once, not once per job. `on_result(job,
    result)` is called in the driver as each task finishes, with `fn`'s result dict plus `attempts` and
    `faults` (why each lost attempt ended). `fn` itself must catch what training can raise and return
    it as a result: a job whose worker or node dies (Ray's error, not `fn`'s) is started again, up to
    `max_retries` times, telling `on_retry(job, attempt, reason)`; after that its result is
    `{"status": "failed", "epoch": 0, "error": ...}`.
    """
    import ray
    from ray.exceptions import RayError, RayTaskError

    check_gpus_here(gpus_per_job, address)
    with ray_session(address, log):
        check_cluster_gpus(gpus_per_job)
        resources = ray_resources(cpus_per_job, gpus_per_job)
        task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"], max_retries=0)(fn)
        refs = {k: ray.put(v) for k, v in (shared or {}).items()}
        queue, running = list(range(len(jobs))), {}
        faults: dict[int, list[str]] = {i: [] for i in queue}
        limit = concurrency(cpus_per_job, gpus_per_job)
        while queue or running:
            while queue and len(running) < limit:
                i = queue.pop(0)
                running[task.remote(**jobs[i], **refs)] = i
            done, _ = ray.wait(list(running), num_returns=1)
            i = running.pop(done[0])
            try:
                result, attempts = ray.get(done[0]), len(faults[i]) + 1
            except RayTaskError:
                raise  # `fn` itself raised: a bug, not a fault of the infrastructure
            except RayError as e:
                faults[i].append(failure_reason(f"{type(e).__name__}: {e}"))  # e.g. NodeDiedError
                if len(faults[i]) <= max_retries:
                    if on_retry:
                        on_retry(jobs[i], len(faults[i]), faults[i][-1])
                    queue.insert(0, i)
                    continue
                result, attempts = {"status": "failed", "epoch": 0, "error": lost_error(faults[i], log)}, len(faults[i])
            on_result(jobs[i], {**result, "attempts": attempts, "faults": faults[i]})
