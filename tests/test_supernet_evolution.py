"""The supernet search's candidates (`driver._evolution`), without Ray: SPOS's evolution over a space's own
choices, distinct genomes within the budget, one study trial each, the same for the same seed; and the
samplers the supernet evaluator takes."""

from __future__ import annotations

import re

import optuna
import pytest
import yaml
from helpers import ROOT, run_cli, tiny_space
from optuna.trial import TrialState

import shufflesearch
from shufflesearch.driver._evolution import Evolution, Parent, best
from shufflesearch.driver._study_searcher import StudySearcher
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.runs._records import make_row
from shufflesearch.space._file import SearchSettings
from shufflesearch.space._space import SearchSpace

DEMO = SearchSpace.from_yaml(ROOT / "search_spaces" / "demo.yaml")
SETTINGS = SearchSettings(sampler="evolution", evolution_population=8, evolution_parents=3)


def _generations(space, settings, n, seed=0):
    """`n` generations drawn, added to a study and scored by a made-up accuracy (a function of the
    genome): the children of each, the study."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    searcher = StudySearcher(study, space.sample, ["acc", "mflops"], lambda number, arch, result, status: make_row(
        arch, result, status, number=number, budget={"input_size": 32}, max_epochs=1, seed=0), [])
    evolution, out = Evolution(space, settings, set(), [], seed), []
    for g in range(n):
        children = evolution.generation(settings.evolution_population)
        ids = [f"g{g}c{i}" for i in range(len(children))]
        for i, c in zip(ids, children):
            searcher.add(i, c.trial, c.arch)
        acc = [int(c.arch.hash[:6], 16) / 16 ** 6 for c in children]
        evolution.scored(searcher.complete([(i, {"status": "complete", "epoch": 1, "search_acc": a}, False)
                                            for i, a in zip(ids, acc)]))
        out.append(children)
    return out, study


def test_children_are_distinct_in_budget_genomes_the_space_expresses_each_one_study_trial():
    generations, study = _generations(DEMO, SETTINGS, 4)
    children = [c for g in generations for c in g]
    assert [len(g) for g in generations] == [8] * 4
    assert len({c.arch.hash for c in children}) == len(children) == len(study.trials)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for child, trial in zip(children, study.trials):
        assert DEMO.cost(child.arch).macs <= DEMO.budget.macs
        assert trial.params == child.trial.params and trial.user_attrs["arch_hash"] == child.arch.hash
        # the study's trial has the parameters a sampled trial would have: sampling them gives the genome
        assert DEMO.sample(optuna.trial.FixedTrial(trial.params)) == child.arch
    origins = [c.trial.user_attrs["origin"].split(" ")[0] for c in children]
    assert set(origins[:8]) == {"random"}
    assert origins[8:12] == ["mutation"] * 4 and "crossover" in origins[12:16]  # SPOS: half each, then random


def test_the_same_seed_gives_the_same_candidates():
    first, _ = _generations(DEMO, SETTINGS, 3)
    again, _ = _generations(DEMO, SETTINGS, 3)
    other, _ = _generations(DEMO, SETTINGS, 3, seed=1)
    hashes = [[c.arch.hash for c in g] for g in first]
    assert hashes == [[c.arch.hash for c in g] for g in again] != [[c.arch.hash for c in g] for g in other]


def test_a_spent_space_gives_fewer_candidates_then_none():
    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    data["budget"]["min_fraction"] = 1.0  # one width a structure
    data["shared"] = {"unit": "v2", "kernel_size": {"choices": [3, 5]}, "repeats": 1}  # two structures
    data["stages"] = [{k: v for k, v in st.items() if k not in ("repeats", "grouped_first_conv")}
                      for st in data["stages"]]
    space = SearchSpace.from_dict(data, "two.yaml")
    (first, second), study = _generations(space, SETTINGS, 2)
    assert len(first) == 2 and second == [] and len(study.trials) == 2


def test_parents_are_the_best_by_pareto_rank_then_accuracy():
    ps = [Parent((-0.9, 30.0), 0, {}), Parent((-0.8, 10.0), 1, {}), Parent((-0.85, 40.0), 2, {}),
          Parent((-0.7, 5.0), 3, {}), Parent((-0.6, 20.0), 4, {})]
    assert [p.number for p in best(ps, 4)] == [0, 1, 3, 2]  # the front (0, 1, 3), then 2 (dominated by 0)
    assert [p.number for p in best(ps[:1], 3)] == [0]


@pytest.mark.parametrize("settings, message", [
    ({"evolution_population": 1}, "search.evolution_population = 1: must be an integer >= 2"),
    ({"evolution_parents": 9, "evolution_population": 8},
     "search.evolution_parents = 9: must be an integer in [1, evolution_population = 8]"),
    ({"evolution_mutation_prob": 1.5}, "search.evolution_mutation_prob = 1.5: must be a number in [0, 1]"),
])
def test_bad_evolution_settings_are_one_line(tmp_path, settings, message):
    path = tiny_space(tmp_path, **settings)
    with pytest.raises(ShuffleSearchError, match=f"^{re.escape(f'{path}: {message}')}$"):
        SearchSpace.from_yaml(path)


def test_the_supernet_evaluator_draws_by_evolution_unless_told_random_and_refuses_tpe(tmp_path):
    path = tmp_path / "tiny.yaml"
    data = yaml.safe_load(tiny_space(tmp_path).read_text())
    data["search"].pop("sampler", None)  # the shipped spaces name none: it follows the evaluator
    path.write_text(yaml.safe_dump(data))
    from shufflesearch.driver._search import _resolve

    space = SearchSpace.from_yaml(path)
    assert _resolve(space, None, "supernet").sampler == "evolution"
    assert _resolve(space, None, "proxy").sampler == "tpe"
    assert _resolve(space, None, "supernet", sampler="random").sampler == "random"
    with pytest.raises(ShuffleSearchError, match="search.sampler = 'evolution': is for the supernet evaluator"):
        shufflesearch.search(space, sampler="evolution", runs_dir=tmp_path / "runs")
    path.write_text(yaml.safe_dump({**data, "search": {**data["search"], "sampler": "tpe"}}))  # a file naming tpe
    out = run_cli("search", str(path), "--evaluator", "supernet", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and out.stderr.strip().endswith(
        f"{tmp_path / 'tiny.yaml'}: search.sampler = 'tpe': the supernet evaluator takes evolution or random (its "
        "thousands of candidates would slow tpe's every ask); choose --sampler evolution")
    assert not (tmp_path / "runs").exists()
