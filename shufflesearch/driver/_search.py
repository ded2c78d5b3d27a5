"""The budgeted search: Ray Tune runs the trials, an Optuna study chooses the architectures.

One trial = one architecture sampled within the FLOPs budget (multiply-adds), proxy-trained on the
space's dataset, reported to Tune after every epoch (so ASHA can stop it early), and recorded in
`runs/<name>/trials.jsonl`. The Optuna study lives in `runs/<name>/optuna.journal`
(`optuna-dashboard runs/<name>/optuna.journal` opens it) and Tune's experiment state in
`runs/<name>/tune/`.

Resume does not replay Tune's experiment: the trial records are the source of truth. A new Tune
experiment (`tune/part<k>`) runs the trials still missing; study trials left RUNNING by a killed
driver are told FAIL (they trained to no result), finished ones are never trained again.
"""

from __future__ import annotations

import datetime as dt
import math
import shlex
import time
import warnings
import zlib
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import optuna

from shufflesearch._exec._devices import check_cluster_gpus, for_trials, ray_resources
from shufflesearch._exec._lock import run_lock
from shufflesearch._exec._optuna import quiet_optuna
from shufflesearch._exec._progress import Progress
from shufflesearch._exec._retries import lost_error
from shufflesearch._io import read_json, write_json_atomic, write_text_atomic
from shufflesearch.data import load_data
from shufflesearch.driver import _rerank
from shufflesearch.driver._journal import RunJournal
from shufflesearch.driver._loop import SearchLoop
from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.genome._arch import Arch
from shufflesearch.runs._pareto import best_row, pareto_front, reranked
from shufflesearch.runs._records import STATUSES, RecordLog, make_row, package_versions, read_rows, write_rows
from shufflesearch.runs._run import run_folder
from shufflesearch.space._file import default_sampler, sampler_conflict
from shufflesearch.space._objectives import OBJECTIVES
from shufflesearch.space._space import SearchSettings, SearchSpace

if TYPE_CHECKING:
    from shufflesearch.driver._latency import LatencyGate
    from shufflesearch.driver._study_searcher import StudySearcher
    from shufflesearch.space._configs import SupernetConfig
    from shufflesearch.space._file import Budget


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: its directory, every trial row, the best row and the Pareto rows (as
    `pareto.best_row` and `pareto.pareto_front` of the run's objectives define them)."""

    run_dir: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    pareto: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0
    interrupted: bool = False  # stopped (Ctrl-C) before the requested number of trials
    rerank: list[dict[str, Any]] | None = None  # the re-ranking's results per candidate (`_rerank`), if one ran

    @property
    def counts(self) -> dict[str, int]:
        """Trials per status (complete, early_stopped, failed, diverged)."""
        return {s: sum(r["status"] == s for r in self.rows) for s in STATUSES}


# --- the trial: a plain function, config in, metrics out ------------------------------------------
# what Tune sees of a trial before its first epoch (its searcher and schedulers read the accuracy in every
# report) and a trial that failed before it records
_BEFORE_FIRST_EPOCH = {"search_acc": 0.0, "best_search_acc": 0.0, "search_loss": 0.0}


def run_trial(config: dict[str, Any], data: Any, train_cfg: Any, input_size: int,
              train_fn: Callable | None = None) -> None:
    """A Tune trial: the one trial body (`train._trial.run_trial_body`) proxy-training `config["arch"]`,
    its latency measured at `input_size`.

    Every epoch is reported to Tune with status "running"; the last report has the body's status
    ("complete", "diverged", or "failed" with the error), so the searcher can tell a finished trial from
    one the scheduler stopped (whose last report is still "running"). Every report carries every metric;
    `cpu_seconds` is the trial process's CPU time so far. A complete trial's last report carries its
    weights too (`weights`: safetensors bytes), which the driver writes to
    `weights/trial_<number>.safetensors` (`TrialWeights`): the trial writes nothing, its node may not
    share the driver's disk.
    """
    from ray import tune

    from shufflesearch.train._trial import proxy_training, run_trial_body

    def report(last: dict[str, Any]) -> None:
        if last["epoch"] < train_cfg.epochs:  # the last epoch is reported below, with the final status
            tune.report({**_BEFORE_FIRST_EPOCH, **last, "status": "running"})

    result = run_trial_body(config["arch"], proxy_training(data, train_cfg, train_fn), train_cfg,
                            latency_size=input_size, on_epoch=report, keep_weights=True)
    tune.report({**_BEFORE_FIRST_EPOCH, **result})


# --- the driver ---------------------------------------------------------------------------------
def search(space: SearchSpace | str | Path, *, name: str | None = None, trials: int | None = None,
           evaluator: str | None = None, workers: int | None = None,
           budget_mflops: float | None = None, sampler: str | None = None,
           objectives: Sequence[str] | str | None = None, scheduler: str | None = None,
           cpus_per_trial: int | None = None, gpus_per_trial: float | None = None, address: str | None = None,
           seed: int | None = None, max_retries: int | None = None, resume: bool = False,
           runs_dir: str | Path = "runs", train_fn: Callable | None = None,
           progress: Callable[[str], None] | None = print, storage: str | Path | None = None,
           rerank: bool | None = None, budget_latency_ms: float | None = None,
           latency: Mapping[str, Any] | None = None) -> SearchResult:
    """Search `space` (a `SearchSpace` or its YAML path) under its FLOPs (multiply-adds) and/or latency budget.

    Options left as None come from the space file (or, when resuming, from the run's config.json).
    A run directory that exists is resumed: its finished trials are kept, and the search trains only
    the trials still missing. `train_fn(arch, data, train_cfg, report)` replaces the proxy trainer
    (default `shufflesearch.train_proxy`); it runs in Ray workers, so it must be picklable.
    `evaluator` ('proxy' or 'supernet') overrides the space file's; with 'supernet' the run first trains
    the space's weight-sharing supernet (`workers` data-parallel Ray Train workers, overriding
    `supernet.workers`) and scores each candidate as a path of it (`driver._supernet`); `storage`
    (overriding the resumed run's, then `supernet.storage`) is where Ray Train keeps that training's
    checkpoints, a path or URI every node reaches, which a cluster whose other nodes may run its workers
    needs. `train_fn` with the supernet evaluator is refused.
    `gpus_per_trial` is each trial's GPU share (0.25: four trials a GPU); `proxy.device: auto` follows it.
    A trial whose Ray worker or node dies starts again, up to `max_retries` times (`_retries`); Ray's
    own messages go to `runs/<name>/ray.log`, not to the console.
    `rerank` (True/False) turns the space's `rerank:` stage on or off (`_rerank`): the trials within the
    noise of the leader trained again at a higher fidelity, and the run's best and front taken from that;
    left None, the space's (a resumed run's: its recorded) `rerank.enabled` decides.
    `budget_latency_ms` overrides the space's `budget.latency_ms` and `latency` (keys of `LatencySettings`:
    target, backend, batch, threads, input_size, warmup, runs, table) its `budget.latency`. With a latency
    budget every candidate is measured on the target (or predicted from the table) before it trains; one over
    it is never trained, the study is told so (its `latency` constraint) and `rejected.jsonl` says why
    (`_latency.LatencyGate`); the trained ones' rows carry the target's latency as `latency_ms`.
    """
    started = time.monotonic()
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_yaml(space)
    if budget_mflops is not None or budget_latency_ms is not None or latency:
        space = space.with_budget(budget_mflops, budget_latency_ms, latency)
    run_dir = run_folder(runs_dir, name or space.name)
    config_path = run_dir / "config.json"
    previous = _previous_run(run_dir, space, resume)
    from shufflesearch.supernet._score import resolve_evaluator

    evaluator, supernet_cfg = resolve_evaluator(space, previous, evaluator, workers, storage, train_fn)
    rerank_cfg = _rerank.resolve(space, previous, rerank, train_fn)
    settings = _resolve(space, previous, evaluator, trials=trials, sampler=sampler, objectives=objectives,
                        scheduler=scheduler, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, seed=seed,
                        max_retries=max_retries)
    with errors_from(space.source):  # the device and GPUs fail here, before anything is written
        train_cfg = for_trials(replace(space.proxy.train, threads=settings.cpus_per_trial, seed=settings.seed),
                               settings.gpus_per_trial, address)
    data = load_data(space.proxy.data)  # an unreadable dataset fails here, before Ray starts
    gate = _latency_gate(space, run_dir)  # and a latency table of other settings

    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir, "search"):  # one driver a run: a second one stops here, having written nothing
        if previous is None:
            write_text_atomic(run_dir / "space.yaml", space.to_yaml())
        config = _run_config(run_dir, space, settings, data, address, previous)
        config.update(evaluator=evaluator, command=f"{config['command']} --evaluator {evaluator}",
                      supernet=supernet_cfg.to_dict() if supernet_cfg else None, rerank=asdict(rerank_cfg))
        config["command"] += " --rerank" if rerank_cfg.enabled else " --no-rerank"
        write_json_atomic(config_path, config)

        rows = read_rows(run_dir / "trials.jsonl")
        if rows:  # a resumed run: both record files whole again (an append cut off by kill -9 dropped)
            write_rows(run_dir / "trials.jsonl", rows)
        journal = RunJournal(str(run_dir / "optuna.journal"))
        try:
            with quiet_optuna():
                study = _open_study(journal, run_dir.name, settings, n_done=len(rows))
                _reconcile(study, rows, list(settings.objectives))
                remaining = settings.trials - len(rows)
                if remaining > 0 or _supernet_missing(run_dir, supernet_cfg):
                    loop = SearchLoop(space, settings, data, train_cfg, run_dir, address, remaining,
                                      progress or (lambda line: None), gate)
                    _run_trials(loop, study, journal, rows, supernet_cfg if train_fn is None else None, train_fn,
                                progress)
        finally:
            journal.flush()
        rows = read_rows(run_dir / "trials.jsonl")
        reranked = None
        if rerank_cfg.enabled and len(rows) >= settings.trials:  # the last stage of a finished search
            loop = SearchLoop(space, settings, data, train_cfg, run_dir, address, 0, progress or (lambda line: None))
            reranked = _rerank.rerank(loop, rows, rerank_cfg, _budget_record(space))
        wall = (previous or {}).get("wall_seconds", 0.0) + time.monotonic() - started
        if gate is not None and gate.info:  # where the latencies were measured: the target's fingerprint
            config.update(gate.info)
        write_json_atomic(config_path, {**config, "wall_seconds": wall})
        result = _result(run_dir, rows, settings, wall, reranked)
        _write_summary(run_dir, result, settings)
        if progress and result.interrupted:
            progress(f"search stopped after {len(rows)} of {settings.trials} trials; continue it with: "
                     f"shufflesearch search {space.source} --name {run_dir.name} --resume")
        return result


RUN_SETTINGS = ("trials", "sampler", "objectives", "scheduler", "cpus_per_trial", "seed")  # every run records


def _latency_gate(space: SearchSpace, run_dir: Path) -> LatencyGate | None:
    """The run's latency gate when its budget has `latency_ms` (its table, if any, read and checked now)."""
    if space.budget.latency_ms is None:
        return None
    from shufflesearch.driver._latency import LatencyGate

    return LatencyGate(space, run_dir / "rejected.jsonl")


def _supernet_missing(run_dir: Path, supernet_cfg: SupernetConfig | None) -> bool:
    """A supernet run whose trained supernet is gone (a deleted folder): resuming it trains it again."""
    from shufflesearch.supernet._train import CHECKPOINT, checkpoint_dir

    return supernet_cfg is not None and not (checkpoint_dir(run_dir) / CHECKPOINT).is_file()


def _previous_run(run_dir: Path, space: SearchSpace, resume: bool) -> dict[str, Any] | None:
    """The config.json of the run at `run_dir` to continue, None for a new run.

    A folder holding any of a run's files is a run to continue; one whose space.yaml or config.json
    is missing, corrupt, incomplete or of another space cannot be, and nothing is written to it.
    """
    config_path, space_path = run_dir / "config.json", run_dir / "space.yaml"
    found = [p.name for p in (config_path, space_path, run_dir / "trials.jsonl", run_dir / "optuna.journal")
             if p.exists()]
    if not found:
        if resume:
            raise ShuffleSearchError(f"--resume: there is no run to resume at {run_dir}")
        return None
    for path in (config_path, space_path):
        if not path.is_file():
            raise ShuffleSearchError(f"{path}: missing, so the run in {run_dir} (which has {', '.join(found)}) "
                                     "cannot be resumed; restore the file or choose a new --name")
    previous = read_json(config_path, "the run's config")
    missing = [name for name in RUN_SETTINGS if not isinstance(previous, dict) or name not in previous]
    if missing:
        raise ShuffleSearchError(f"{config_path}: {missing[0]}: missing, so the run cannot be resumed; "
                                 "restore the file or choose a new --name")
    SearchSpace.from_yaml(space_path)  # a corrupt space.yaml fails here, naming itself
    if space.to_yaml() != space_path.read_text():
        raise ShuffleSearchError(f"{run_dir}: this run was started with another search space "
                                 f"({space_path}); choose a new --name")
    return previous


def _resolve(space: SearchSpace, previous: dict[str, Any] | None, evaluator: str = "proxy",
             **overrides: Any) -> SearchSettings:
    """The space's `search:` settings (or the resumed run's), with the options given overriding them; a
    sampler that does not go with `evaluator` is refused."""
    # settings added after a run was started take their defaults when it is resumed
    base = {f.name: previous.get(f.name, f.default) for f in fields(SearchSettings)} if previous \
        else vars(space.search)
    if not previous and (space.raw.get("search") or {}).get("scheduler") is None:
        base = {**base, "scheduler": None}  # the file named none: the default follows the objectives given
    if not previous and (space.raw.get("search") or {}).get("sampler") is None:
        base = {**base, "sampler": default_sampler(evaluator)}  # and the sampler the evaluator
    given = {k: v for k, v in overrides.items() if v is not None}
    with errors_from(space.source):
        settings = SearchSettings(**{**base, **given})
        why = sampler_conflict(settings.sampler, evaluator)
        if why:
            raise ShuffleSearchError(why)
        return settings


def _budget_record(space: SearchSpace) -> dict[str, Any]:
    """The budget as config.json records it: the cost basis of every row (`cost.budget_cost`)."""
    b = space.budget
    return {"mflops": b.mflops, "input_size": b.input_size, "num_classes": b.num_classes, "max_params": b.max_params,
            "flops_capped": b.flops_capped, "latency_ms": b.latency_ms,
            "latency": b.latency.to_dict() if b.latency_ms is not None else None}


def _run_config(run_dir: Path, space: SearchSpace, settings: SearchSettings, data: Any, address: str | None,
                previous: dict[str, Any] | None) -> dict[str, Any]:
    settings_dict = {**asdict(settings), "objectives": list(settings.objectives)}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {
        **(previous or {"started": now}),
        "name": run_dir.name,
        "space_name": space.name,
        "space_file": str(space.source),
        **settings_dict,
        "budget": _budget_record(space),
        "proxy": space.proxy.to_dict(),
        "data": data.info(),
        "address": address,
        "command": shlex.join(["shufflesearch", "search", str(space.source), "--name", run_dir.name,
                               "--runs-dir", str(run_dir.parent), "--trials", str(settings.trials),
                               *_budget_options(space.budget), "--seed", str(settings.seed),
                               "--sampler", settings.sampler, "--objectives", ",".join(settings.objectives),
                               "--scheduler", settings.scheduler, "--cpus-per-trial", str(settings.cpus_per_trial),
                               "--max-retries", str(settings.max_retries)]
                              + (["--gpus-per-trial", f"{settings.gpus_per_trial:g}"] if settings.gpus_per_trial else [])),
        "versions": package_versions(),
        "last_resumed": now if previous else None,
    }


def _budget_options(b: Budget) -> list[str]:
    """The CLI options that give budget `b`."""
    options = ["--budget-mflops", f"{b.mflops:g}"] if b.flops_capped else []
    if b.latency_ms is not None:
        options += ["--budget-latency-ms", f"{b.latency_ms:g}", "--latency-target", b.latency.target,
                    "--latency-backend", b.latency.backend] + (["--latency-table", b.latency.table] if b.latency.table else [])
    return options


def _open_study(journal: RunJournal, name: str, settings: SearchSettings, n_done: int) -> optuna.Study:
    from optuna.storages import JournalStorage

    seed = settings.seed + n_done  # a resumed sampler must not replay the first part's proposals
    sampler = {
        "tpe": lambda: _tpe(settings, model_seed(seed, "tpe")),
        "gp": lambda: optuna.samplers.GPSampler(seed=model_seed(seed, "gp"), warn_independent_sampling=False,
                                                n_startup_trials=settings.tpe_startup_trials),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=model_seed(seed, "nsga2")),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        # never asked: the supernet's loop adds its candidates to the study as trials (`driver._evolution`)
        "evolution": lambda: optuna.samplers.RandomSampler(seed=seed),
    }[settings.sampler]()
    return optuna.create_study(study_name=name, storage=JournalStorage(journal), sampler=sampler, load_if_exists=True,
                               directions=[OBJECTIVES[o].direction for o in settings.objectives])


def _tpe(settings: SearchSettings, seed: int) -> optuna.samplers.TPESampler:
    """TPE as `settings` say; multivariate TPE models each group of choices that occur together (Optuna's
    `group`: a v1 stage's groups are not drawn for a v2 one), whose experimental-feature warning is Optuna's
    note to itself, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.tpe_startup_trials,
                                          multivariate=settings.tpe_multivariate, group=settings.tpe_multivariate,
                                          constant_liar=settings.tpe_constant_liar)


def model_seed(seed: int, sampler: str) -> int:
    """The seed a model-based sampler gets for the run's `seed`: its own stream, so that its random start-up
    proposals are not the random sampler's draws at the same seed (with one stream, a TPE run and a random
    run of one seed would share their first `tpe_startup_trials` architectures, and a comparison of the
    two would be decided by the later trials alone)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(sampler.encode())]).generate_state(1)[0])


def _reconcile(study: optuna.Study, rows: list[dict[str, Any]], objectives: list[str]) -> None:
    """Close study trials a killed driver left open: recorded ones with their record, others FAIL."""
    from shufflesearch.driver._study_searcher import tell

    recorded = {r["number"]: r for r in rows}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.number in recorded:
            tell(study, t.number, recorded[t.number], objectives)
        else:  # interrupted before it finished: it is trained again as a new trial
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def _run_trials(loop: SearchLoop, study: optuna.Study, journal: RunJournal, rows: list[dict[str, Any]],
                supernet_cfg: SupernetConfig | None, train_fn: Callable | None, progress: Callable[[str], None] | None) -> None:
    """Run the remaining trials, as paths of the supernet (`supernet_cfg`) or as Tune's proxy trials; each
    finished one is recorded in trials.jsonl (appended to `rows`) and printed, then told to the study."""
    from shufflesearch.driver._study_searcher import StudySearcher

    # the one searcher either loop asks and tells through, given its `finish`
    new_searcher = partial(StudySearcher, study, loop.latency.sample if loop.latency else loop.space.sample,
                           list(loop.settings.objectives), rows=list(rows), sync=journal.flush)
    printer = Progress(loop.settings.trials, progress, label=lambda r: f"trial {r['number']:>3}", done=rows,
                       best=partial(best_row, objectives=list(loop.settings.objectives)))  # summary.json's best
    log = RecordLog(loop.run_dir / "trials.jsonl", rows, announce=printer, batched=supernet_cfg is not None)
    record = partial(_record, log, _budget_record(loop.space), 1 if supernet_cfg else loop.train_cfg.epochs,
                     loop.settings.seed, loop.latency)
    if supernet_cfg is not None:
        from shufflesearch.driver._supernet import score_candidates

        score_candidates(loop, new_searcher(record), log.write, supernet_cfg)
    else:
        _run_tune(loop, new_searcher, record, train_fn)


def _record(log: RecordLog, budget: dict[str, Any], max_epochs: int, seed: int, gate: LatencyGate | None,
            number: int, arch: Arch, result: dict[str, Any], status: str) -> dict[str, Any]:
    """A finished trial's row (`make_row` of its last result, with its latency on the target when the run
    has a latency `gate`), kept, written and printed by `log`: the `finish` of either loop's `StudySearcher`,
    its first five arguments bound by `search`."""
    if gate is not None:
        result = {**result, **gate.fields(arch)}
    return log.add(make_row(arch, result, status, number=number, budget=budget, max_epochs=max_epochs, seed=seed))


def _run_tune(loop: SearchLoop, new_searcher: Callable[..., StudySearcher], record: Callable[..., dict[str, Any]],
              train_fn: Callable | None) -> None:
    """Run the remaining trials as a Tune experiment (`tune/part<k>`) of `run_trial`s, each recorded by
    `record` with the attempts Ray took for it."""
    from ray import tune

    from shufflesearch._exec._ray import concurrency, ray_session
    from shufflesearch.driver._latency import opened
    from shufflesearch.driver._study_searcher import TrialRetries, TrialWeights

    space, settings, train_cfg, run_dir = loop.space, loop.settings, loop.train_cfg, loop.run_dir
    with ray_session(loop.address, loop.ray_log), opened(loop.latency):
        check_cluster_gpus(settings.gpus_per_trial)
        jobs_at_once = concurrency(settings.cpus_per_trial, settings.gpus_per_trial)
        retries = TrialRetries(settings.max_retries, loop.progress, loop.ray_log)

        def finish(number: int, arch: Arch, result: dict[str, Any], status: str) -> dict[str, Any]:
            lost = status == "failed" and not result  # Ray lost its every attempt
            faults = retries.faults(number, failed=lost)
            result = {**result, "attempts": len(faults) + (not lost), "faults": faults}
            if lost:
                result["error"] = lost_error(faults, loop.ray_log)
            return record(number, arch, result, status)

        trainable = tune.with_resources(
            # with a latency budget the gate measured each candidate on the target: the trial measures nothing
            tune.with_parameters(run_trial, data=loop.data, train_cfg=train_cfg, train_fn=train_fn,
                                 input_size=None if loop.latency else space.budget.input_size),
            ray_resources(settings.cpus_per_trial, settings.gpus_per_trial))
        tune_dir = (run_dir / "tune").resolve()
        part = 1 + (len(list(tune_dir.glob("part*"))) if tune_dir.exists() else 0)
        gpus = f" + {settings.gpus_per_trial:g} GPU" if settings.gpus_per_trial else ""
        loop.progress(f"{run_dir}: {loop.remaining} trial(s) to run, {jobs_at_once} at a time, "
                      f"{settings.cpus_per_trial} CPU{gpus} each on {train_cfg.device}; budget "
                      f"{space.budget.describe()}")
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=new_searcher(finish),
                                        scheduler=_scheduler(space, settings, train_cfg.epochs),
                                        num_samples=loop.remaining, max_concurrent_trials=jobs_at_once,
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=f"part{part}", storage_path=str(tune_dir), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=settings.max_retries),
                                      # TrialWeights first: it takes the weights out of the last
                                      # report before any other callback or Tune's state sees it
                                      callbacks=[TrialWeights((run_dir / "weights").resolve()), retries]),
        )
        tuner.fit()


def _scheduler(space: SearchSpace, settings: SearchSettings, epochs: int) -> Any:
    """The Tune scheduler `settings.scheduler` names, or None (every trial trains all `epochs`).

    An early-stopped trial's record says where it stopped: its `epochs` are the rung's.
    """
    from ray.tune.schedulers import ASHAScheduler

    from shufflesearch.driver._moasha import MOASHA

    if settings.scheduler == "asha" and epochs > 1:
        # one rung at half the epochs: a first-epoch score is too noisy to stop on
        return ASHAScheduler(time_attr="epoch", metric="search_acc", mode="max", max_t=epochs,
                             grace_period=math.ceil(epochs / 2), reduction_factor=2)
    if settings.scheduler == "moasha":
        return MOASHA(_points(space, settings.objectives), max_t=epochs, grace_period=settings.grace_period,
                      reduction_factor=settings.reduction_factor)
    return None


def _points(space: SearchSpace, objectives: Sequence[str]) -> Callable[[dict[str, Any], dict[str, Any]], tuple]:
    """A trial's objective values from its config and a report, each minimised (maximised ones negated).

    MFLOPs and params are the architecture's, known before it trains; latency is in every report.
    """
    sign = {o: -1.0 if OBJECTIVES[o].direction == "maximize" else 1.0 for o in objectives}

    def points(config: dict[str, Any], result: dict[str, Any]) -> tuple[float, ...]:
        c = space.cost(Arch.from_dict(config["arch"]))
        values = {**result, "mflops": c.mflops, "params": c.params}
        return tuple(sign[o] * values[OBJECTIVES[o].field] for o in objectives)
    return points


def _result(run_dir: Path, rows: list[dict[str, Any]], settings: SearchSettings, wall: float,
            rerank: list[dict[str, Any]] | None = None) -> SearchResult:
    """The search's result; with a re-ranking's `rerank_results`, its best and front are the re-ranked ones."""
    order = reranked(rerank)
    best, pareto = best_row(rows, settings.objectives, order), pareto_front(rows, settings.objectives, order)
    return SearchResult(run_dir, rows, best, pareto, wall, interrupted=len(rows) < settings.trials, rerank=rerank)


def _write_summary(run_dir: Path, result: SearchResult, settings: SearchSettings) -> None:
    write_json_atomic(run_dir / "summary.json", {
        "trials": len(result.rows), "requested": settings.trials, "counts": result.counts,
        "wall_seconds": result.wall_seconds,
        "train_seconds": sum(r.get("train_seconds") or 0.0 for r in result.rows),
        "best": result.best, "pareto": [r["number"] for r in result.pareto],
        # the proxy's own best beside it, and the re-ranking's CPU seconds (its rows' `cpu_seconds`)
        **({"proxy_best": (best_row(result.rows, settings.objectives) or {}).get("number"), "rerank": {
            "results": result.rerank, "cpu_seconds": sum(r["cpu_seconds"] for r in result.rerank)}}
           if result.rerank is not None else {}),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    })
