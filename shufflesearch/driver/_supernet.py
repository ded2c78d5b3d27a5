"""The search loop of `evaluator: supernet`: a pool of Ray actors scores Optuna's candidates in chunks.

A proxy search runs one Tune trial per candidate, which costs about a second of Tune's and the trial's
own overhead; a supernet score costs a tenth of that, so here there is no Tune: one actor per trial
slot (`cpus_per_trial` CPUs each) loads the run's supernet checkpoint and the data once and keeps a
`supernet_score.PathScorer`. The actors start before the supernet trains (in this process, on one
thread by default), so their start-up (Ray workers, the imports of torch and timm) overlaps the training
on the other cores; they load the checkpoint at their first chunk. The driver asks the study for
candidates through the proxy search's `StudySearcher` (the same over-budget rejection, repeats and
tells), sends them to the actors `CHUNK` at a time with two chunks in flight per actor (TPE's constant
liar, NSGA-II and random sampling propose while others are pending), and as each chunk comes back
records its rows in `trials.jsonl` at once, then tells the study: the records, the Optuna journal,
resume and the progress lines are a proxy search's. Latency is measured only when an objective needs
it; no weight files are written (`supernet_score.path_weights` gives them to export).

An actor whose process dies is replaced by a new one and its chunks are scored again, each chunk up to
`max_retries` times (its rows then record the attempts and what ended them) and each actor slot
replaced up to `max_retries` times; after that the chunk's candidates are recorded failed and the
other actors go on. The driver replaces actors itself rather than through Ray's `max_restarts`: Ray
cannot restart an actor whose creation arguments live in the object store (ray#53727, which it
prints on the console), and the data does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from shufflesearch._exec._retries import failure_reason, lost_error, retry_line
from shufflesearch.genome._arch import Arch
from shufflesearch.runs._records import append_rows, make_row

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.driver._study_searcher import StudySearcher
    from shufflesearch.space._configs import SupernetConfig, TrainConfig
    from shufflesearch.space._space import SearchSettings, SearchSpace

CHUNK = 8  # candidates per actor call: ~1 s of scoring, so few round trips and a fresh study


class _Scorer:
    """A Ray actor: the run's supernet and data, loaded once, at its first chunk (it may start while the
    supernet still trains); scores chunks of architectures.

    Args:
        space: The run's search space.
        run_dir: The run folder (its supernet checkpoint).
        cfg: The `supernet:` settings (BatchNorm batches).
        seed: The run's seed.
        data: The proxy data.
        train_cfg: The trials' train config: threads, channels_last, where latency is measured.
        latency_size: The input size latency is measured at, None when no objective needs it.
    """

    def __init__(self, space: SearchSpace, run_dir: str, cfg: SupernetConfig, seed: int, data: ProxyData,
                 train_cfg: TrainConfig, latency_size: int | None):
        import torch

        from shufflesearch.supernet import (
            _score as supernet_score,  # the imports (torch, timm) are most of an actor's start
        )

        torch.set_num_threads(train_cfg.threads)  # an actor's process is ours
        self.train_cfg, self.latency_size = train_cfg, latency_size
        self._load = lambda: supernet_score.run_scorer(space, run_dir, cfg, seed, data, train_cfg.channels_last)
        self.scorer: supernet_score.PathScorer | None = None

    def score(self, archs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each architecture's last "report" as a proxy trial's: one epoch, its search-split score."""
        from shufflesearch.train._latency import trial_latency_ms

        if self.scorer is None:
            self.scorer = self._load()
        results = []
        for genome in archs:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                arch = Arch.from_dict(genome)
                _, loss, acc = self.scorer.score(arch)
                latency = trial_latency_ms(arch, self.latency_size, self.train_cfg) if self.latency_size else None
                result = {"status": "complete", "epoch": 1, "search_acc": acc, "best_search_acc": acc,
                          "search_loss": loss, "latency_ms": latency}
            except Exception as e:  # one failing architecture must not end the search
                result = {"status": "failed", "epoch": 0, "error": f"{type(e).__name__}: {e}"}
            seconds = time.perf_counter() - started
            results.append({**result, "time_total_s": seconds, "eval_seconds": seconds, "train_seconds": 0.0,
                            "cpu_seconds": time.process_time() - cpu_started})
        return results


def score_candidates(space: SearchSpace, settings: SearchSettings, new_searcher: Callable[..., StudySearcher],
                     data: ProxyData,
                     train_cfg: TrainConfig, run_dir: Path, address: str | None, remaining: int,
                     rows: list[dict[str, Any]], cfg: SupernetConfig, budget: dict[str, Any],
                     printer: Callable[[dict[str, Any], list[dict[str, Any]]], None],
                     progress: Callable[[str], None]) -> None:
    """Train (or resume, or reuse) the run's supernet, then score `remaining` candidates into `rows`.

    Args:
        space: The run's search space.
        settings: The run's search settings (objectives, cpus_per_trial, seed, max_retries).
        new_searcher: The run's `StudySearcher` (over its Optuna study), given its `finish`.
        data: The proxy data.
        train_cfg: The trials' train config.
        run_dir: The run folder.
        address: A Ray cluster's address, None for a local Ray.
        remaining: Candidates to score.
        rows: The run's records so far; the new ones are appended.
        cfg: The `supernet:` settings.
        budget: The cost basis every row records (`search._budget_record`).
        printer: Called with each new row and all rows (one progress line per candidate).
        progress: Where the supernet's training lines and the start line go.
    """
    import ray
    from ray.exceptions import RayActorError

    from shufflesearch._exec._devices import ray_resources
    from shufflesearch._exec._ray import concurrency, ray_session
    from shufflesearch.space._objectives import OBJECTIVES
    from shufflesearch.supernet._train import train_supernet

    def train() -> None:
        train_supernet(space, run_dir, cfg, seed=settings.seed, address=address, data=data, progress=progress)

    # a training in this process leaves the other cores to the actors' start (workers, imports) meanwhile;
    # a data-parallel one needs the CPUs the actors would hold
    overlap = cfg.workers == 1
    if not overlap:
        train()
    log = run_dir / "ray.log"

    def finish(number: int, arch: Arch, result: dict[str, Any], status: str) -> dict[str, Any]:
        row = make_row(arch, {"attempts": 1, "faults": [], **result}, status, number=number, budget=budget,
                       max_epochs=1, seed=settings.seed)
        rows.append(row)
        printer(row, rows)
        return row

    searcher = new_searcher(finish)
    needs_latency = any(OBJECTIVES[o].field == "latency_ms" for o in settings.objectives)
    with ray_session(address, log):
        resources = ray_resources(settings.cpus_per_trial, settings.gpus_per_trial)
        actor = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"], max_restarts=0)(_Scorer)
        slots = concurrency(settings.cpus_per_trial, settings.gpus_per_trial)
        shared = (space, str(run_dir.resolve()), cfg, settings.seed, ray.put(data), train_cfg,
                  space.budget.input_size if needs_latency else None)
        actors: list[Any] = [actor.remote(*shared) for _ in range(slots)]  # None: its replacements are spent
        replaced = [0] * slots
        if overlap:
            train()
        progress(f"{run_dir}: {remaining} candidate(s) to score on the supernet, {slots} actor(s) of "
                 f"{settings.cpus_per_trial} CPU, {CHUNK} a call; budget {space.budget.mflops:g} MFLOPs "
                 f"(multiply-adds) at {space.budget.input_size}px")
        pending: dict[Any, tuple[int, Any, list[str], list[dict[str, Any]], list[str]]] = {}
        asked, written = 0, len(rows)  # pending: call -> (slot, its actor, trial ids, configs, faults so far)

        def flush(new_rows: list[dict[str, Any]]) -> None:  # a chunk's rows, appended before the study hears
            nonlocal written
            append_rows(run_dir / "trials.jsonl", new_rows)
            written += len(new_rows)

        def send(slot: int, ids: list[str], configs: list[dict[str, Any]], faults: list[str]) -> None:
            call = actors[slot].score.remote([c["arch"] for c in configs])
            pending[call] = (slot, actors[slot], ids, configs, faults)

        def submit(slot: int) -> None:
            nonlocal asked
            ids = [f"c{asked + i}" for i in range(min(CHUNK, remaining - asked))]
            asked += len(ids)
            send(slot, ids, [searcher.suggest(i) for i in ids], [])

        def alive(preferred: int) -> int | None:
            return preferred if actors[preferred] is not None else \
                next((k for k, a in enumerate(actors) if a is not None), None)

        for slot in list(range(slots)) * 2:
            if asked < remaining:
                submit(slot)
        try:
            while pending:
                (done,), _ = ray.wait(list(pending), num_returns=1)
                slot, by, ids, configs, faults = pending.pop(done)
                try:
                    scored, attempts = ray.get(done), len(faults) + 1
                except RayActorError as e:  # the actor died: replace it, score the chunk again
                    faults = [*faults, failure_reason(str(e))]
                    if actors[slot] is by:  # the first of its calls to fail
                        replaced[slot] += 1
                        actors[slot] = actor.remote(*shared) if replaced[slot] <= settings.max_retries else None
                    to = alive(slot)
                    if len(faults) <= settings.max_retries and to is not None:
                        numbers = ", ".join(str(c["number"]) for c in configs)
                        progress(retry_line(f"trials {numbers}", len(faults), settings.max_retries, faults[-1], log))
                        send(to, ids, configs, faults)
                        continue
                    scored = [{"status": "failed", "epoch": 0, "error": lost_error(faults, log)}] * len(ids)
                    attempts = len(faults)
                results = [(i, {**r, "attempts": attempts, "faults": faults}, False) for i, r in zip(ids, scored)]
                searcher.complete(results, flush=lambda: flush(rows[written:]))
                to = alive(slot)
                if asked < remaining and to is not None:  # with every actor lost the run stops short
                    submit(to)
        except KeyboardInterrupt:  # the candidates in flight stay RUNNING in the study: FAIL on resume
            pass
