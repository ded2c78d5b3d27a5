"""Retrying what the infrastructure broke: a trial or job whose Ray worker or node died starts again.

A trial's or job's own exception never reaches Ray: the one trial body every trial and job runs
(`train._trial.run_trial_body`: reading the genome, latency, training or scoring, weights) catches it
and returns it as a "failed" result, which is recorded and never retried. So every error
Ray reports for a trial or a task is a fault of the infrastructure (a worker killed, by the kernel's
or Ray's OOM killer, by `kill -9` or a preempted node; a node lost), and those are retried from the
start, up to `max_retries` times. Records say how many attempts a trial took (`attempts`) and why
the earlier ones ended (`faults`); the Optuna study sees one trial, told once.

Ray tasks (`_ray.run_jobs`: final evaluation, baselines) are retried there; Tune trials by Tune
(`FailureConfig`), with `_study_searcher.TrialRetries` telling of each retry.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_MAX_RETRIES = 2


def failure_reason(error: str) -> str:
    """What Ray's error text says ended an attempt, in a few words: "out of memory on node 10.0.0.5",
    "node died", "worker died", or the last line of the error.

    A node that dies (its raylet and workers killed, the machine lost) reaches us as a task's
    `NodeDiedError` ("the node it was running on is dead"), an actor's `ActorDiedError` whose cause is
    its node's death, or, for a Tune trial's actor (never restarted by Ray), as `ActorUnavailableError`
    ("The actor is temporarily unavailable"): Ray raises that when the actor's process cannot be reached
    and no death has been reported for it, which is what a lost node looks like in the second after (a
    worker process that dies on a live node is reported by its raylet at once: `ActorDiedError`, "worker
    died"). All three are "node died".
    """
    if re.search(r"low on memory|OutOfMemoryError|NODE_OUT_OF_MEMORY|killed due to memory", error):
        node = re.search(r"\bIP: ([0-9a-fA-F.:]+[0-9a-fA-F])", error) or re.search(r"\bip: (\S+)", error)
        return f"out of memory on node {node.group(1)}" if node else "out of memory"
    if re.search(r"NodeDiedError|\bnode (?:\S+ )?(?:has )?died|node it was running on is dead|preempted|"
                 r"ActorUnavailableError|actor is temporarily unavailable", error,
                 re.IGNORECASE):
        return "node died"
    if re.search(r"ActorDiedError|WorkerCrashedError|worker (?:process )?(?:has )?died|actor died", error,
                 re.IGNORECASE):
        return "worker died"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "unknown error"


def retry_line(name: str, attempt: int, max_retries: int, reason: str, log: Path | None) -> str:
    """The progress line of a trial or job that Ray lost and that starts again."""
    return f"        {name}  retry {attempt}/{max_retries} ({reason}){_where(log)}"


def attempts_note(row: dict) -> str:
    """What a progress line adds for a trial or job that took more than one attempt."""
    return f"  ({row['attempts']} attempts)" if row.get("attempts", 1) > 1 else ""


def lost_error(faults: list[str], log: Path | None) -> str:
    """The recorded error of a trial or job that Ray lost in every attempt."""
    return f"{faults[-1]} in each of {len(faults)} attempts{_where(log)}"


def _where(log: Path | None) -> str:
    return f"; Ray's messages: {log}" if log else ""
