"""A Ray Tune `Searcher` that asks an Optuna study for architectures and tells it what became of them.

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
"""

from __future__ import annotations

from typing import Any, Callable

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from .arch import Arch
from .errors import ShuffleSearchError
from .objectives import OBJECTIVES

MAX_REJECTIONS = 1000
MAX_REPEATS = 20


class StudySearcher(Searcher):
    """Suggest `{"arch": genome dict, "number": optuna trial number}`; record each trial on completion.

    `sample(trial) -> Arch` is the space's define-by-run function. `finish(number, arch, result, status)`
    turns the last reported Tune result into a record row and returns it; the searcher then tells the
    study the row's objective values. `rows` are the run's records so far: an architecture the sampler
    proposes again is told its recorded outcome instead of being trained again (up to
    `MAX_REPEATS` proposals in a row, after which a space the sampler has exhausted trains repeats).
    """

    def __init__(self, study: optuna.Study, sample: Callable[[optuna.Trial], Arch | None],
                 objectives: list[str], finish: Callable[..., dict[str, Any]], rows: list[dict[str, Any]]):
        super().__init__(metric="search_acc", mode="max")
        self.study = study
        self.sample = sample
        self.objectives = objectives
        self.finish = finish
        self._recorded = {r["arch_hash"]: r for r in rows}
        self._live: dict[str, tuple[optuna.Trial, Arch]] = {}

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
                self._live[trial_id] = (trial, arch)
                return {"arch": arch.to_dict(), "number": trial.number}
        raise ShuffleSearchError(f"the search space rejected {MAX_REJECTIONS} samples in a row as over "
                                 "budget; raise the budget or narrow the space's choices")

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        trial, _ = self._live[trial_id]
        if len(self.objectives) == 1 and result.get("status") == "running":
            trial.report(result["search_acc"], step=result["epoch"])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        trial, arch = self._live.pop(trial_id)
        if error or not result:
            status = "failed"
        elif result["status"] == "running":  # no final report: the scheduler stopped it
            status = "early_stopped"
        else:
            status = result["status"]
        row = self.finish(trial.number, arch, result or {}, status)
        self._recorded.setdefault(arch.hash, row)
        tell(self.study, trial, row, self.objectives)


def tell(study: optuna.Study, trial: optuna.Trial | int, row: dict[str, Any], objectives: list[str]) -> None:
    """Tell the study the outcome recorded in `row` (user attributes only when `trial` is live)."""
    if isinstance(trial, optuna.Trial):
        trial.set_user_attr("status", row["status"])
        trial.set_user_attr("epochs", row["epochs"])
        if row.get("error"):
            trial.set_user_attr("error", row["error"][:500])
    if row["status"] == "complete":
        study.tell(trial, [row[OBJECTIVES[o].field] for o in objectives])
    elif row["status"] == "early_stopped":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
