"""Hand-designed baselines trained under a run's exact proxy protocol, so a report compares like with like.

The protocol is the run's config.json: its `proxy` section (data and training), its seed, its threads
per trial (`cpus_per_trial`) and the budget input size for costs and latency, exactly as a search
trial uses them. Rows are recorded in runs/<run>/baselines.jsonl with the trial fields plus `model`
(number null); training a model again replaces its row.

By default the baselines are the zoo models within the run's budget (`zoo_within_budget`, the ones a
found architecture competes with at no greater cost), trained first, then as extras those above it by
at most 1.5x; the report marks a baseline "above budget" by its recorded cost (`runs.within_budget`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from shufflesearch._exec._devices import for_trials
from shufflesearch._exec._lock import run_lock
from shufflesearch._exec._progress import Progress
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.evaluation._final import zoo_within_budget
from shufflesearch.evaluation._jobs import JobPool, from_run
from shufflesearch.genome._cost import budget_cost
from shufflesearch.genome._zoo import ZOO
from shufflesearch.runs._records import RecordLog, make_row, read_rows, write_rows
from shufflesearch.runs._run import load_run
from shufflesearch.space._file import Budget

NEAR_BUDGET = 1.5  # default extras: zoo models above the budget by at most this factor


def _field(config: Mapping[str, Any], path: Path, *keys: str) -> Any:
    value: Any = config
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise ShuffleSearchError(f"{path}: {'.'.join(keys)}: missing (needed to repeat the run's protocol)")
        value = value[key]
    return value


def default_baselines(budget: Mapping[str, Any], address: str | None = None) -> tuple[list[str], list[str]]:
    """The default baselines of a run with this budget: (the zoo models within it, `zoo_within_budget`;
    the extras: those above it within 1.5x it: MFLOPs, multiply-adds on the run's cost basis, and with a
    latency budget the latency on its target), each list cheapest first."""
    mflops = {name: budget_cost(arch, budget).mflops for name, arch in ZOO.items()}
    within = sorted(zoo_within_budget(budget, address=address), key=mflops.get)
    near = zoo_within_budget(budget, NEAR_BUDGET, address)
    return within, sorted((n for n in near if n not in within), key=mflops.get)


def _defaults_line(budget: Mapping[str, Any], within: Sequence[str], extras: Sequence[str]) -> str:
    """What the default baselines are, in one line; it says so where no zoo model fits the budget."""
    what = Budget.from_record(budget).describe()
    fit = (f"{len(within)} zoo model(s) within the budget of {what} first" if within
           else f"no zoo model fits the budget of {what}")
    return fit + (f"; {len(extras)} above it, up to {NEAR_BUDGET:g}x, as extras marked 'above budget'" if extras
                  else "")


def run_baselines(run_dir: str | Path, models: Sequence[str] | None = None, *, address: str | None = None,
                  progress: Callable[[str], None] | None = None,
                  gpus_per_trial: float | None = None, max_retries: int | None = None) -> list[dict[str, Any]]:
    """Proxy-train `models` (registered names; default: the zoo within the budget, then as extras those
    above it by at most 1.5x, see `default_baselines`) as the run's trials were.

    They train in parallel through Ray (`address`: a running cluster; default a local Ray), as many at
    a time as the run's trials were, each with `gpus_per_trial` GPUs (default: the run's). Returns the new rows, in the order asked for; baselines.jsonl is
    rewritten atomically as each model finishes, and `progress` gets one line per model. A model whose
    Ray worker or node died trains again, up to `max_retries` times (default: the run's).
    """
    from shufflesearch.genome._catalog import get_arch
    from shufflesearch.space._configs import proxy_config_from_dict

    run = load_run(run_dir)
    path, config = run.path, run.config
    config_path = path / "config.json"
    input_size = _field(config, config_path, "budget", "input_size")
    _field(config, config_path, "budget", "mflops")
    proxy = proxy_config_from_dict(_field(config, config_path, "proxy"), f"{config_path}")
    seed = _field(config, config_path, "seed")
    gpus = from_run(config, "gpus_per_trial", gpus_per_trial)
    with errors_from(str(config_path)):
        train_cfg = for_trials(replace(proxy.train, seed=seed, threads=_field(config, config_path, "cpus_per_trial")),
                               gpus, address)
    within, extras = default_baselines(config["budget"], address)
    names = list(models) if models else within + extras
    if not names:
        raise ShuffleSearchError(f"{config_path}: budget = {Budget.from_record(config['budget']).describe()}: no zoo "
                                 f"model within it or {NEAR_BUDGET}x above it; name the baselines with --models")
    if not models and progress:
        progress(_defaults_line(config["budget"], within, extras))
    archs = {name: get_arch(name) for name in names}  # unknown names fail before any training; each name once
    data = load_data(proxy.data)

    on_target = None  # with a latency budget, each model's latency on its target, as a trial row has it
    if config["budget"].get("latency_ms") is not None:
        from shufflesearch.driver._latency import target_latencies

        on_target = target_latencies(config["budget"], archs, address)

    def row(name: str, report: dict[str, Any]) -> dict[str, Any]:
        report = {**report, **on_target[name]} if on_target else report
        return make_row(archs[name], report, report["status"], number=None, budget=config["budget"],
                        max_epochs=train_cfg.epochs, seed=seed, model=name)

    with run_lock(path, "baselines"):  # not while another driver searches or evaluates the run
        rows_path = path / "baselines.jsonl"
        printer = Progress(len(archs), progress, label=lambda r: r["model"])
        log = RecordLog(rows_path, read_rows(rows_path), key=lambda r: r.get("model"), announce=printer)
        jobs = {name: {"arch": arch.to_dict(), "seed": seed, "latency_size": None if on_target else input_size}
                for name, arch in archs.items()}
        pool = JobPool(data, train_cfg, train_cfg.threads, gpus, from_run(config, "max_retries", max_retries),
                       address, path / "ray.log")
        pool.run(jobs, row, log, printer)
        new = sorted((r for r in log.rows if r.get("model") in archs), key=lambda r: list(archs).index(r["model"]))
        write_rows(rows_path, [r for r in log.rows if r.get("model") not in archs] + new)  # in the order asked
    return new
