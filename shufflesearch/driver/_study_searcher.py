"""A Ray Tune `Searcher` that asks an Optuna study for architectures and tells it what became of them
(a proxy search's Tune runs it; the supernet evaluator's actor pool calls it directly, `_supernet_search`).

Written instead of `ray.tune.search.optuna.OptunaSearch`, whose behaviour does not fit a budgeted
architecture search (Ray 2.60 / Optuna 5.0): it fixes the pruner, tells Optuna a trial that ASHA
stopped as COMPLETE with its partial score (so the sampler compares a 1-epoch score with full ones),
leaves a NaN-valued trial RUNNING for ever, and aborts the run if the define-by-run function raises
`TrialPruned`. Here:

* a trial trained for every planned epoch is told COMPLETE with its objective values;
* a trial the scheduler stopped early is told PRUNED, with its per-epoch accuracy as intermediate
  values (single objective), which Optuna's samplers rank below every complete trial;
* a trial that raised or diverged is told FAIL, with the reason as a user attribute;
* an architecture the sampler proposes again is told its recorded outcome, not trained twice;
* a structure the space's sampler cannot fit into the budget is told PRUNED (its `budget`
  constraint set) and another is asked for, so no over-budget model ever reaches Tune.

Two Tune callbacks of the driver live here too: `TrialRetries` (below) and `TrialWeights`, which writes
each complete trial's weights into the run folder. A trial runs in a Ray worker that may be on a machine
that does not share the driver's disk, so it writes nothing: its weights (0.1-2 MB of safetensors bytes)
come back in its last `tune.report`, the way every result travels (the actor's return value), and the
driver writes them. Chosen over an actor holding the bytes until the driver takes them, or object refs
the driver would have to own and collect, because it needs only Tune's public `Callback` and Tune's
order of handling a result (Ray 2.60: `TuneController._process_trial_result`, `Callback.on_trial_result`):

* the scheduler and the searcher see a result first ("the search algorithm and scheduler are notified
  before this hook is called", the callback's documentation), each as a flattened shallow copy; none of
  ours keeps it;
* then every callback is handed the very dict that Tune stores next as the trial's `last_result`
  (`trial.update_last_result(result)`, after "NOTE: Allow user callbacks to modify the Trial result in
  place"), and Tune's own callbacks (loggers, progress reporters) come after the user's
  (`_create_default_callbacks` appends them). `TrialWeights`, first in the list, pops the bytes: they
  never reach Tune's loggers, its `last_result` or the experiment state it writes to `tune/`
  (`Trial.get_json_state` serialises `run_metadata.last_result`), so Tune's state is not bloated;
* the searcher records a trial in `on_trial_complete`, after the result that completed it has been
  through the callbacks (the function's return arrives as a `RESULT_DUPLICATE` result, or `stop_trial`
  follows a STOP decision): the weights file is on disk before the trial's row, as when the worker
  wrote it. A trial retried after its last report reports again, and its file is written again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import Searcher

from shufflesearch._exec._retries import failure_reason, retry_line
from shufflesearch._io import write_bytes_atomic
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.space._objectives import OBJECTIVES

MAX_REJECTIONS = 1000
MAX_REPEATS = 20


class StudySearcher(Searcher):
    """Suggest `{"arch": genome dict, "number": optuna trial number}`; record each trial on completion.

    `sample(trial) -> Arch` is the space's define-by-run function. `finish(number, arch, result, status)`
    turns the last reported Tune result into a record row and returns it; the searcher then tells the
    study the row's objective values. `rows` are the run's records so far: an architecture the sampler
    proposes again is told its recorded outcome instead of being trained again (up to
    `MAX_REPEATS` proposals in a row, after which a space the sampler has exhausted trains repeats).
    `sync()` makes what the study was told durable: it is called before trials are recorded, so that a
    record's trial is always in the study's storage (a `RunJournal`'s `flush`; storages that write at once
    need none).
    """

    def __init__(self, study: optuna.Study, sample: Callable[[optuna.Trial], Arch | None],
                 objectives: list[str], finish: Callable[..., dict[str, Any]], rows: list[dict[str, Any]],
                 sync: Callable[[], None] = lambda: None):
        super().__init__(metric="search_acc", mode="max")
        self.study = study
        self.sync = sync
        self.sample = sample
        self.objectives = objectives
        self.finish = finish
        self._recorded = {r["arch_hash"]: r for r in rows}
        self._live: dict[str, tuple[optuna.Trial | int, Arch]] = {}  # a live trial, or an added one's number
        self._trials: int | None = None  # the study's trials, counted once `add` is first called
        self._reported: dict[str, int] = {}  # the last epoch reported to the study, per live trial

    def __getstate__(self) -> dict[str, Any]:
        """What Tune's `tuner.pkl` keeps (it pickles the search algorithm for `Tuner.restore`): not the
        live study or its running trials, whose sampler need not pickle (Optuna 5.1's NSGA-II holds a
        `threading.Lock`), nor the driver's callbacks. A search resumes from its own journal and records (`search(resume=)`),
        never through `Tuner.restore`, so an unpickled searcher is never asked for a trial."""
        return {k: v for k, v in self.__dict__.items() if k not in ("study", "sample", "finish", "sync", "_live")}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        repeats = 0
        for _ in range(MAX_REJECTIONS):
            trial = self.study.ask()
            arch = self.sample(trial)
            if arch is None:
                # no width fits this structure into the budget: the sampler has set the trial's
                # constraint; PRUNED lets constrained samplers learn from it without a fake score
                self.study.tell(trial, state=TrialState.PRUNED)
            elif arch.hash in self._recorded and repeats < MAX_REPEATS:
                repeats += 1
                trial.set_user_attr("repeat_of", self._recorded[arch.hash]["number"])
                tell(self.study, trial, self._recorded[arch.hash], self.objectives)
            else:
                return self._start(trial_id, trial, arch)
        raise ShuffleSearchError(f"the search space rejected {MAX_REJECTIONS} samples in a row as over "
                                 "budget; raise the budget or narrow the space's choices")

    def recorded(self) -> list[dict[str, Any]]:
        """The run's records so far, the first of each genome's."""
        return list(self._recorded.values())

    def add(self, trial_id: str, drawn: optuna.trial.FrozenTrial, arch: Arch) -> dict[str, Any]:
        """Like `suggest`, for a candidate drawn outside the study (`driver._evolution`): `drawn`'s parameters,
        distributions and attributes become a RUNNING trial of the study (`Study.add_trial`), which does
        not read the study's other trials as `Study.ask` does. Its number is counted here: one driver a run."""
        if self._trials is None:
            self._trials = len(self.study.get_trials(deepcopy=False))
        self.study.add_trial(optuna.trial.create_trial(
            state=TrialState.RUNNING, params=drawn.params, distributions=drawn.distributions,
            user_attrs=drawn.user_attrs, system_attrs=drawn.system_attrs))
        self._trials += 1
        return self._start(trial_id, self._trials - 1, arch)

    def _start(self, trial_id: str, trial: optuna.Trial | int, arch: Arch) -> dict[str, Any]:
        self._live[trial_id] = (trial, arch)
        return {"arch": arch.to_dict(), "number": trial if isinstance(trial, int) else trial.number}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial, _ = self._live[trial_id]
        # a retried trial (its worker died) reports its first epochs again: the study keeps the first
        if len(self.objectives) == 1 and result.get("status") == "running" and \
                result["epoch"] > self._reported.get(trial_id, 0):
            trial.report(result["search_acc"], step=result["epoch"])
            self._reported[trial_id] = result["epoch"]

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        self.complete([(trial_id, result, error)])

    def complete(self, finished: list[tuple[str, dict[str, Any] | None, bool]],
                 flush: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
        """Record each (trial_id, last result, error) with `finish`, call `flush` (which writes the
        records when `finish` does not), then tell the study: a record is never behind the study.
        Returns the rows recorded."""
        told = []
        self.sync()
        for trial_id, result, error in finished:
            trial, arch = self._live.pop(trial_id)
            self._reported.pop(trial_id, None)
            if error or not result:
                status = "failed"
            elif result["status"] == "running":  # no final report: the scheduler stopped it
                status = "early_stopped"
            else:
                status = result["status"]
            row = self.finish(trial if isinstance(trial, int) else trial.number, arch, result or {}, status)
            self._recorded.setdefault(arch.hash, row)
            told.append((trial, row))
        flush()
        for trial, row in told:
            tell(self.study, trial, row, self.objectives)
        return [row for _, row in told]


def tell(study: optuna.Study, trial: optuna.Trial | int, row: dict[str, Any], objectives: list[str]) -> None:
    """Tell the study the outcome recorded in `row` (user attributes only when `trial` is live)."""
    if isinstance(trial, optuna.Trial):
        trial.set_user_attr("status", row["status"])
        trial.set_user_attr("epochs", row["epochs"])
        if row.get("error"):
            trial.set_user_attr("error", row["error"][:500])
    if row["status"] == "complete":
        study.tell(trial, row_values(row, objectives))
    elif row["status"] == "early_stopped":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def row_values(row: dict[str, Any], objectives: list[str]) -> list[float]:
    """A record's objective values, in the study's order."""
    return [row[OBJECTIVES[o].field] for o in objectives]


class TrialRetries(Callback):
    """A Tune callback that tells of each retried trial and remembers why its attempts ended.

    Tune restarts a trial whose actor died (`FailureConfig(max_failures=max_retries)`) without telling
    the searcher; this callback prints `retry_line` then, and `faults(number)` gives the recorder the
    reasons of every attempt Ray lost, the last one included when the trial failed for good.
    """

    def __init__(self, max_retries: int, emit: Callable[[str], None], log: Path | None = None):
        self.max_retries, self.emit, self.log = max_retries, emit, log
        self._trials: dict[int, Any] = {}
        self._faults: dict[int, list[str]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What Tune's `tuner.pkl` keeps of it (never read back: see `StudySearcher.__getstate__`): not
        the live trials, nor `emit`, the driver's printer, which need not pickle: `print` pickles only
        while `builtins.print` is still Python's own, and Ray's distributed tqdm replaces it in a process
        that has shown a Ray worker's output with Ray's printer (`ray.experimental.tqdm_ray.instance`)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("emit", "_trials")}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trials[trial.config["number"]] = trial

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = trial.config["number"]
        reasons = self._faults.setdefault(number, [])
        reasons.append(_last_failure(trial))
        self.emit(retry_line(f"trial {number:>3}", len(reasons), self.max_retries, reasons[-1], self.log))

    def faults(self, number: int, failed: bool) -> list[str]:
        """Why each of trial `number`'s lost attempts ended; with `failed`, its last attempt's too."""
        reasons = list(self._faults.get(number, []))
        if failed and number in self._trials:
            reasons.append(_last_failure(self._trials[number]))
        return reasons


class TrialWeights(Callback):
    """A Tune callback that writes the weights a complete trial's last report carries (`weights`,
    safetensors bytes) to `<folder>/trial_<number>.safetensors`, and takes them out of the result (see
    the module docstring), so that only the driver writes into the run folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        weights = result.pop("weights", None)
        if weights is not None:
            write_bytes_atomic(self.folder / f"trial_{trial.config['number']}.safetensors", weights)


_FAILURE_HEADER = re.compile(r"^Failure # \d+ \(occurred at [^)]*\)$", re.MULTILINE)


def _last_failure(trial: Any) -> str:
    """The reason of a Tune trial's latest failure, from the error file Tune keeps in its folder."""
    path = trial.error_file
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    blocks = _FAILURE_HEADER.split(text)
    return failure_reason(blocks[-1]) if text else "worker died"
