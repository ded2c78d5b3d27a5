"""The `shufflesearch` command: argument parsing and printing only; every command calls the library.

Errors users can cause arrive as `ShuffleSearchError`: the CLI prints its one line to stderr and exits 2.
Each sub-command is a pair: `_add_<name>(subparsers)` declares it, `_cmd_<name>(args)` runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from shufflesearch import __version__
from shufflesearch._exec._devices import DEVICES, local_device
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.space._configs import LatencySettings
from shufflesearch.space._file import EVALUATORS
from shufflesearch.space._objectives import OBJECTIVE_CHOICES, cost_axis
from shufflesearch.space._space import SearchSettings

COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {}
LATENCY_BACKENDS = typing.get_args(typing.get_type_hints(LatencySettings)["backend"])  # as SearchSettings.choices


def _command(name: str, help: str) -> Callable:
    """Register `_cmd_<name>`; its parser is built by the matching `_add_<name>` below."""
    def wrap(fn: Callable) -> Callable:
        COMMANDS[name] = fn
        fn.help = help
        return fn
    return wrap


class _Renamed(argparse.Action):
    """An option's spelling before 0.2: still read until the next release, with a one-line notice on stderr."""

    def __init__(self, *args: object, new: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.new} (the old spelling goes "
              "in the next release)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_renamed(p: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: object) -> None:
    """`old`, the former spelling of option `new` (same `dest`): read with a deprecation notice, not in --help."""
    p.add_argument(old, dest=dest, action=partial(_Renamed, new=new), help=argparse.SUPPRESS, **kwargs)


def _add_cost_input_size(p: argparse.ArgumentParser) -> None:
    """The resolution costs are counted at; a data option sets the training images' (`--image-size`)."""
    p.add_argument("--cost-input-size", dest="input_size", type=int, default=224, metavar="N",
                   help="input resolution the MMACs are counted at (default 224)")
    _add_renamed(p, "--input-size", "--cost-input-size", "input_size", type=int)


def _add_cpus(p: argparse.ArgumentParser, what: str, default: str) -> None:
    """--cpus-per-trial, the one name of the CPUs (= torch threads) each trial or training gets."""
    p.add_argument("--cpus-per-trial", type=int, metavar="N",
                   help=f"CPUs (= torch threads) per {what} (default {default})")


def _given(**options: object) -> dict[str, object]:
    """The options the user gave (not None): what is merged over the space's settings."""
    return {k: v for k, v in options.items() if v is not None}


# --- models ------------------------------------------------------------------------------------
def _add_models(p: argparse.ArgumentParser) -> None:
    _add_cost_input_size(p)


@_command("models", "list the zoo and found models: MMACs, params, stages")
def _cmd_models(args: argparse.Namespace) -> int:
    from shufflesearch.genome._catalog import list_archs
    from shufflesearch.genome._cost import cost

    rows = [(name, cost(arch, args.input_size), arch) for name, arch in list_archs().items()]
    width = max(len(r[0]) for r in rows)
    print(f"{'name':<{width}}  {'MMACs':>8}  {'params':>10}  stages (unit,groups,kernel x repeats: channels)")
    for name, c, arch in rows:
        print(f"{name:<{width}}  {c.macs / 1e6:8.2f}  {c.params:10,d}  {arch.summary()}")
    return 0


# --- cost --------------------------------------------------------------------------------------
def _add_cost(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a registered model name or a genome file (ARCH.yaml / .json)")
    _add_cost_input_size(p)
    p.add_argument("--num-classes", type=int, default=1000)


@_command("cost", "exact MACs (the papers' FLOPs) and params of a model or genome file")
def _cmd_cost(args: argparse.Namespace) -> int:
    from shufflesearch.genome._catalog import resolve_arch
    from shufflesearch.genome._cost import cost

    arch = resolve_arch(args.model)
    c = cost(arch, args.input_size, args.num_classes)
    print(f"{args.model}: {c.macs / 1e6:.2f} MMACs (multiply-adds, the papers' 'MFLOPs') at "
          f"{args.input_size}x{args.input_size}, {c.params:,d} params, hash {arch.hash}")
    print(f"  {arch.summary()}")
    return 0


# --- latency / latency-table -------------------------------------------------------------------
def _add_latency_settings(p: argparse.ArgumentParser, default: str) -> None:
    """The `budget.latency` settings as options: where and how a model is timed (see `LatencySettings`)."""
    p.add_argument("--target", help="local, cuda, or a Ray custom resource a node carries (`ray start --resources "
                                    "'{\"rpi4\": 1}'`), where every measurement runs, one at a time "
                                    f"(default {default}local)")
    p.add_argument("--backend", choices=LATENCY_BACKENDS, help=f"what runs the model (default {default}torch)")
    for flag, what, fallback in (("--batch", "images a batch", 1), ("--threads", "CPU threads of the timed model", 1),
                                 ("--warmup", "untimed runs first", 5), ("--runs", "timed runs", 30)):
        p.add_argument(flag, type=int, metavar="N", help=f"{what} (default {default}{fallback})")
    _add_address(p)


def _latency_options(args: argparse.Namespace) -> dict[str, object]:
    return _given(target=args.target, backend=args.backend, batch=args.batch, threads=args.threads,
                  warmup=args.warmup, runs=args.runs)


def _add_latency(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a registered model name (zoo, found, or any timm model), a genome file "
                                 "(ARCH.yaml / .json), or with --trial a run (name under --runs-dir or directory)")
    p.add_argument("--trial", type=int, metavar="N", help="measure trial N of the run MODEL")
    _add_latency_settings(p, "")
    p.add_argument("--input-size", type=int, default=224, metavar="N", help="image side in pixels (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier width (default 1000)")
    p.add_argument("--json", metavar="FILE", help="also write the measurement, its node and fingerprint as JSON")


def _latency_model(args: argparse.Namespace) -> object:
    """MODEL as an `Arch` (ours, a genome file, a run's trial) or, for any other timm model, the module."""
    from shufflesearch.genome._arch import Arch
    from shufflesearch.genome._catalog import resolve_arch

    if args.trial is not None:
        from shufflesearch.export import select
        from shufflesearch.runs._run import load_run, resolve_run

        (_, row), = select(load_run(resolve_run(args.model, args.runs_dir)), [args.trial])
        return Arch.from_dict(row["arch"])
    try:
        return resolve_arch(args.model)
    except ShuffleSearchError:
        import timm

        if not timm.is_model(args.model):
            raise
        return timm.create_model(args.model, num_classes=args.num_classes)


@_command("latency", "measure a model's inference latency on a target: median, IQR and p90 over timed runs, "
                     "the node it ran on and the target's fingerprint")
def _cmd_latency(args: argparse.Namespace) -> int:
    from shufflesearch._io import write_json_atomic
    from shufflesearch.driver._latency import measure_on_target

    settings = LatencySettings(**_latency_options(args), input_size=args.input_size)
    m, node = measure_on_target(_latency_model(args), settings, settings.input_size, args.num_classes,
                                address=args.address)
    what = f"trial {args.trial} of run {args.model}" if args.trial is not None else args.model
    print(f"{what}: median {m.median_ms:.3f} ms, IQR {m.iqr_ms:.3f} ms, p90 {m.p90_ms:.3f} ms over {m.runs} runs "
          f"(batch {m.batch}, {m.input_size}x{m.input_size}, {m.threads} thread{'s' if m.threads > 1 else ''}, "
          f"{m.backend} on {m.device}, {'CPU time of the thread' if m.clock == 'thread_cpu' else 'wall clock'})")
    load = os.getloadavg() if node == "local" else None  # other work on this machine slows what it times
    print(f"node: {node}" + (f" (this machine, load average {load[0]:.2f} over the last minute)" if load else ""))
    print("fingerprint: " + ", ".join(f"{k}={v}" for k, v in m.fingerprint.items()))
    if args.json:
        write_json_atomic(args.json, {"model": what, "node": node, "load_average": load, **m.to_dict()})
    return 0


def _add_latency_table(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help=SPACE_HELP)
    p.add_argument("--out", required=True, metavar="FILE", help="where the table goes (JSON)")
    _add_latency_settings(p, "the space's budget.latency, else ")
    p.add_argument("--input-size", type=int, metavar="N",
                   help="image side in pixels (default: the space's budget.latency.input_size, else its budget's)")


@_command("latency-table", "measure every unit configuration a space can produce on a target, for a search to "
                           "predict latency from (budget.latency.table)")
def _cmd_latency_table(args: argparse.Namespace) -> int:
    from shufflesearch.driver._latency import build_table_on_target
    from shufflesearch.space._space import SearchSpace

    space = SearchSpace.from_yaml(args.space)
    space = space.with_budget(latency={**_latency_options(args), **_given(input_size=args.input_size)})
    table = build_table_on_target(space, space.budget.latency, address=args.address, progress=print)
    table.save(args.out)
    print(f"latency table of {space.name} on {space.budget.latency.target}: {args.out}; give it to a search as "
          f"budget.latency.table or --latency-table")
    return 0


# --- spaces / space ----------------------------------------------------------------------------
SPACE_HELP = "a search space file, or the name of a shipped space (`shufflesearch spaces` lists them)"


def _add_spaces(p: argparse.ArgumentParser) -> None:
    """No options."""


@_command("spaces", "list the search spaces that come with shufflesearch: name, budget, description")
def _cmd_spaces(args: argparse.Namespace) -> int:
    from shufflesearch.space._space import SearchSpace, shipped_spaces

    spaces = [SearchSpace.from_yaml(path) for path in shipped_spaces().values()]
    width = max(len(s.name) for s in spaces)
    budget = max(len(s.budget.describe()) for s in spaces)
    print(f"{'name':<{width}}  {'budget':<{budget}}  description")
    for s in spaces:
        print(f"{s.name:<{width}}  {s.budget.describe():<{budget}}  {s.description}")
    print(f"files: {Path(spaces[0].source).parent}; `shufflesearch search NAME` runs one, "
          "`shufflesearch space NAME` shows it")
    return 0


def _add_space(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help=SPACE_HELP)
    p.add_argument("--samples", type=int, default=5, help="architectures to sample and show (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of Optuna's RandomSampler (default 0)")


@_command("space", "validate a search space; show its size, cost range and sampled architectures")
def _cmd_space(args: argparse.Namespace) -> int:
    import optuna

    from shufflesearch._exec._optuna import quiet_optuna
    from shufflesearch.space._space import SearchSpace

    space = SearchSpace.from_yaml(args.file)
    b, (lo, hi) = space.budget, space.cost_range()
    at = f"at {b.input_size}x{b.input_size}, {b.num_classes} classes"
    cap = f", at most {b.max_params:,d} params" if b.max_params else ""
    print(f"{space.name}: {space.description}")
    print(f"budget: {b.describe()}, {b.num_classes} classes{cap}; samples aim at {b.min_fraction:g}x to 1x of it")
    if b.latency_ms is not None:
        print("  the samples below are not checked against the latency budget: a search measures or predicts it")
    print(f"architectures: {space.count():,d} discrete structures, each at a width multiplier in "
          f"[{space.width_multiplier[0]:g}, {space.width_multiplier[1]:g}] (channels rounded to divisors)")
    print(f"cost range, ignoring the budget: {lo.mflops:.2f} to {hi.mflops:.2f} MFLOPs (multiply-adds) {at}")
    with quiet_optuna():  # no INFO line for this throwaway study
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    for _ in range(args.samples):
        trial = study.ask()
        arch = space.sample(trial)
        if arch is None:
            print(f"  #{trial.number:<3} rejected: its smallest width costs "
                  f"{trial.user_attrs['smallest_mflops']:.2f} MFLOPs (multiply-adds), over the budget")
        else:
            print(f"  #{trial.number:<3} {trial.user_attrs['mflops']:8.2f} MFLOPs {trial.user_attrs['params']:>10,d} "
                  f"params  {arch.hash}  {arch.summary()}")
    return 0


# --- report ------------------------------------------------------------------------------------
def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run name (under runs/) or run directory")
    p.add_argument("--objectives", default=None,
                   help=f"{' | '.join(OBJECTIVE_CHOICES)}: accuracy against which cost "
                        "(default: the run's own, else acc,mflops)")
    p.add_argument("--out", default=None,
                   help="where the comparison of several runs goes (default: the first run's report/)")


@_command("report", "Pareto front, hypervolume, plots and an offline HTML page of runs; compare several")
def _cmd_report(args: argparse.Namespace) -> int:
    from shufflesearch.report._report import compare_runs, write_report
    from shufflesearch.runs._run import load_run

    if args.objectives is not None:
        cost_axis(args.objectives)
    for run in args.runs:  # fail on a bad run before writing anything
        load_run(run)
    for run in args.runs:
        print(write_report(run, args.objectives))
    if len(args.runs) > 1:
        print(compare_runs(args.runs, args.out, args.objectives))
    return 0


def _add_gpus(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--gpus-per-trial", type=float, metavar="G",
                   help=f"GPUs per trial, a fraction shares one (0.25: four a GPU; default {default}); "
                        "the space's proxy.device auto trains on them")


def _add_retries(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--max-retries", type=int, metavar="N",
                   help=f"times a trial whose Ray worker or node died starts again (default {default}); "
                        "a trial that raises is not retried")


def _add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="address of a running Ray cluster (default: start a local one)")


# --- baseline ----------------------------------------------------------------------------------
def _add_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run name (under runs/) or run directory")
    p.add_argument("--models", default=None,
                   help="comma-separated registered names (default: the zoo models within the budget, then those "
                        "above it by at most 1.5x as extras, marked 'above budget')")
    _add_gpus(p, "the run's")
    _add_retries(p, "the run's")
    _add_address(p)


@_command("baseline", "train hand-designed models under a run's exact proxy protocol, for its report")
def _cmd_baseline(args: argparse.Namespace) -> int:
    from shufflesearch.evaluation._baselines import run_baselines

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    rows = run_baselines(args.run, models, progress=print, gpus_per_trial=args.gpus_per_trial,
                         max_retries=args.max_retries, address=args.address)
    print(f"{len(rows)} baseline(s) recorded; `shufflesearch report {args.run}` shows them")
    return 0


# --- train-proxy -------------------------------------------------------------------------------
def _add_train_proxy(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a registered model name or a genome file (ARCH.yaml / .json)")
    p.add_argument("--data", dest="dataset", help="dataset spec (default digits): digits, mnist:DIR, "
                   "fashion_mnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR, timm:NAME:DIR")
    for flag, kind in (("--epochs", int), ("--image-size", int), ("--batch-size", int), ("--lr", float),
                       ("--seed", int), ("--subset-per-class", int)):
        p.add_argument(flag, type=kind)
    p.add_argument("--cpus-per-trial", dest="threads", type=int, metavar="N",
                   help="CPUs (= torch threads) of the training (default 1)")
    _add_renamed(p, "--threads", "--cpus-per-trial", "threads", type=int)
    p.add_argument("--optimizer", choices=["sgd", "adamw"])
    p.add_argument("--schedule", choices=["linear", "cosine"])
    p.add_argument("--device", choices=DEVICES, help="where to train (default auto: CUDA if available)")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], help="mixed precision (default none)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction)
    p.add_argument("--download", action="store_true", default=None, help="fetch cifar/timm data if missing")


@_command("train-proxy", "train a model briefly on proxy data, the way a search trial scores it")
def _cmd_train_proxy(args: argparse.Namespace) -> int:
    from dataclasses import fields, replace

    from tqdm import tqdm

    from shufflesearch.data import load_data
    from shufflesearch.genome._catalog import resolve_arch
    from shufflesearch.genome._cost import cost
    from shufflesearch.space._configs import ProxyConfig
    from shufflesearch.train._proxy import epoch_line, train_proxy

    arch = resolve_arch(args.model)
    defaults = ProxyConfig()

    def overrides(cfg):
        return replace(cfg, **{f.name: getattr(args, f.name) for f in fields(cfg)
                               if getattr(args, f.name, None) is not None})
    data_cfg, train_cfg = overrides(defaults.data), overrides(defaults.train)
    device = local_device(train_cfg.device)  # a missing GPU fails before the data are read
    data = load_data(data_cfg)
    c = cost(arch, data.image_size, data.num_classes, data.in_chans)
    print(f"{args.model}: {c.macs / 1e6:.2f} MMACs, {c.params:,d} params at {data.image_size}x{data.image_size}")
    print(f"data  {data.summary()}")
    print(f"train {', '.join(f'{k}={v}' for k, v in vars(train_cfg).items())} (on {device})")
    with tqdm(total=train_cfg.epochs, unit="epoch", leave=False) as bar:
        def report(epoch: int, m: dict[str, float]) -> None:
            bar.write(epoch_line(m))
            bar.update()
        result = train_proxy(arch, data, train_cfg, report)
    best = result.best
    print(f"{result.status} after {result.epochs} epochs in {result.seconds:.1f}s"
          + (f": final {result.acc_key} {result.final[result.acc_key]:.4f}, best {best[result.acc_key]:.4f} "
             f"(epoch {best['epoch']})"
             if best else ""))
    return 0 if result.status == "complete" else 1


# --- search ------------------------------------------------------------------------------------
def _add_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help=SPACE_HELP)
    p.add_argument("--name", help="run name: results go to runs/NAME (default: the space's name)")
    p.add_argument("--trials", type=int, help="number of trials (default: the space's search.trials)")
    p.add_argument("--budget-mflops", type=float,
                   help="FLOPs budget in millions of multiply-adds (the papers' MFLOPs) at the space's input size")
    p.add_argument("--budget-latency-ms", type=float, metavar="MS",
                   help="latency budget: milliseconds of inference on the latency target (the space's "
                        "budget.latency settings); a candidate over it is never trained")
    p.add_argument("--latency-target", metavar="NAME",
                   help="where latency is measured: local, cuda, or a Ray custom resource a node carries "
                        "(`ray start --resources '{\"rpi4\": 1}'`; default: the space's budget.latency.target, local)")
    p.add_argument("--latency-backend", choices=LATENCY_BACKENDS,
                   help="what runs the measured model (default: the space's budget.latency.backend, torch)")
    p.add_argument("--latency-table", metavar="FILE",
                   help="predict latency from this table (`shufflesearch latency-table`) instead of measuring")
    p.add_argument("--sampler", choices=SearchSettings.choices("sampler"))
    p.add_argument("--objectives", choices=OBJECTIVE_CHOICES)
    p.add_argument("--scheduler", choices=SearchSettings.choices("scheduler"),
                   help="early stopping of weak trials (default: the space's search.scheduler, else moasha for "
                        "two objectives, asha for one)")
    _add_cpus(p, "trial", "the space's search.cpus_per_trial, 1")
    p.add_argument("--evaluator", choices=EVALUATORS,
                   help="score candidates by proxy training, or as paths of a trained weight-sharing supernet "
                        "(default: the space's evaluator, proxy)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="supernet evaluator: data-parallel Ray Train workers training the supernet "
                        "(default: the space's supernet.workers, 1)")
    p.add_argument("--storage", metavar="PATH|URI",
                   help="supernet evaluator: where Ray Train keeps the supernet training's checkpoints, a path or "
                        "URI every node reaches (NFS, s3://...); needed on a cluster whose other nodes may run its "
                        "workers (default: the run's, else the space's supernet.storage, else Ray's ~/ray_results)")
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction,
                   help="after the last trial, train the trials within the noise of the leader again at the space's "
                        "rerank: fidelity (more epochs and data, 2 seeds) and take the best and the front's top from "
                        "that (default: the space's rerank.enabled, off)")
    _add_gpus(p, "the space's search.gpus_per_trial, 0")
    _add_retries(p, "the space's search.max_retries, 2")
    _add_address(p)
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true",
                   help="continue the run of this name (the same --name again does so too)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default runs/)")
    p.add_argument("--baselines", action="store_true",
                   help="also train the zoo models within 1.5x the budget under the same proxy, for the report")


@_command("search", "search the space's architectures under its FLOPs and/or latency budget with Ray Tune + Optuna")
def _cmd_search(args: argparse.Namespace) -> int:
    from shufflesearch.pipeline import run_pipeline
    from shufflesearch.space._file import scheduler_conflict
    from shufflesearch.space._space import SearchSpace

    space = SearchSpace.from_yaml(args.space)
    why = args.scheduler and scheduler_conflict(args.scheduler, space.raw.get("search") or {})
    if why:  # the file's moasha settings, which this --scheduler would ignore
        raise ShuffleSearchError(f"--scheduler {args.scheduler}: {space.source}: {why}")
    done = run_pipeline(space, baselines=args.baselines, address=args.address, name=args.name,
                        evaluator=args.evaluator, workers=args.workers, storage=args.storage,
                        trials=args.trials, budget_mflops=args.budget_mflops,
                        budget_latency_ms=args.budget_latency_ms,
                        latency=_given(target=args.latency_target, backend=args.latency_backend,
                                       table=args.latency_table) or None, sampler=args.sampler,
                        objectives=args.objectives, scheduler=args.scheduler, cpus_per_trial=args.cpus_per_trial,
                        gpus_per_trial=args.gpus_per_trial, seed=args.seed, max_retries=args.max_retries,
                        resume=args.resume, runs_dir=args.runs_dir, rerank=args.rerank)
    result = done.search
    if result.interrupted:  # search() has said how to resume
        return 130
    counts = ", ".join(f"{n} {s}" for s, n in result.counts.items() if n)
    print(f"\n{len(result.rows)} trials ({counts}) in {result.wall_seconds:.0f}s; results in {result.run_dir}/")
    if done.best_model is not None:
        b = result.best
        print(f"best: trial {b['number']}  search acc {b['search_acc']:.3f}  {b['mflops']:.2f} MFLOPs (multiply-adds)  "
              f"{b['params']:,d} params  {b['summary']}")
        if b.get("rerank_acc") is not None:
            print(f"      re-ranked: search acc {b['rerank_acc']:.3f} (mean over the re-ranking's seeds)")
        print(f"exported {len(done.pareto_models) + 1} models to {done.best_model.parent}/")
    print(f"report: {done.report}")
    if done.best_model is not None:
        print("the best model, in any Python process started in this directory:")
        print(f"  import shufflesearch, timm; model = timm.create_model({done.best_model.name!r}, pretrained=True)")
    return 0


# --- final -------------------------------------------------------------------------------------
def _add_final(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run name (under runs/) or run directory")
    p.add_argument("--top", type=int, default=3,
                   help="found architectures to retrain: the most accurate, or points spread along the "
                        "two-objective front (default 3)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per architecture (default 3)")
    p.add_argument("--epochs", type=int, help="final training epochs (default: 3x the proxy's)")
    p.add_argument("--subset-per-class", type=int,
                   help="training images per class (default: the whole training split)")
    p.add_argument("--zoo", help="comma-separated zoo models to retrain too, or 'none' "
                                 "(default: every zoo model within the run's budget)")
    p.add_argument("--greedy", action="store_true",
                   help="retrain the run's FLOPs-greedy pick too (its costliest trial within the budget, the "
                        "choice made without training), under the same protocol and seeds: row kind 'greedy'")
    p.add_argument("--trial", type=int, action="append", default=[], metavar="N",
                   help="retrain trial N too, whatever its rank (repeatable)")
    _add_cpus(p, "retraining", "the run's cpus_per_trial")
    _add_renamed(p, "--cpus-per-job", "--cpus-per-trial", "cpus_per_trial", type=int)
    _add_gpus(p, "the run's")
    _add_retries(p, "the run's")
    _add_address(p)


@_command("final", "final evaluation of a run: its best architectures and the zoo retrained from scratch, "
                   "several seeds, scored on the test split (into runs/RUN/final/); one model's final training "
                   "is `train`")
def _cmd_final(args: argparse.Namespace) -> int:
    from shufflesearch.evaluation._final import final_evaluation
    from shufflesearch.report._report import write_report

    zoo = None if args.zoo is None else [m.strip() for m in args.zoo.split(",") if m.strip() not in ("", "none")]
    result = final_evaluation(args.run, top=args.top, seeds=args.seeds, epochs=args.epochs,
                              subset_per_class=args.subset_per_class, zoo=zoo, greedy=args.greedy, trials=args.trial,
                              cpus_per_trial=args.cpus_per_trial,
                              gpus_per_trial=args.gpus_per_trial, max_retries=args.max_retries, address=args.address)
    print("\ntest accuracy, mean ± sd over seeds (test split, read only here):")
    for s in sorted(result.summary, key=lambda s: s["mflops"]):
        sd = "" if s["test_acc_sd"] is None else f" ± {s['test_acc_sd']:.4f}"
        acc = "failed" if s["test_acc_mean"] is None else f"{s['test_acc_mean']:.4f}{sd}"
        print(f"  {s['kind']:<6} {s['name']:<24} {s['mflops']:7.2f} MFLOPs  {acc}  ({s['seeds']} seeds)")
    print(f"results in {result.final_dir}/; {len(result.models)} retrained model(s) exported")
    print(f"report: {write_report(result.final_dir.parent)}")
    return 0


# --- export ------------------------------------------------------------------------------------
def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run name (under runs/) or run directory")
    which = p.add_mutually_exclusive_group()  # one of them, --best when none is given
    which.add_argument("--best", dest="which", action="store_const", const="best",
                       help="the most accurate full-fidelity trial (the default)")
    which.add_argument("--pareto", dest="which", action="store_const", const="pareto",
                       help="every Pareto point of the run's objectives")
    which.add_argument("--trial", type=int, nargs="+", metavar="N", help="these trial numbers")
    p.set_defaults(which="best")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (pip install shufflesearch[onnx])")


@_command("export", "export a run's winners as timm models: runs/RUN/models/<name>/ (config.json, weights, card)")
def _cmd_export(args: argparse.Namespace) -> int:
    from shufflesearch.export import export_run

    for folder in export_run(args.run, args.trial or args.which, onnx=args.onnx):
        print(f"{folder.name}: {folder}/  ->  timm.create_model({folder.name!r}, pretrained=True)")
    return 0


# --- train -------------------------------------------------------------------------------------
def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a found model (ss_...), a zoo model or a genome file (ARCH.yaml / .json)")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--data", help="dataset spec (default: the model's search proxy dataset, else digits)")
    for flag, kind in (("--image-size", int), ("--lr", float), ("--batch-size", int), ("--seed", int)):
        p.add_argument(flag, type=kind, help="default: the search's proxy setting")
    _add_cpus(p, "training", "the source run's cpus_per_trial, else 1")
    _add_renamed(p, "--threads", "--cpus-per-trial", "cpus_per_trial", type=int)
    p.add_argument("--tag", help="suffix of the new model's name (default e<EPOCHS>)")
    p.add_argument("--out", help="folder the new model's folder goes in (default: beside the source model; "
                                 "zoo models and genome files: runs/train/models/)")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx")


@_command("train", "final training of one model: a found or zoo model from scratch with a longer schedule, saved "
                   "as a new model; a run's final evaluation is `final`")
def _cmd_train(args: argparse.Namespace) -> int:
    from shufflesearch.train._final import DEFAULT_OUT, LEGACY_OUT, train_final
    from shufflesearch.train._proxy import epoch_line

    def report(epoch: int, m: dict[str, float]) -> None:
        print(epoch_line(m))

    folder = train_final(args.model, epochs=args.epochs, data=args.data, image_size=args.image_size, lr=args.lr,
                         batch_size=args.batch_size, seed=args.seed, cpus_per_trial=args.cpus_per_trial, tag=args.tag,
                         out=args.out, onnx=args.onnx, report=report)
    print(f"{folder.name}: {folder}/  ->  timm.create_model({folder.name!r}, pretrained=True)")
    old = list(LEGACY_OUT.glob("*/config.json")) if not (LEGACY_OUT.parent / "config.json").exists() else []
    if old and folder.parent.resolve() == DEFAULT_OUT.resolve():  # a run named "final" is no old default folder
        print(f"shufflesearch train: note: {LEGACY_OUT}/ is where `train` put models before 0.2 ({len(old)} there, "
              f"still loaded); new ones go to {DEFAULT_OUT}/: move the old ones there too", file=sys.stderr)
    return 0


# --- --runs-dir for every command that reads a run or a found model --------------------------
RUN_COMMANDS = ("report", "baseline", "final", "export")  # their RUN arguments are names under --runs-dir
MODEL_COMMANDS = ("models", "train", "latency")  # they see the found models under --runs-dir


def _resolve_runs_dir(args: argparse.Namespace) -> None:
    """RUN names as folders under --runs-dir; the found models there registered (runs/ is, on import)."""
    from shufflesearch.genome._catalog import DEFAULT_ROOT, find_models
    from shufflesearch.runs._run import resolve_run

    if args.command in RUN_COMMANDS:
        if hasattr(args, "runs"):
            args.runs = [resolve_run(r, args.runs_dir) for r in args.runs]
        else:
            args.run = resolve_run(args.run, args.runs_dir)
    if args.command in MODEL_COMMANDS and Path(args.runs_dir).resolve() != DEFAULT_ROOT.resolve():
        find_models(args.runs_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shufflesearch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name, help=fn.help, description=fn.help)
        globals()[f"_add_{name.replace('-', '_')}"](p)
        if name in RUN_COMMANDS + MODEL_COMMANDS:
            p.add_argument("--runs-dir", default="runs",
                           help="where run folders are (default runs/): RUN names and found models are looked up there")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _resolve_runs_dir(args)
        return COMMANDS[args.command](args) or 0
    except ShuffleSearchError as e:
        print(f"shufflesearch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"shufflesearch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `shufflesearch ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
