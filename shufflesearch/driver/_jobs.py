"""Retraining jobs as Ray tasks: the one trial body with proxy training (`train_job`), run keyed, recorded
as each finishes and retried when Ray loses its worker (`JobPool`).

A search's re-ranking (`_rerank`), the zoo baselines and the final evaluation all run their jobs in a
`JobPool`; it lives here, below `evaluation`, so that the search's own re-ranking stage can use it too.
They differ in which architectures they train, on which split they score, and the rows they keep.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, TypeVar

from shufflesearch._exec._progress import Progress
from shufflesearch._exec._ray import run_jobs
from shufflesearch._io import write_bytes_atomic
from shufflesearch.data._data import ProxyData
from shufflesearch.runs._records import RecordLog
from shufflesearch.space._configs import TrainConfig

K = TypeVar("K", bound=Hashable)


def train_job(arch: dict[str, Any], seed: int, data: ProxyData, train_cfg: TrainConfig,
              keep_weights: bool = False, latency_size: int | None = None) -> dict[str, Any]:
    """A Ray task's body: train the genome `arch` with `seed`, score it on `data`'s scored split, return
    its weights when complete and `keep_weights`, measure its latency at `latency_size` when given.

    Returns the trial body's last report (`train._trial.run_trial_body`), with a complete job's
    `weights` (safetensors bytes) when asked: the task writes nothing, its node may not share the
    driver's disk. An error of the architecture is its "failed" report, never an exception, so Ray
    retries only what Ray lost.
    """
    from shufflesearch.train._trial import proxy_training, run_trial_body

    cfg = replace(train_cfg, seed=seed)
    return run_trial_body(arch, proxy_training(data, cfg), cfg, latency_size=latency_size, keep_weights=keep_weights)


@dataclass(frozen=True)
class JobPool:
    """How a command's retraining jobs run through Ray: each job `train_job` on `data` with `train_cfg`,
    `cpus` CPUs and `gpus` GPUs (a fraction shares one), started again up to `retries` times when its
    worker or node dies; on the cluster at `address` (None: a local Ray), Ray's messages to `ray_log`."""

    data: ProxyData
    train_cfg: TrainConfig
    cpus: int
    gpus: float
    retries: int
    address: str | None
    ray_log: Path

    def run(self, jobs: Mapping[K, dict[str, Any]], row: Callable[[K, dict[str, Any]], dict[str, Any]],
            log: RecordLog, printer: Progress, label: Callable[[K], str] = str) -> None:
        """Run `jobs` (each `train_job`'s keyword arguments, under a key naming the job: a model, or a
        candidate and seed); record each as `row(key, report)` in `log` as it finishes; tell of each retry
        under `label(key)`. Jobs are told apart by their keys, never by their genomes: two names for one
        genome are two jobs with a row each. A job's `weights_path`, if it has one, is the driver's: the
        task returns a complete job's weights and the driver writes them there before recording its row."""
        tasks = {key: _task(job) for key, job in jobs.items()}
        key_of = {id(task): key for key, task in tasks.items()}  # run_jobs hands back the task's own dict

        def done(task: dict[str, Any], report: dict[str, Any]) -> None:
            key = key_of[id(task)]
            log.add(row(key, _write_weights(jobs[key], report)))

        run_jobs(train_job, list(tasks.values()), cpus_per_job=self.cpus, on_result=done,
                 shared={"data": self.data, "train_cfg": self.train_cfg}, address=self.address,
                 gpus_per_job=self.gpus, max_retries=self.retries, log=self.ray_log,
                 on_retry=lambda job, attempt, reason: printer.retry(label(key_of[id(job)]), attempt, self.retries,
                                                                     reason, self.ray_log))


def _task(job: Mapping[str, Any]) -> dict[str, Any]:
    """`train_job`'s keyword arguments for `job`: its driver-side `weights_path` becomes `keep_weights`."""
    task = {k: v for k, v in job.items() if k != "weights_path"}
    return {**task, "keep_weights": True} if job.get("weights_path") else task


def _write_weights(job: Mapping[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """`report` without the weights it carries, which are written to `job`'s `weights_path` (here, in the
    driver: the task's node may not share this disk)."""
    weights = report.pop("weights", None)
    if weights is not None and job.get("weights_path"):
        write_bytes_atomic(job["weights_path"], weights)
    return report
