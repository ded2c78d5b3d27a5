"""The candidates of a supernet search (`sampler: evolution` or `random`): distinct genomes within the
budget, a generation at a time, each one trial of the run's study.

`evolution` is the evolutionary search of Single Path One-Shot (Guo et al., arXiv 1904.00420, section
3.3 and its code's search.py): a first generation of `population` random candidates; after it, each
generation is `population // 2` children by mutation (a parent drawn from the best `parents` scored so
far, each of its choices drawn again with probability `mutation_prob`) and the rest by crossover (two
such parents, each choice taken from one of them at random), topped up with random candidates when the
draws run out. `random` makes every generation of random candidates. The best are the candidates
scored so far ranked by Pareto rank over the run's objectives, ties by the first (accuracy), then by
trial number: with one objective, SPOS's top-k.

A child is drawn over the space's own choices by running the space's define-by-run `SearchSpace.sample`
on a one-trial in-memory Optuna study whose sampler (`_ChildSampler`) gives each parameter the parent's
value or a random one: conditional choices (a stage's v1-only keys once it turned v1) and the width
solved for the budget come out as in any sampled trial. A draw whose structure cannot fit the budget,
or whose genome was scored or proposed before, is drawn again (`MAX_DRAWS` random draws in a row without
a new genome: the space has no more, and the search stops short). A kept child reaches the run's study
by `Study.add_trial` as a RUNNING trial with the parameters, distributions and attributes a sampled trial
has, so the records, journal, resume, report and export are a sampled trial's, and the study holds one
trial per distinct candidate.

Written here rather than as an Optuna sampler: a sampler proposes inside a trial it has already added
to the study, and cannot see the genome its parameters make (the width is solved, not sampled), so it
could neither redraw an over-budget or scored child without a study trial for each, nor wait for a
generation's scores. The study's own sampler is never asked, and no step reads the whole study after
the start: a candidate costs the same at the 50th trial as at the 5,000th.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState

from shufflesearch.driver._study_searcher import row_values
from shufflesearch.space._objectives import OBJECTIVES

if TYPE_CHECKING:
    from shufflesearch.driver._study_searcher import StudySearcher
    from shufflesearch.genome._arch import Arch
    from shufflesearch.space._space import SearchSettings, SearchSpace

MAX_DRAWS = 1000  # random draws in a row that found no new genome within the budget: the space is spent
_CHILD_DRAWS = 10  # SPOS: up to 10 draws a child before the generation is topped up at random
RANDOM = object()  # a gene's value: draw this parameter at random

Gene = Callable[[str], Any]  # a parameter's name -> its value in the child, or RANDOM


@dataclass(frozen=True)
class Child:
    """A candidate: the trial that drew it (params, distributions, attributes, its `origin`) and its genome."""

    trial: FrozenTrial
    arch: Arch


@dataclass(frozen=True)
class Parent:
    """A scored candidate: its objective values (each to be minimised), trial number and parameters."""

    key: tuple[float, ...]
    number: int
    params: Mapping[str, Any]


class _ChildSampler(BaseSampler):
    """Gives each parameter of one draw `gene(name)`, or a value of `random`'s where that is RANDOM."""

    def __init__(self, gene: Gene, random: RandomSampler):
        self.gene, self.random = gene, random

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        value = self.gene(param_name)
        return self.random.sample_independent(study, trial, param_name, param_distribution) \
            if value is RANDOM else value


def draw(space: SearchSpace, gene: Gene, origin: str, random: RandomSampler,
         sample: Callable[[optuna.Trial], Arch | None] | None = None) -> tuple[FrozenTrial, Arch | None]:
    """One run of `space.sample` (or of the run's `sample`, a latency gate's) whose parameters `gene` gives:
    its trial, with the user attribute `origin`, and its genome (None: over budget)."""
    study = optuna.create_study(sampler=_ChildSampler(gene, random))
    trial = study.ask()
    trial.set_user_attr("origin", origin)
    arch = (sample or space.sample)(trial)
    return study.get_trials(deepcopy=False)[0], arch


def mutation(parent: Mapping[str, Any], prob: float, rng: _random.Random) -> Gene:
    """SPOS's mutation: each of `parent`'s choices kept, or drawn again with probability `prob`."""
    return lambda name: RANDOM if name not in parent or rng.random() < prob else parent[name]


def crossover(first: Mapping[str, Any], second: Mapping[str, Any], rng: _random.Random) -> Gene:
    """SPOS's crossover: each choice from one of the parents, at random (the other's where one lacks it)."""
    def gene(name: str) -> Any:
        a, b = (first, second) if rng.random() < 0.5 else (second, first)
        return a[name] if name in a else b.get(name, RANDOM)
    return gene


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether `a` is no worse than `b` in every value (each minimised) and better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def best(parents: Sequence[Parent], k: int) -> list[Parent]:
    """The `k` best: by Pareto rank (the non-dominated first, then those only they dominate, ...), ties
    by the first value, then the trial number."""
    left, ranked = sorted(parents, key=lambda p: (p.key[0], p.number)), []
    while left and len(ranked) < k:
        front = [p for p in left if not any(dominates(q.key, p.key) for q in left)]
        ranked += front
        left = [p for p in left if p not in front]
    return ranked[:k]


def parent_of(row: Mapping[str, Any], params: Mapping[str, Any], objectives: Sequence[str]) -> Parent:
    """A complete record as a `Parent` (`params`: its trial's), its objective values signed to be minimised."""
    values = row_values(row, objectives)
    return Parent(tuple(-v if OBJECTIVES[o].direction == "maximize" else v for v, o in zip(values, objectives)),
                  row["number"], dict(params))


class Evolution:
    """The candidates of a supernet search, a generation at a time (see the module docstring).

    Args:
        space: The run's search space.
        settings: The run's search settings: `sampler` (evolution or random), the `evolution_*` ones, seed.
        seen: The hashes of every genome the run has scored or proposed.
        parents: The candidates scored so far (`parent_of`).
        seed: The draws' seed (the run's seed plus its trials so far, as a resumed sampler's).
        sample: The run's define-by-run sampling (`StudySearcher.sample`: with a latency budget, its gate's);
            None: `space.sample`.
    """

    def __init__(self, space: SearchSpace, settings: SearchSettings, seen: set[str], parents: list[Parent],
                 seed: int, sample: Callable[[optuna.Trial], Arch | None] | None = None):
        self.space, self.settings, self.seen, self.sample = space, settings, seen, sample
        self.parents = best(parents, settings.evolution_parents)
        self.proposed: dict[str, Mapping[str, Any]] = {}  # a proposed genome's hash -> its parameters
        self.rng = _random.Random(seed)
        self.random = RandomSampler(seed=seed)

    def generation(self, size: int) -> list[Child]:
        """Up to `size` new candidates; fewer only when the space has no more distinct genomes in the budget."""
        children: list[Child] = []
        if self.settings.sampler == "evolution" and self.parents:
            self._breed(children, min(size, self.settings.evolution_population // 2), self._mutation)
            self._breed(children, size, self._crossover)
        misses = 0
        while len(children) < size and misses < MAX_DRAWS:
            misses = 0 if self._keep(children, *draw(self.space, lambda name: RANDOM, "random", self.random, self.sample)) \
                else misses + 1
        return children

    def scored(self, rows: list[dict[str, Any]]) -> None:
        """Take the records of proposed candidates into the best so far (the complete ones)."""
        new = []
        for r in rows:
            params = self.proposed.pop(r["arch_hash"])
            if r["status"] == "complete":
                new.append(parent_of(r, params, self.settings.objectives))
        self.parents = best(self.parents + new, self.settings.evolution_parents)

    def _mutation(self) -> tuple[Gene, str]:
        parent = self.rng.choice(self.parents)
        return mutation(parent.params, self.settings.evolution_mutation_prob, self.rng), f"mutation of {parent.number}"

    def _crossover(self) -> tuple[Gene, str]:
        first, second = self.rng.sample(self.parents, 2) if len(self.parents) > 1 else self.parents * 2
        return crossover(first.params, second.params, self.rng), f"crossover of {first.number} and {second.number}"

    def _breed(self, children: list[Child], until: int, pick: Callable[[], tuple[Gene, str]]) -> None:
        """Children of `pick()`'s gene and origin until there are `until`, at most `_CHILD_DRAWS` draws each
        (SPOS's bound)."""
        for _ in range(_CHILD_DRAWS * max(0, until - len(children))):
            if len(children) >= until:
                return
            self._keep(children, *draw(self.space, *pick(), self.random, self.sample))

    def _keep(self, children: list[Child], trial: FrozenTrial, arch: Arch | None) -> bool:
        """Add the drawn `arch` to `children` if it is within the budget and new."""
        if arch is None or arch.hash in self.seen:
            return False
        self.seen.add(arch.hash)
        self.proposed[arch.hash] = trial.params
        children.append(Child(trial, arch))
        return True


def open_evolution(space: SearchSpace, settings: SearchSettings, searcher: StudySearcher) -> Evolution:
    """The `Evolution` of a run whose records and study `searcher` holds: every recorded genome seen, the
    complete ones parents (with their trials' parameters), the draws seeded as a resumed sampler is
    (`_search._open_study`)."""
    rows = searcher.recorded()
    params = {t.number: t.params for t in searcher.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    parents = [parent_of(r, params[r["number"]], settings.objectives)
               for r in rows if r["status"] == "complete" and r["number"] in params]
    return Evolution(space, settings, {r["arch_hash"] for r in rows}, parents, settings.seed + len(rows),
                     searcher.sample)

