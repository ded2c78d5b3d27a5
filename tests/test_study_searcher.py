"""The Tune searcher around the Optuna study, without Ray running: what it tells the study."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from shufflesearch.driver._study_searcher import MAX_REPEATS, StudySearcher
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._records import make_row

ARCH = ZOO["shufflenet_v2_x0_5"]
OTHER = ZOO["shufflenet_v1_g3_x0_5"]


def recorded(arch, number, status="complete", acc=0.9):
    return make_row(arch, {"epoch": 2, "search_acc": acc}, status, number=number, budget={"input_size": 224}, max_epochs=2,
                    seed=0)


def searcher(study, proposals, rows):
    finished = []
    proposals = iter(proposals)

    def finish(number, arch, result, status):
        finished.append(recorded(arch, number, status, result.get("search_acc", 0.0)))
        return finished[-1]

    return StudySearcher(study, lambda trial: next(proposals), ["acc", "mflops"], finish, rows), finished


def test_a_repeated_architecture_is_told_its_record_instead_of_trained():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.tell(study.ask(), [0.9, 40.0])  # trial 0: the recorded one
    s, _ = searcher(study, [ARCH, ARCH, OTHER], [recorded(ARCH, 0)])
    config = s.suggest("t1")
    assert config["arch"] == OTHER.to_dict()
    repeats = [t for t in study.trials if t.user_attrs.get("repeat_of") == 0]
    assert len(repeats) == 2 and all(t.values == [0.9, recorded(ARCH, 0)["mflops"]] for t in repeats)


def test_outcomes_reach_the_study_with_their_states():
    study = optuna.create_study(directions=["maximize", "minimize"])
    s, finished = searcher(study, [ARCH, OTHER, ZOO["shufflenet_v1_g8_x0_5"], ZOO["shufflenet_v1_g1_x0_5"]], [])
    for tid in "abcd":
        s.suggest(tid)
    s.on_trial_complete("a", {"status": "complete", "epoch": 2, "search_acc": 0.8})
    s.on_trial_complete("b", {"status": "running", "epoch": 1, "search_acc": 0.5})  # the scheduler stopped it
    s.on_trial_complete("c", {"status": "diverged", "epoch": 1, "search_acc": 0.1})
    s.on_trial_complete("d", None, error=True)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                               TrialState.FAIL]
    assert [r["status"] for r in finished] == ["complete", "early_stopped", "diverged", "failed"]


def test_an_exhausted_space_trains_repeats_after_a_bound():
    study = optuna.create_study(directions=["maximize", "minimize"])
    s, _ = searcher(study, [ARCH] * (MAX_REPEATS + 1), [recorded(ARCH, 0)])
    assert s.suggest("t")["arch"] == ARCH.to_dict()
    assert sum("repeat_of" in t.user_attrs for t in study.trials) == MAX_REPEATS


def test_the_space_files_tpe_settings_reach_optunas_sampler(tmp_path):
    from shufflesearch.driver._journal import RunJournal
    from shufflesearch.driver._search import _open_study
    from shufflesearch.space._space import SearchSettings

    settings = SearchSettings(tpe_startup_trials=4, tpe_multivariate=True, tpe_constant_liar=False)
    sampler = _open_study(RunJournal(str(tmp_path / "optuna.journal")), "run", settings, n_done=0).sampler
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert (sampler._n_startup_trials, sampler._multivariate, sampler._constant_liar) == (4, True, False)
    assert sampler._group  # multivariate TPE models the choices that occur together (a v1 stage's groups)


def test_a_model_based_samplers_start_up_is_not_random_searchs_draws_at_the_same_seed(tmp_path):
    """TPE's and GP's random start-up draw from a stream of their own: at one seed, TPE and random search
    used to share their first 10 architectures, so the two runs differed in their later trials alone."""
    from shufflesearch.driver._journal import RunJournal
    from shufflesearch.driver._search import _open_study
    from shufflesearch.space._space import SearchSettings, SearchSpace

    space = SearchSpace.from_yaml(Path(__file__).parents[1] / "search_spaces" / "demo.yaml")

    def first_archs(sampler: str) -> list[str]:
        settings = SearchSettings(sampler=sampler, tpe_startup_trials=10)
        study = _open_study(RunJournal(str(tmp_path / f"{sampler}.journal")), sampler, settings, n_done=0)
        archs = []
        for _ in range(5):
            trial = study.ask()
            archs.append(space.sample(trial).hash)
            study.tell(trial, [0.5, 1.0])
        return archs

    drawn = {name: first_archs(name) for name in ("random", "tpe", "gp")}
    assert drawn["random"] == first_archs("random")  # same seed, same draws
    assert not set(drawn["tpe"]) & set(drawn["random"])
    assert not set(drawn["gp"]) & set(drawn["random"])


def test_it_pickles_for_tunes_tuner_pkl_whatever_the_sampler():
    """Tune pickles the search algorithm into tuner.pkl before the first trial; Optuna 5.1's NSGA-II
    sampler holds a lock that cannot be pickled (the CI failure of test_each_sampler_runs[nsga2])."""
    from ray import cloudpickle

    for sampler in (optuna.samplers.NSGAIISampler(seed=0), optuna.samplers.TPESampler(seed=0),
                    optuna.samplers.GPSampler(seed=0)):
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        s, _ = searcher(study, [ARCH], [recorded(OTHER, 0)])
        s.suggest("t")
        copy = cloudpickle.loads(cloudpickle.dumps(s))
        assert copy.objectives == ["acc", "mflops"] and set(copy._recorded) == {OTHER.hash}
        assert s.study is study  # the live searcher keeps its study
