"""The search loop of `evaluator: supernet`: a pool of Ray actors scores Optuna's candidates in chunks.

A proxy search runs one Tune trial per candidate, which costs about a second of Tune's and the trial's
own overhead; a supernet score costs a tenth of that, so here there is no Tune: one actor per trial
slot (`cpus_per_trial` CPUs and the `gpus_per_trial` share each) builds the run's supernet and keeps a
`supernet_score.PathScorer` on its device. The weights reach the actors through Ray's object store
(put once by the driver, which reads and checks the run's checkpoint), never through a disk their node
may not share. A supernet trained in this process (one worker, on CPU) trains after the actors start,
so their start-up (Ray workers, the imports of torch and timm) overlaps the training on the other
cores; one trained by Ray Train (several workers, or GPUs) trains first, the CPUs and GPUs the actors
would hold its own. The actors build the supernet at their first chunk. The candidates are distinct genomes
within the budget drawn a generation at a time (`_evolution`: SPOS's evolution, or random draws), each
added to the study as one trial through the proxy search's `StudySearcher`; the driver sends them to
the actors `CHUNK` at a time with two chunks in flight per actor, as each chunk comes back records its
rows in `trials.jsonl` at once, then tells the study (the records, the Optuna journal, resume and the
progress lines are a proxy search's), and draws the next generation once the last one is all scored.
No genome is scored twice, and a space with fewer distinct genomes than candidates asked for ends
short, with a line saying so. Each candidate runs the one trial body a proxy
trial runs (`train._trial`), its one "epoch" the scoring of its path; latency is measured only when an
objective needs it; no weight files are written (`supernet_score.path_weights` gives them to export).

An actor whose process dies is replaced by a new one and its chunks are scored again, each chunk up to
`max_retries` times (its rows then record the attempts and what ended them) and each actor slot
replaced up to `max_retries` times; after that the chunk's candidates are recorded failed and the
other actors go on. The driver replaces actors itself rather than through Ray's `max_restarts`: Ray
cannot restart an actor whose creation arguments live in the object store (ray#53727, which it
prints on the console), and the data does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from shufflesearch._exec._retries import failure_reason, lost_error, retry_line

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.driver._evolution import Evolution
    from shufflesearch.driver._loop import SearchLoop
    from shufflesearch.driver._study_searcher import StudySearcher
    from shufflesearch.genome._arch import Arch
    from shufflesearch.space._configs import SupernetConfig, TrainConfig
    from shufflesearch.space._file import SearchSettings
    from shufflesearch.space._space import SearchSpace
    from shufflesearch.train._proxy import Report
    from shufflesearch.train._trial import Scored

CHUNK = 8  # candidates per actor call: ~1 s of scoring, so few round trips and a fresh study


class _Scorer:
    """A Ray actor: the run's supernet, built at its first chunk from the weights that chunk names (it may
    start while the supernet still trains), and the data; scores chunks of architectures.

    Args:
        space: The run's search space.
        cfg: The `supernet:` settings (BatchNorm batches).
        seed: The run's seed.
        data: The proxy data.
        train_cfg: The trials' train config: threads, channels_last, the device (its GPU share's), where
            latency is measured.
        latency_size: The input size latency is measured at, None when no objective needs it.
    """

    def __init__(self, space: SearchSpace, cfg: SupernetConfig, seed: int, data: ProxyData,
                 train_cfg: TrainConfig, latency_size: int | None):
        import torch

        from shufflesearch._exec._devices import local_device
        from shufflesearch.supernet import (
            _score as supernet_score,  # the imports (torch, timm) are most of an actor's start
        )

        torch.set_num_threads(train_cfg.threads)  # an actor's process is ours
        self.train_cfg, self.latency_size = train_cfg, latency_size
        device = local_device(train_cfg.device)  # its GPU share's with one (Ray sets CUDA_VISIBLE_DEVICES)
        self._load = lambda weights: supernet_score.run_scorer(
            supernet_score.supernet_from(space, weights, data), data, cfg, seed, train_cfg.channels_last, device)
        self.scorer: supernet_score.PathScorer | None = None

    def score(self, archs: list[dict[str, Any]], supernet: list[Any]) -> list[dict[str, Any]]:
        """Each architecture's last report, as a proxy trial's: the one trial body, whose one "epoch" is
        the scoring of its path. `supernet`: [the weights], or [their object ref], got at the first call."""
        from shufflesearch.train._trial import run_trial_body

        if self.scorer is None:
            import ray

            weights = supernet[0]
            self.scorer = self._load(ray.get(weights) if isinstance(weights, ray.ObjectRef) else weights)
        return [run_trial_body(genome, self._score_path, self.train_cfg, latency_size=self.latency_size)
                for genome in archs]

    def _score_path(self, arch: Arch, report: Report) -> Scored:
        from shufflesearch.train._trial import Scored

        started = time.perf_counter()
        _, loss, acc = self.scorer.score(arch)
        report(1, {"search_acc": acc, "search_loss": loss, "train_seconds": 0.0,
                   "eval_seconds": time.perf_counter() - started})
        return Scored()


@dataclass(frozen=True)
class _Chunk:
    """Candidates scored in one actor call: the searcher's trial ids, their configs, why earlier attempts ended."""

    ids: list[str]
    configs: list[dict[str, Any]]
    faults: list[str] = field(default_factory=list)


class _ScoringPool:
    """The actors that score a run's candidates: one per slot, `CHUNK` candidates a call, two calls in
    flight per actor, each chunk completed with the searcher as it comes back (which records its rows).
    The candidates come a generation at a time (`_evolution.Evolution`), each generation's once the
    previous one's are all scored and recorded, so that the same seed gives the same candidates.

    An actor that dies is replaced (up to `max_retries` times a slot) and its chunks are scored again
    (up to `max_retries` times a chunk); a chunk out of attempts, or with no actor left to score it, is
    recorded failed. With every slot's replacements spent the run stops short.

    Args:
        new_actor: Starts a scoring actor (`_Scorer`).
        slots: How many actors score at once.
        searcher: The run's study searcher (adds candidates to the study, records and tells what became of them).
        evolution: Draws the candidates, a generation at a time.
        remaining: Candidates to score.
        max_retries: The retries of a chunk, and the replacements of a slot's actor.
        progress: Where the retry lines go.
        log: The run's ray.log, which a retry line names.
    """

    def __init__(self, new_actor: Callable[[], Any], slots: int, searcher: StudySearcher, evolution: Evolution,
                 remaining: int, max_retries: int, progress: Callable[[str], None], log: Path):
        self.new_actor, self.searcher, self.evolution, self.remaining = new_actor, searcher, evolution, remaining
        self.max_retries, self.progress, self.log = max_retries, progress, log
        self.actors: list[Any] = [new_actor() for _ in range(slots)]  # None: the slot's replacements are spent
        self.replaced = [0] * slots
        self.pending: dict[Any, tuple[int, Any, _Chunk]] = {}  # call -> (slot, the actor called, its chunk)
        self.asked = 0
        self.queue: list[tuple[str, dict[str, Any]]] = []  # the generation's candidates not yet sent: (id, config)
        self.spent = False  # the space had fewer new genomes within the budget than were asked for
        self.supernet: list[Any] = []

    def run(self, flush: Callable[[], None], supernet: Any) -> None:
        """Score every remaining candidate with the `supernet` weights (their object ref); `flush` writes
        each chunk's records before the study hears."""
        self.supernet = [supernet]  # in a list: Ray hands an actor the ref, which it gets once
        try:
            while self._propose():
                for slot in [k for k, a in enumerate(self.actors) if a is not None] * 2:
                    self._ask(slot)
                while self.pending:
                    self._receive(flush)
        except KeyboardInterrupt:  # the candidates in flight stay RUNNING in the study: FAIL on resume
            pass

    def _propose(self) -> bool:
        """The next generation's candidates into the queue, each a trial of the study; False when none is
        to come: every candidate asked, no actor left, or the space spent."""
        size = min(self.evolution.settings.evolution_population, self.remaining - self.asked)
        if size == 0 or self.spent or all(a is None for a in self.actors):
            return False
        children = self.evolution.generation(size)
        self.spent = len(children) < size
        self.queue = [(f"c{self.asked + i}", self.searcher.add(f"c{self.asked + i}", c.trial, c.arch))
                      for i, c in enumerate(children)]
        self.asked += len(children)
        return bool(children)

    def _ask(self, slot: int) -> None:
        """Send `slot`'s actor the next chunk of the generation's candidates, if any remain."""
        chunk, self.queue = self.queue[:CHUNK], self.queue[CHUNK:]
        if chunk:
            self._send(slot, _Chunk([i for i, _ in chunk], [config for _, config in chunk]))

    def _send(self, slot: int, chunk: _Chunk) -> None:
        call = self.actors[slot].score.remote([c["arch"] for c in chunk.configs], self.supernet)
        self.pending[call] = (slot, self.actors[slot], chunk)

    def _receive(self, flush: Callable[[], None]) -> None:
        """Complete the next chunk to come back, or send it again when its actor died; ask for another."""
        import ray
        from ray.exceptions import RayActorError

        (call,), _ = ray.wait(list(self.pending), num_returns=1)
        slot, actor, chunk = self.pending.pop(call)
        try:
            scored, attempts = ray.get(call), len(chunk.faults) + 1
        except RayActorError as e:  # the actor died: replace it, score the chunk again
            chunk = replace(chunk, faults=[*chunk.faults, failure_reason(str(e))])
            self._replace(slot, actor)
            to = self._alive(slot)
            if len(chunk.faults) <= self.max_retries and to is not None:
                numbers = ", ".join(str(c["number"]) for c in chunk.configs)
                self.progress(retry_line(f"trials {numbers}", len(chunk.faults), self.max_retries, chunk.faults[-1],
                                         self.log))
                self._send(to, chunk)
                return
            scored = [{"status": "failed", "epoch": 0, "error": lost_error(chunk.faults, self.log)}] * len(chunk.ids)
            attempts = len(chunk.faults)
        self.evolution.scored(self.searcher.complete([(i, {**r, "attempts": attempts, "faults": chunk.faults}, False)
                                                      for i, r in zip(chunk.ids, scored)], flush=flush))
        to = self._alive(slot)
        if to is not None:
            self._ask(to)

    def _replace(self, slot: int, died: Any) -> None:
        """A new actor for `slot` after `died`, at the first of its calls to fail, while replacements remain."""
        if self.actors[slot] is died:
            self.replaced[slot] += 1
            self.actors[slot] = self.new_actor() if self.replaced[slot] <= self.max_retries else None

    def _alive(self, preferred: int) -> int | None:
        """`preferred` if its slot still has an actor, else the first slot that has one, else None."""
        if self.actors[preferred] is not None:
            return preferred
        return next((k for k, a in enumerate(self.actors) if a is not None), None)


def score_candidates(loop: SearchLoop, searcher: StudySearcher, flush: Callable[[], None],
                     cfg: SupernetConfig) -> None:
    """Train (or resume, or reuse) the run's supernet (`cfg`), then score the remaining candidates (none:
    the supernet is only trained, e.g. again after its folder was deleted).

    `searcher` suggests the candidates, records each scored one (its `finish`) and tells the study;
    `flush` writes a chunk's records, before the study is told of them. A GPU share the cluster has not
    got is one line before anything trains or waits for it.
    """
    import ray

    from shufflesearch._exec._devices import check_cluster_gpus
    from shufflesearch._exec._ray import concurrency, ray_session
    from shufflesearch.driver._evolution import MAX_DRAWS, open_evolution
    from shufflesearch.driver._latency import opened
    from shufflesearch.supernet._score import read_supernet
    from shufflesearch.supernet._train import train_supernet

    settings = loop.settings
    train = partial(train_supernet, loop.space, loop.run_dir, cfg, seed=settings.seed, address=loop.address,
                    data=loop.data, progress=loop.progress, gpus=settings.gpus_per_trial,
                    max_retries=settings.max_retries)
    # a training in this process leaves the other cores to the actors' start (workers, imports) meanwhile;
    # one under Ray Train needs the CPUs and GPUs the actors would hold
    overlap = cfg.workers == 1 and not settings.gpus_per_trial
    with ray_session(loop.address, loop.ray_log), opened(loop.latency if loop.remaining else None):
        check_cluster_gpus(settings.gpus_per_trial)
        if not overlap or loop.remaining == 0:
            train()
        if loop.remaining == 0:
            return
        slots = concurrency(settings.cpus_per_trial, settings.gpus_per_trial)
        pool = _ScoringPool(_scorer_factory(loop, cfg), slots, searcher, open_evolution(loop.space, settings, searcher),
                            loop.remaining, settings.max_retries, loop.progress, loop.ray_log)
        if overlap:
            train()
        weights = ray.put(read_supernet(loop.space, loop.run_dir, loop.data, cfg, seed=settings.seed))
        budget = loop.space.budget
        gpus = f" + {settings.gpus_per_trial:g} GPU" if settings.gpus_per_trial else ""
        loop.progress(f"{loop.run_dir}: {loop.remaining} candidate(s) to score on the supernet, {slots} actor(s) "
                      f"of {settings.cpus_per_trial} CPU{gpus} on {loop.train_cfg.device}, {CHUNK} a call, "
                      f"{_strategy(settings)}; budget {budget.describe()}")
        pool.run(flush, weights)
        if pool.spent:
            loop.progress(f"{loop.run_dir}: the space has no more distinct architectures within the budget "
                          f"({MAX_DRAWS} random draws in a row found none new): {len(searcher.recorded())} scored "
                          f"of the {settings.trials} asked for")


def _strategy(settings: SearchSettings) -> str:
    """How the candidates are drawn, as the start line says it."""
    if settings.sampler == "random":
        return f"distinct random candidates, {settings.evolution_population} a generation"
    return (f"evolution: generations of {settings.evolution_population}, children of the best "
            f"{settings.evolution_parents}, mutation probability {settings.evolution_mutation_prob:g}")


def _scorer_factory(loop: SearchLoop, cfg: SupernetConfig) -> Callable[[], Any]:
    """What starts a scoring actor: `cpus_per_trial` CPUs and the GPU share, the data in the object store
    (once for every actor), latency measured only when an objective needs it."""
    import ray

    from shufflesearch._exec._devices import ray_resources
    from shufflesearch.space._objectives import OBJECTIVES

    settings = loop.settings
    resources = ray_resources(settings.cpus_per_trial, settings.gpus_per_trial)
    actor = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"], max_restarts=0)(_Scorer)
    # with a latency budget the gate measured each candidate on the target (`_latency`): the path measures nothing
    needs_latency = loop.latency is None and any(OBJECTIVES[o].field == "latency_ms" for o in settings.objectives)
    return partial(actor.remote, loop.space, cfg, settings.seed, ray.put(loop.data), loop.train_cfg,
                   loop.space.budget.input_size if needs_latency else None)
