"""Final evaluation of a run: the best found architectures and the zoo, retrained, scored on the test split.

The search chose by accuracy on the search-validation split after a short proxy training; that
number is biased upwards for the winners (they were selected by it) and says nothing about a long
training. So, as NAS papers do, `final_evaluation` retrains from scratch, under one final protocol:

* the `top` best full-fidelity architectures of the run (one objective: the most accurate; two: `top`
  points spread evenly along the Pareto front, from the cheapest to the most accurate, see
  `select_candidates`), and the zoo models within the run's budget (the hand-designed alternative
  a user would otherwise take);
* each with `seeds` seeds (the run's seed, +1, ...), on the whole training split (search-validation
  included), for `epochs` epochs, with the run's proxy optimiser settings;
* scored once, after the last epoch, on the test split: the only place shufflesearch reads it.

Files, all in `runs/<run>/final/`: `config.json` (the protocol, versions, the command), `results.jsonl`
(+ .csv, one row per architecture and seed, rewritten after each job, so a killed evaluation resumes
and trains only what is missing), `weights/<key>_s<seed>.safetensors`, and `summary.json` (per
architecture: test accuracy mean, sample sd and the values in seed order). The first seed's weights export as
timm models `ss_<run>_t<N>_final` and `ss_<run>_<zoo name>_final`; the cards of the run's exported models
gain the test accuracy of their trial. Ray runs the retrainings in parallel (`_ray.run_jobs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from shufflesearch._config import renamed
from shufflesearch._exec._devices import for_trials
from shufflesearch._exec._ray import JobProgress, run_jobs
from shufflesearch._exec._retries import DEFAULT_MAX_RETRIES
from shufflesearch._io import read_json, write_bytes_atomic, write_json_atomic, write_text_atomic
from shufflesearch.data import load_data
from shufflesearch.data._data import ProxyData
from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._cost import budget_cost
from shufflesearch.runs._pareto import by_accuracy, pareto_front
from shufflesearch.runs._records import package_versions, read_rows, write_rows
from shufflesearch.runs._run import load_run
from shufflesearch.space._configs import DataConfig, TrainConfig, proxy_config_from_dict

FINAL_DIR = "final"
RESULT_FIELDS = ("kind", "name", "number", "model", "arch_hash", "summary", "mflops", "params", "seed", "epochs",
                 "max_epochs", "test_acc", "test_loss", "search_acc", "status", "error", "seconds",
                 "train_seconds", "eval_seconds", "attempts", "faults", "finished")


@dataclass(frozen=True)
class Candidate:
    """One architecture to retrain: a found one (`kind` "found", its trial row) or a zoo model."""

    kind: str  # "found" | "zoo"
    name: str  # "t<N>" for a trial, the zoo name otherwise
    arch: Arch
    number: int | None = None
    search_acc: float | None = None

    @property
    def model(self) -> str | None:
        return self.name if self.kind == "zoo" else None


@dataclass(frozen=True)
class FinalResult:
    """What `final_evaluation` leaves: its folder, every row, the per-architecture summary, exported models."""

    final_dir: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    models: list[Path]


def select_candidates(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str], top: int) -> list[Candidate]:
    """The `top` architectures of a run to retrain: see the module docstring. Distinct genomes only."""
    by_acc = by_accuracy(rows, objectives)
    chosen: list[Mapping[str, Any]] = []
    if len(objectives) > 1:
        front = pareto_front(rows, objectives)
        if top == 1:  # one point: the most accurate (the run's best), not the cheapest end
            front = front[-1:]
        elif len(front) > top:  # evenly spaced along the front, both ends included
            front = [front[round(i * (len(front) - 1) / (top - 1))] for i in range(top)]
        chosen = list(front)
    for r in by_acc:  # one objective, or a front shorter than `top`: the most accurate others
        if len(chosen) >= top:
            break
        if all(r["arch_hash"] != c["arch_hash"] for c in chosen):
            chosen.append(r)
    return [Candidate("found", f"t{r['number']}", Arch.from_dict(r["arch"]), r["number"], r["search_acc"])
            for r in sorted(chosen[:top], key=lambda r: r["mflops"])]


def zoo_within_budget(budget: Mapping[str, Any]) -> list[str]:
    """Zoo models whose cost (multiply-adds, params; `cost.budget_cost`) is within the budget."""
    from shufflesearch.genome._zoo import ZOO

    costs = {name: budget_cost(arch, budget) for name, arch in ZOO.items()}
    cap = budget.get("max_params")
    return [name for name, c in costs.items() if c.mflops <= budget["mflops"] and (cap is None or c.params <= cap)]


def train_job(arch: dict[str, Any], seed: int, data: ProxyData, train_cfg: TrainConfig,
              weights_path: str | None = None, latency_size: int | None = None) -> dict[str, Any]:
    """Train one genome with one seed and score it on `data`'s scored split (a Ray task's body).

    Returns the last epoch's metrics (`<split>_acc`, `<split>_loss`), `best_<split>_acc`, `status`,
    `epochs`, the seconds, `error` if training raised, and `latency_ms` measured as a search trial
    does when `latency_size` is given; saves the weights to `weights_path` (safetensors) when complete.
    """
    import safetensors.torch

    from shufflesearch.train._latency import trial_latency_ms
    from shufflesearch.train._proxy import train_proxy

    genome = Arch.from_dict(arch)
    out: dict[str, Any] = {"epochs": 0, "error": None}
    if latency_size:
        out["latency_ms"] = trial_latency_ms(genome, latency_size, train_cfg)
    try:
        result = train_proxy(genome, data, replace(train_cfg, seed=seed))
    except Exception as e:  # one failing architecture must not end the evaluation
        return {**out, "status": "failed", "error": f"{type(e).__name__}: {e}"}
    if result.status == "complete" and weights_path:
        write_bytes_atomic(weights_path, safetensors.torch.save(
            {k: v.contiguous() for k, v in result.state_dict.items()}))
    last, best = result.final or {}, result.best or {}
    return {**out, **{k: v for k, v in last.items() if k.endswith(("_acc", "_loss"))},
            f"best_{result.acc_key}": best.get(result.acc_key), "status": result.status, "epochs": result.epochs,
            "seconds": result.seconds, "train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds}


def _protocol(config: Mapping[str, Any], config_path: Path, epochs: int | None, subset_per_class: int | None,
              threads: int) -> tuple[DataConfig, TrainConfig]:
    """The final protocol: the run's proxy settings on the whole training split, for `epochs` epochs."""
    if "proxy" not in config or "budget" not in config:
        raise ShuffleSearchError(f"{config_path}: proxy/budget: missing (is this a search run's folder?)")
    proxy = proxy_config_from_dict(config["proxy"], str(config_path))
    epochs = 3 * proxy.train.epochs if epochs is None else epochs
    if epochs < 1:
        raise ShuffleSearchError(f"--epochs {epochs}: must be >= 1")
    return (replace(proxy.data, subset_per_class=subset_per_class),
            replace(proxy.train, epochs=epochs, threads=threads))


def _check_same_protocol(path: Path, protocol: dict[str, Any]) -> None:
    """A resumed evaluation must train as the recorded one did; otherwise its rows would not compare."""
    if not path.exists():
        return
    recorded = read_json(path, "the final evaluation's config")
    # settings added since it was recorded count as what it ran with: their defaults, on CPU
    added = {"data": dataclasses.asdict(DataConfig()), "train": {**dataclasses.asdict(TrainConfig()), "device": "cpu"}}
    for key in ("data", "train"):
        if isinstance(recorded.get(key), dict):
            recorded[key] = {k: v for k, v in added[key].items() if k not in recorded[key]} | recorded[key]
        if recorded.get(key) != protocol[key]:
            raise ShuffleSearchError(
                f"{path}: {key} = {recorded.get(key)}: this run was final-evaluated under another protocol "
                f"(now {protocol[key]}); use the same options, or remove {path.parent} to start over")


def _summarise(rows: Sequence[Mapping[str, Any]], candidates: Sequence[Candidate],
               budget: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in candidates:
        done = sorted((r for r in rows if r["arch_hash"] == c.arch.hash and r["status"] == "complete"),
                      key=lambda r: r["seed"])  # seed order, whichever job finished first
        accs = [r["test_acc"] for r in done]
        c_cost = budget_cost(c.arch, budget)
        out.append({"kind": c.kind, "name": c.name, "number": c.number, "model": c.model, "arch_hash": c.arch.hash,
                    "summary": c.arch.summary(), "mflops": c_cost.mflops, "params": c_cost.params,
                    "search_acc": c.search_acc, "seeds": len(accs), "test_accs": accs,
                    "test_acc_mean": statistics.fmean(accs) if accs else None,
                    "test_acc_sd": statistics.stdev(accs) if len(accs) > 1 else None})
    return out


def _key(c: Candidate) -> str:
    return f"{c.name}_{c.arch.hash}"


def final_evaluation(run: str | Path, *, top: int = 3, seeds: int = 3, epochs: int | None = None,
                     subset_per_class: int | None = None, zoo: Sequence[str] | None = None,
                     cpus_per_trial: int | None = None, gpus_per_trial: float | None = None, max_retries: int | None = None,
                     address: str | None = None, export: bool = True, progress: Callable[[str], None] | None = print,
                     cpus_per_job: int | None = None) -> FinalResult:
    """Retrain a run's best architectures and the zoo within its budget; score them on the test split.

    Args:
        run: the run's folder, or its name under runs/.
        top: how many found architectures (see `select_candidates`).
        seeds: seeds per architecture: the run's seed, +1, ...
        epochs: final training epochs (default: 3x the proxy's).
        subset_per_class: training images per class (default: the whole training split).
        zoo: zoo model names (default: every zoo model within the budget; [] for none).
        cpus_per_trial: CPUs, and torch threads, per retraining (default: the run's cpus_per_trial);
            `cpus_per_job` is its old name (deprecated).
        gpus_per_trial: GPUs per retraining (a fraction shares one; default: the run's); the run's
            `proxy.device` and `amp` settings apply as in its trials.
        max_retries: times a retraining whose Ray worker or node died starts again (default: the run's).
        address: a running Ray cluster (default: a local Ray).
        export: write the first seed's weights as timm models and update the run's model cards.
        progress: called with one line per finished retraining (None: silent).
    """
    from shufflesearch.genome._catalog import get_arch

    loaded = load_run(run)
    config_path = loaded.path / "config.json"
    cpus = renamed("cpus_per_trial", cpus_per_trial, "cpus_per_job", cpus_per_job)
    cpus = int(loaded.config.get("cpus_per_trial", 1)) if cpus is None else cpus
    data_cfg, train_cfg = _protocol(loaded.config, config_path, epochs, subset_per_class, cpus)
    gpus = loaded.config.get("gpus_per_trial", 0.0) if gpus_per_trial is None else gpus_per_trial
    with errors_from(str(config_path)):
        train_cfg = for_trials(train_cfg, gpus, address)
    if top < 0 or seeds < 1:
        raise ShuffleSearchError(f"--top {top} --seeds {seeds}: top must be >= 0 and seeds >= 1")
    objectives = loaded.config.get("objectives") or ["acc", "mflops"]
    candidates = select_candidates(loaded.trials, objectives, top)
    if top and not candidates:
        raise ShuffleSearchError(f"{loaded.path / 'trials.jsonl'}: no full-fidelity complete trial to retrain")
    zoo_names = zoo_within_budget(loaded.config["budget"]) if zoo is None else list(zoo)
    candidates += [Candidate("zoo", name, get_arch(name)) for name in zoo_names]  # unknown names fail here
    if not candidates:
        raise ShuffleSearchError(f"{config_path}: nothing to evaluate (--top 0 and no zoo model)")

    final_dir = loaded.path / FINAL_DIR
    run_seed = int(loaded.config.get("seed", 0))
    protocol = {"data": dataclasses.asdict(data_cfg), "train": {**dataclasses.asdict(train_cfg), "threads": None,
                                                                "seed": None},
                "seeds": [run_seed + i for i in range(seeds)], "top": top, "zoo": zoo_names}
    _check_same_protocol(final_dir / "config.json", protocol)
    data = load_data(data_cfg, "test")
    write_json_atomic(final_dir / "config.json", {
        **protocol, "data_info": data.info(), "run": loaded.path.name, "versions": package_versions(),
        "command": shlex.join(["shufflesearch", "final", str(loaded.path), "--top", str(top), "--seeds", str(seeds),
                               "--epochs", str(train_cfg.epochs)]
                              + (["--subset-per-class", str(subset_per_class)] if subset_per_class else [])
                              + (["--gpus-per-trial", f"{gpus:g}"] if gpus else [])
                              + ["--zoo", ",".join(zoo_names) or "none"]),
        "candidates": [{"kind": c.kind, "name": c.name, "arch_hash": c.arch.hash} for c in candidates]})

    results_path = final_dir / "results.jsonl"
    rows = read_rows(results_path)
    done = {(r["arch_hash"], r["seed"]) for r in rows if r["status"] in ("complete", "diverged")}
    jobs = [{"arch": c.arch.to_dict(), "seed": s, "weights_path": str(final_dir / "weights" / f"{_key(c)}_s{s}.safetensors")}
            for c in candidates for s in protocol["seeds"] if (c.arch.hash, s) not in done]
    rows = [r for r in rows if (r["arch_hash"], r["seed"]) in done]  # failed ones are trained again
    by_hash = {c.arch.hash: c for c in candidates}
    if progress:
        progress(f"{final_dir}: {len(jobs)} retraining(s) to run ({len(candidates)} architectures x {seeds} seeds, "
                 f"{len(rows)} done before); {train_cfg.epochs} epochs on {data.summary()}")
    printer = JobProgress(len(rows) + len(jobs), progress, done_before=len(rows))

    def record(job: dict[str, Any], metrics: dict[str, Any]) -> None:
        c = by_hash[Arch.from_dict(job["arch"]).hash]
        c_cost = budget_cost(c.arch, loaded.config["budget"])
        row = {"kind": c.kind, "name": c.name, "number": c.number, "model": c.model, "arch_hash": c.arch.hash,
               "arch": c.arch.to_dict(), "summary": c.arch.summary(), "mflops": c_cost.mflops,
               "params": c_cost.params, "seed": job["seed"], "max_epochs": train_cfg.epochs,
               "search_acc": c.search_acc, "test_acc": metrics.get("test_acc"), "test_loss": metrics.get("test_loss"),
               **{k: metrics.get(k) for k in ("status", "error", "epochs", "seconds", "train_seconds",
                                               "eval_seconds", "attempts", "faults")},
               "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        rows.append(row)
        write_rows(results_path, rows, RESULT_FIELDS)
        printer(c.name, row, "test_acc")

    if jobs:
        retries = loaded.config.get("max_retries", DEFAULT_MAX_RETRIES) if max_retries is None else max_retries
        log = loaded.path / "ray.log"
        run_jobs(train_job, jobs, cpus_per_job=cpus, on_result=record,
                 shared={"data": data, "train_cfg": train_cfg}, address=address, gpus_per_job=gpus,
                 max_retries=retries, log=log, on_retry=lambda job, attempt, reason: printer.retry(
                     f"{by_hash[Arch.from_dict(job['arch']).hash].name} seed {job['seed']}", attempt, retries, reason, log))
    summary = _summarise(rows, candidates, loaded.config["budget"])
    write_json_atomic(final_dir / "summary.json", {
        "protocol": {k: protocol[k] for k in ("seeds", "top", "zoo")}, "epochs": train_cfg.epochs,
        "dataset": data.spec, "split": "test", "candidates": summary,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    models = _export(loaded, candidates, summary, data, final_dir, protocol["seeds"][0], train_cfg) if export else []
    return FinalResult(final_dir, rows, summary, models)


def _export(loaded: Any, candidates: Sequence[Candidate], summary: Sequence[Mapping[str, Any]], data: ProxyData,
            final_dir: Path, seed: int, train_cfg: TrainConfig) -> list[Path]:
    """The first seed's weights as timm models; the run's exported models' cards gain their test accuracy."""
    from shufflesearch.models._folder import PREFIX, model_card, model_name, sanitize, write_model_dir
    from shufflesearch.genome._catalog import read_model_config

    stats = {s["arch_hash"]: s for s in summary}
    folders = []
    for c in candidates:
        weights = final_dir / "weights" / f"{_key(c)}_s{seed}.safetensors"
        if not weights.is_file():
            continue  # that seed diverged or failed
        s = stats[c.arch.hash]
        final = _final_card_entry(s, data, train_cfg, seed)
        name = (model_name(loaded.path.name, c.number) if c.kind == "found"
                else f"{PREFIX}{sanitize(loaded.path.name)}_{c.name}") + "_final"
        provenance = {"run": loaded.path.name, "trial": c.number, "source": c.name, "seed": seed,
                      "search_acc": c.search_acc, "mflops": s["mflops"], "params": s["params"],
                      "budget_input_size": loaded.config["budget"]["input_size"],
                      "budget_num_classes": loaded.config["budget"].get("num_classes", 1000), "dataset": data.spec,
                      "arch_hash": c.arch.hash, "final": final, "epochs": train_cfg.epochs}
        folders.append(write_model_dir(loaded.path / "models" / name, c.arch, weights.read_bytes(), data.info(),
                                       provenance))
    for number, names in loaded.models.items():  # the search's exports: add the test accuracy to their cards
        s = next((s for s in summary if s["number"] == number and s["test_acc_mean"] is not None), None)
        for name in names:
            folder = loaded.path / "models" / name
            if s is None or folder in folders:
                continue
            arch, config = read_model_config(folder)
            provenance = {**config.get("shufflesearch", {}), "final_eval": _final_card_entry(s, data, train_cfg, None)}
            info = {**{k: config[k] for k in ("num_classes", "label_names") if k in config},
                    **{k: loaded.config["data"][k] for k in ("in_chans", "image_size", "spec")}}
            write_text_atomic(folder / "README.md", model_card(name, arch, info, provenance))
    return folders


def _final_card_entry(s: Mapping[str, Any], data: ProxyData, train_cfg: TrainConfig, seed: int | None) -> dict:
    """What a model card says of a final evaluation: test accuracy mean ± sd over seeds, the protocol."""
    return {"dataset": data.spec, "epochs": train_cfg.epochs, "train_images": len(data.train_y),
            "test_images": len(data.eval_y), "test_acc_mean": s["test_acc_mean"], "test_acc_sd": s["test_acc_sd"],
            "seeds": s["seeds"], "test_accs": s["test_accs"], "seed": seed}
