"""Ray for the length of one library call, and the job pool that final evaluation and baselines share.

`ray_session(address)` joins a cluster or starts a quiet local Ray sized to this machine, and on exit
shuts down only what it started. Everything it changes for quiet output (Ray's and Tune's environment
switches, the `ray` loggers' levels) is restored on exit: the caller's process is not ours. A Ray the
caller already started is used as it is.

`run_jobs` runs plain functions as Ray tasks (no Tune: they report once, at the end), at most as many
at a time as the cluster's CPUs allow, and hands each result to a callback in completion order, so the
caller records it at once (resumable) and prints one line per job as a search does per trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, Callable, Iterator, Sequence

from .errors import ShuffleSearchError

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
def ray_session(address: str | None = None) -> Iterator[None]:
    """A quiet Ray for the block: the running one, the cluster at `address`, or a new local one."""
    import ray

    with _quiet():
        if ray.is_initialized():
            yield
            return
        try:
            ray.init(address=address or "local", num_cpus=None if address else os.cpu_count(),
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        except ConnectionError as e:
            raise ShuffleSearchError(f"--address {address}: cannot connect to a Ray cluster ({e})") from None
        try:
            yield
        finally:
            ray.shutdown()


def concurrency(cpus_per_job: int) -> int:
    """How many jobs of `cpus_per_job` CPUs the running Ray fits at once (at least one)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_job)


def run_jobs(fn: Callable[..., Any], jobs: Sequence[dict[str, Any]], *, cpus_per_job: int,
             on_result: Callable[[dict[str, Any], Any], None], shared: dict[str, Any] | None = None,
             address: str | None = None) -> None:
    """Run `fn(**job, **shared)` for every job as a Ray task of `cpus_per_job` CPUs, in a `ray_session(address)`.

    `shared` values (e.g. the dataset) go to the object store once, not once per job. `on_result(job,
    result)` is called in the driver as each task finishes. A task whose worker dies raises Ray's error
    here; `fn` itself should catch what training can raise and return it as a result.
    """
    import ray

    with ray_session(address):
        task = ray.remote(num_cpus=cpus_per_job)(fn)
        refs = {k: ray.put(v) for k, v in (shared or {}).items()}
        queue, running = list(jobs), {}
        limit = concurrency(cpus_per_job)
        while queue or running:
            while queue and len(running) < limit:
                job = queue.pop(0)
                running[task.remote(**job, **refs)] = job
            done, _ = ray.wait(list(running), num_returns=1)
            job = running.pop(done[0])
            on_result(job, ray.get(done[0]))


class JobProgress:
    """One line per finished job, as the search prints one per trial: count, name, cost, accuracy, ETA."""

    def __init__(self, total: int, emit: Callable[[str], None] | None, done_before: int = 0):
        self.total, self.done, self.emit = total, done_before, emit or (lambda line: None)
        self.done_before, self.started = done_before, time.monotonic()

    def __call__(self, name: str, row: dict[str, Any], acc_key: str) -> None:
        self.done += 1
        left = self.total - self.done
        eta = (time.monotonic() - self.started) / (self.done - self.done_before) * left
        acc = "-" if row.get(acc_key) is None else f"{row[acc_key]:.4f}"
        seed = f" seed {row['seed']}" if "seed" in row else ""
        self.emit(f"[{self.done:>3}/{self.total}] {name:<26}{seed}  {row['mflops']:7.2f} MFLOPs  "
                  f"{acc_key.replace('_', ' ')} {acc}  {row['epochs']}/{row['max_epochs']} ep  {row['status']:<9} "
                  f"{left} left, ETA {eta:.0f}s" + (f"  {row['error']}" if row.get("error") else ""))
