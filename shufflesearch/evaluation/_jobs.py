"""What the baselines and the final evaluation share: retraining jobs under a finished run's protocol.

Both train architectures from scratch as Ray tasks, each job the one trial body with proxy training
(`driver._jobs.train_job`); both take the run's own settings for the options left out (`from_run`);
both run them in a `driver._jobs.JobPool` (the search's re-ranking runs its jobs in one too), which
records each job's row as it finishes through a `RecordLog` and prints one line per job and per retry.
They differ in which architectures they train, on which split they score, and the rows they keep: that
stays in `_baselines` and `_final`.
"""

from __future__ import annotations

from typing import Any, Mapping

from shufflesearch._exec._retries import DEFAULT_MAX_RETRIES
from shufflesearch.driver._jobs import JobPool, train_job

__all__ = ["RUN_DEFAULTS", "JobPool", "from_run", "train_job"]

# what a run that did not record a setting ran with
RUN_DEFAULTS = {"cpus_per_trial": 1, "gpus_per_trial": 0.0, "max_retries": DEFAULT_MAX_RETRIES}


def from_run(config: Mapping[str, Any], name: str, given: Any) -> Any:
    """The option `name` as `given`, or where it was left out (None) the run's value (its config.json)."""
    return config.get(name, RUN_DEFAULTS[name]) if given is None else given
