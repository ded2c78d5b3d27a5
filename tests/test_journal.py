"""`RunJournal`: a run's Optuna journal written at `flush()`, in Optuna's format, and whole again after
a kill -9 cut its last write short; a searcher makes it durable before it records a trial."""

from __future__ import annotations

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from test_study_searcher import ARCH, OTHER, recorded

from shufflesearch.driver._journal import RunJournal


def _ask_and_tell(study: optuna.Study, n: int) -> None:
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0, 1) + trial.suggest_categorical("c", [1, 2]))


def _read_by_optuna(path) -> list[optuna.trial.FrozenTrial]:
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name="run", storage=storage).trials


def test_operations_reach_the_file_at_flush_and_read_as_optunas_own_journal(tmp_path):
    path = tmp_path / "optuna.journal"
    journal = RunJournal(str(path))
    study = optuna.create_study(study_name="run", storage=JournalStorage(journal))
    _ask_and_tell(study, 3)
    assert path.read_bytes() == b"" and len(study.trials) == 3  # the study reads what the file has not yet
    journal.flush()
    assert [(t.params, t.value) for t in _read_by_optuna(path)] == [(t.params, t.value) for t in study.trials]
    _ask_and_tell(study, 2)  # after a flush the study goes on from the file's logs and the held ones
    assert len(study.trials) == 5 and len(_read_by_optuna(path)) == 3
    journal.flush()
    journal.flush()  # nothing held: nothing written
    assert [t.params for t in _read_by_optuna(path)] == [t.params for t in study.trials]

    reopened = optuna.load_study(study_name="run", storage=JournalStorage(RunJournal(str(path))))
    assert [(t.params, t.value, t.state) for t in reopened.trials] == [(t.params, t.value, t.state) for t in study.trials]


def test_a_last_line_a_kill_9_cut_short_is_dropped_so_the_journal_can_grow_again(tmp_path):
    path = tmp_path / "optuna.journal"
    journal = RunJournal(str(path))
    _ask_and_tell(optuna.create_study(study_name="run", storage=JournalStorage(journal)), 2)
    journal.flush()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 4, "worker_id": "x", "trial_')  # the write a kill -9 cut short

    journal = RunJournal(str(path))
    assert path.read_bytes() == whole
    study = optuna.load_study(study_name="run", storage=JournalStorage(journal))
    _ask_and_tell(study, 1)
    journal.flush()
    assert [t.state for t in _read_by_optuna(path)] == [TrialState.COMPLETE] * 3


def test_a_searcher_syncs_the_study_before_it_records_a_trial():
    from shufflesearch.driver._study_searcher import StudySearcher

    events = []

    def finish(number, arch, result, status):
        events.append("record")
        return recorded(arch, number, status, result["search_acc"])

    study = optuna.create_study(directions=["maximize", "minimize"])
    proposals = iter([ARCH, OTHER])
    s = StudySearcher(study, lambda trial: next(proposals), ["acc", "mflops"], finish, [],
                      sync=lambda: events.append("sync"))
    s.suggest("a"), s.suggest("b")
    s.complete([("a", {"status": "complete", "epoch": 2, "search_acc": 0.5}, False),
                ("b", {"status": "complete", "epoch": 2, "search_acc": 0.6}, False)])
    assert events == ["sync", "record", "record"]
