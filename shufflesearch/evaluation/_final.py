"""Final evaluation of a run: the best found architectures and the zoo, retrained, scored on the test split.

The search chose by accuracy on the search-validation split after a short proxy training; that
number is biased upwards for the winners (they were selected by it) and says nothing about a long
training. So, as NAS papers do, `final_evaluation` retrains from scratch, under one final protocol:

* the `top` best full-fidelity architectures of the run (one objective: the most accurate; two: `top`
  points spread evenly along the Pareto front, from the cheapest to the most accurate, see
  `select_candidates`), with `greedy` the run's FLOPs-greedy pick (`runs.greedy_pick`: the costliest
  candidate within the budget, what a user takes without training anything), and the zoo models within
  the run's budget (the hand-designed alternative a user would otherwise take);
* each with `seeds` seeds (the run's seed, +1, ...), on the whole training split (search-validation
  included), for `epochs` epochs, with the run's proxy optimiser settings;
* scored once, after the last epoch, on the test split: the only place shufflesearch reads it.

Files, all in `runs/<run>/final/`: `config.json` (the protocol, versions, the command), `results.jsonl`
(+ .csv, one row per architecture and seed, rewritten after each job, so a killed evaluation resumes
and trains only what is missing), `weights/<name>_<arch hash>_s<seed>.safetensors`, and `summary.json` (per
architecture: test accuracy mean, sample sd and the values in seed order). The first seed's weights export as
timm models `ss_<run>_t<N>_final`, `ss_<run>_greedy_t<N>_final` and `ss_<run>_<zoo name>_final`; the cards of the run's exported models
gain the test accuracy of their trial. Ray runs the retrainings in parallel (`_ray.run_jobs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shlex
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from shufflesearch._config import renamed
from shufflesearch._exec._devices import for_trials
from shufflesearch._exec._lock import run_lock
from shufflesearch._exec._progress import Progress
from shufflesearch._io import read_json, write_json_atomic, write_text_atomic
from shufflesearch.data import load_data
from shufflesearch.data._data import ProxyData
from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.evaluation._jobs import JobPool, from_run
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._cost import budget_cost
from shufflesearch.runs._pareto import by_accuracy, full_fidelity_acc, greedy_pick, pareto_front, within_budget
from shufflesearch.runs._records import RecordLog, make_row, package_versions, read_rows
from shufflesearch.runs._run import Run, load_run
from shufflesearch.space._configs import DataConfig, TrainConfig, proxy_config_from_dict

FINAL_DIR = "final"
RESULT_FIELDS = ("kind", "name", "number", "model", "arch_hash", "summary", "mflops", "params", "seed", "epochs",
                 "max_epochs", "test_acc", "test_loss", "search_acc", "status", "error", "seconds",
                 "cpu_seconds", "train_seconds", "eval_seconds", "attempts", "faults", "finished")


@dataclass(frozen=True)
class Candidate:
    """One architecture to retrain: a found one (`kind` "found", its trial row), the run's FLOPs-greedy
    pick ("greedy", its trial row) or a zoo model."""

    kind: str  # "found" | "greedy" | "zoo"
    name: str  # "t<N>" for a found trial, "greedy_t<N>" for the greedy pick, the zoo name otherwise
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


def select_candidates(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str], top: int,
                      rerank: Mapping[int, float | None] | None = None) -> list[Candidate]:
    """The `top` architectures of a run to retrain: see the module docstring. Distinct genomes only. With
    the search's re-ranking (`Run.reranked`) the best and the front's top are the re-ranked ones."""
    by_acc = by_accuracy(rows, objectives, rerank)
    chosen: list[Mapping[str, Any]] = []
    if len(objectives) > 1:
        front = pareto_front(rows, objectives, rerank)
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


def zoo_within_budget(budget: Mapping[str, Any], factor: float = 1.0, address: str | None = None) -> list[str]:
    """Zoo models within `factor` x a run's budget (config.json "budget"): their cost (`cost.budget_cost`:
    multiply-adds where the budget caps them, params where it caps them) and, with a latency budget, their
    latency on its target (`driver._latency.target_latencies`: measured there, or predicted from its table)."""
    from shufflesearch.genome._zoo import ZOO

    costs = {name: budget_cost(arch, budget) for name, arch in ZOO.items()}
    scaled = {**budget, "mflops": budget["mflops"] * factor if budget.get("flops_capped", True) else math.inf,
              "max_params": budget["max_params"] * factor if budget.get("max_params") else None}
    names = [name for name, c in costs.items() if within_budget({"mflops": c.mflops, "params": c.params}, scaled)]
    if budget.get("latency_ms") is None or not names:
        return names
    from shufflesearch.driver._latency import target_latencies

    latency = target_latencies(budget, {name: ZOO[name] for name in names}, address)
    return [name for name in names if latency[name]["latency_ms"] <= budget["latency_ms"] * factor]


def trial_candidates(loaded: Run, numbers: Sequence[int]) -> list[Candidate]:
    """The run's trials `numbers` as found candidates "t<N>"; a number the run has no trial of, or whose
    trial failed (no architecture that trains), is a one-line error naming it."""
    rows = {r["number"]: r for r in loaded.trials}
    out = []
    for n in numbers:
        row = rows.get(n)
        if row is None or row["status"] == "failed":
            why = "no such trial" if row is None else "it failed, so there is nothing to retrain"
            raise ShuffleSearchError(f"{loaded.path / 'trials.jsonl'}: --trial {n}: {why}")
        out.append(Candidate("found", f"t{n}", Arch.from_dict(row["arch"]), n, row.get("search_acc")))
    return out


def greedy_candidate(rows: Sequence[Mapping[str, Any]], budget: Mapping[str, Any]) -> Candidate | None:
    """The run's FLOPs-greedy pick (`runs.greedy_pick`) as a candidate named "greedy_t<N>", with its search
    accuracy only where the run trained it to full fidelity; None where the run has no candidate in budget."""
    pick = greedy_pick(rows, budget)
    if pick is None:
        return None
    return Candidate("greedy", f"greedy_t{pick['number']}", Arch.from_dict(pick["arch"]), pick["number"],
                     full_fidelity_acc(rows, pick))


@dataclass(frozen=True)
class _Protocol:
    """The final protocol: what every retraining of one evaluation shares, and a resumed one repeats."""

    data: DataConfig
    train: TrainConfig  # its device resolved for the jobs' GPU share
    seeds: list[int]
    top: int
    zoo: list[str]
    greedy: bool = False
    trials: list[int] = dataclasses.field(default_factory=list)

    def recorded(self) -> dict[str, Any]:
        """As final/config.json records it; threads and the seed are the jobs', not the protocol's."""
        return {"data": dataclasses.asdict(self.data),
                "train": {**dataclasses.asdict(self.train), "threads": None, "seed": None},
                "seeds": self.seeds, "top": self.top, "zoo": self.zoo, "greedy": self.greedy, "trials": self.trials}


def _protocol(loaded: Run, *, top: int, seeds: int, epochs: int | None, subset_per_class: int | None,
              zoo: Sequence[str] | None, greedy: bool, trials: Sequence[int], cpus: int, gpus: float,
              address: str | None) -> _Protocol:
    """The run's proxy settings on the whole training split, for `epochs` epochs (default 3x the
    proxy's), with `seeds` seeds from the run's; the zoo models (default: those within the budget)."""
    config, config_path = loaded.config, loaded.path / "config.json"
    if "proxy" not in config or "budget" not in config:
        raise ShuffleSearchError(f"{config_path}: proxy/budget: missing (is this a search run's folder?)")
    proxy = proxy_config_from_dict(config["proxy"], str(config_path))
    epochs = 3 * proxy.train.epochs if epochs is None else epochs
    if epochs < 1:
        raise ShuffleSearchError(f"--epochs {epochs}: must be >= 1")
    with errors_from(str(config_path)):
        train_cfg = for_trials(replace(proxy.train, epochs=epochs, threads=cpus), gpus, address)
    if top < 0 or seeds < 1:
        raise ShuffleSearchError(f"--top {top} --seeds {seeds}: top must be >= 0 and seeds >= 1")
    run_seed = int(config.get("seed", 0))
    return _Protocol(replace(proxy.data, subset_per_class=subset_per_class), train_cfg,
                     [run_seed + i for i in range(seeds)], top,
                     zoo_within_budget(config["budget"], address=address) if zoo is None else list(zoo), greedy, sorted(set(trials)))


def _candidates(loaded: Run, protocol: _Protocol) -> list[Candidate]:
    """The run's `top` found architectures (`select_candidates`) and the trials asked for by number
    (`trial_candidates`), its greedy pick where asked (`greedy_candidate`), then the protocol's zoo models."""
    from shufflesearch.genome._catalog import get_arch

    objectives = loaded.config.get("objectives") or ["acc", "mflops"]
    found = select_candidates(loaded.trials, objectives, protocol.top, loaded.reranked)
    if protocol.top and not found:
        raise ShuffleSearchError(f"{loaded.path / 'trials.jsonl'}: no full-fidelity complete trial to retrain")
    greedy = greedy_candidate(loaded.trials, loaded.config["budget"]) if protocol.greedy else None
    if protocol.greedy and greedy is None:
        raise ShuffleSearchError(f"{loaded.path / 'trials.jsonl'}: --greedy: no trial within the budget "
                                 f"({loaded.config['budget']['mflops']:g} MFLOPs) that did not fail")
    found += [c for c in trial_candidates(loaded, protocol.trials) if c.name not in {f.name for f in found}]
    candidates = found + ([greedy] if greedy else []) \
        + [Candidate("zoo", name, get_arch(name)) for name in protocol.zoo]  # unknown names fail here
    if not candidates:
        raise ShuffleSearchError(f"{loaded.path / 'config.json'}: nothing to evaluate (--top 0, no --trial and no zoo "
                                 "model)")
    return candidates


def _command(loaded: Run, protocol: _Protocol, subset_per_class: int | None, gpus: float) -> list[str]:
    """The command line that repeats this evaluation."""
    return (["shufflesearch", "final", str(loaded.path), "--top", str(protocol.top),
             "--seeds", str(len(protocol.seeds)), "--epochs", str(protocol.train.epochs)]
            + (["--subset-per-class", str(subset_per_class)] if subset_per_class else [])
            + (["--gpus-per-trial", f"{gpus:g}"] if gpus else [])
            + (["--greedy"] if protocol.greedy else [])
            + [arg for n in protocol.trials for arg in ("--trial", str(n))]
            + ["--zoo", ",".join(protocol.zoo) or "none"])


def _begin(loaded: Run, final_dir: Path, protocol: _Protocol, candidates: Sequence[Candidate],
           command: list[str]) -> ProxyData:
    """Check a resumed evaluation's protocol, read the data (its test split), write final/config.json."""
    _check_same_protocol(final_dir / "config.json", protocol.recorded())
    data = load_data(protocol.data, "test")
    write_json_atomic(final_dir / "config.json", {
        **protocol.recorded(), "data_info": data.info(), "run": loaded.path.name, "versions": package_versions(),
        "command": shlex.join(command),
        "candidates": [{"kind": c.kind, "name": c.name, "arch_hash": c.arch.hash} for c in candidates]})
    return data


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
    """Per candidate: its cost, search-split accuracy, and test accuracies (seed order), mean and sample sd."""
    out = []
    for c in candidates:
        done = sorted((r for r in rows if r["name"] == c.name and r["status"] == "complete"),
                      key=lambda r: r["seed"])  # seed order, whichever job finished first
        accs = [r["test_acc"] for r in done]
        c_cost = budget_cost(c.arch, budget)
        out.append({"kind": c.kind, "name": c.name, "number": c.number, "model": c.model, "arch_hash": c.arch.hash,
                    "summary": c.arch.summary(), "mflops": c_cost.mflops, "params": c_cost.params,
                    "search_acc": c.search_acc, "seeds": len(accs), "test_accs": accs,
                    "test_acc_mean": statistics.fmean(accs) if accs else None,
                    "test_acc_sd": statistics.stdev(accs) if len(accs) > 1 else None})
    return out


def final_evaluation(run: str | Path, *, top: int = 3, seeds: int = 3, epochs: int | None = None,
                     subset_per_class: int | None = None, zoo: Sequence[str] | None = None, greedy: bool = False,
                     trials: Sequence[int] = (),
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
        greedy: retrain the run's FLOPs-greedy pick too (`greedy_candidate`), kind "greedy", under the
            same protocol and seeds, so the test split compares found, greedy and zoo side by side.
        trials: trial numbers to retrain too, as found architectures (kind "found"), whatever their rank:
            any trial that did not fail (e.g. a benchmark's picks, or a front point `top` does not reach).
        cpus_per_trial: CPUs, and torch threads, per retraining (default: the run's cpus_per_trial);
            `cpus_per_job` is its old name (deprecated).
        gpus_per_trial: GPUs per retraining (a fraction shares one; default: the run's); the run's
            `proxy.device` and `amp` settings apply as in its trials.
        max_retries: times a retraining whose Ray worker or node died starts again (default: the run's).
        address: a running Ray cluster (default: a local Ray).
        export: write the first seed's weights as timm models and update the run's model cards.
        progress: called with one line per finished retraining (None: silent).
    """
    loaded = load_run(run)
    cpus = from_run(loaded.config, "cpus_per_trial",
                    renamed("cpus_per_trial", cpus_per_trial, "cpus_per_job", cpus_per_job))
    gpus = from_run(loaded.config, "gpus_per_trial", gpus_per_trial)
    protocol = _protocol(loaded, top=top, seeds=seeds, epochs=epochs, subset_per_class=subset_per_class, zoo=zoo,
                         greedy=greedy, trials=trials, cpus=cpus, gpus=gpus, address=address)
    candidates = _candidates(loaded, protocol)
    final_dir = loaded.path / FINAL_DIR
    with run_lock(loaded.path, "final evaluation"):  # not while another driver searches or evaluates the run
        data = _begin(loaded, final_dir, protocol, candidates, _command(loaded, protocol, subset_per_class, gpus))
        pool = JobPool(data, protocol.train, cpus, gpus, from_run(loaded.config, "max_retries", max_retries),
                       address, loaded.path / "ray.log")
        rows = _retrain(final_dir, protocol, candidates, loaded.config["budget"], pool, progress)
        summary = _write_summary(final_dir, rows, candidates, protocol, data, loaded.config["budget"])
        models = _export(loaded, candidates, summary, data, final_dir, protocol.seeds[0], protocol.train) \
            if export else []
    return FinalResult(final_dir, rows, summary, models)


def _retrain(final_dir: Path, protocol: _Protocol, candidates: Sequence[Candidate], budget: Mapping[str, Any],
             pool: JobPool, progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Train each candidate with each seed that has no complete or diverged row yet (a failed one again),
    recording each row in results.jsonl as it finishes; all the rows."""
    results_path = final_dir / "results.jsonl"
    rows = [r for r in read_rows(results_path) if r["status"] in ("complete", "diverged")]
    done = {(r["name"], r["seed"]) for r in rows}
    jobs = {(c.name, s): {"arch": c.arch.to_dict(), "seed": s, "weights_path": str(_weights_path(final_dir, c, s))}
            for c in candidates for s in protocol.seeds if (c.name, s) not in done}
    if progress:
        progress(f"{final_dir}: {len(jobs)} retraining(s) to run ({len(candidates)} architectures x "
                 f"{len(protocol.seeds)} seeds, {len(rows)} done before); {protocol.train.epochs} epochs on "
                 f"{pool.data.summary()}")
    printer = Progress(len(rows) + len(jobs), progress, label=lambda r: f"{r['name']} seed {r['seed']}",
                       acc="test_acc", done=rows)
    log = RecordLog(results_path, rows, fields=RESULT_FIELDS, key=lambda r: (r["name"], r["seed"]), announce=printer)
    by_name = {c.name: c for c in candidates}  # a candidate is its name: a found genome may equal a zoo one
    if jobs:
        pool.run(jobs, lambda key, report: _row(by_name[key[0]], key[1], report, budget, protocol.train.epochs),
                 log, printer, lambda key: f"{key[0]} seed {key[1]}")
    return log.rows


def _row(c: Candidate, seed: int, report: Mapping[str, Any], budget: Mapping[str, Any],
         max_epochs: int) -> dict[str, Any]:
    """A retraining's row: its record fields (`make_row`) as results.jsonl keeps them, named as the
    candidate, with the candidate's search-split accuracy and the job's test-split ones."""
    row = {**make_row(c.arch, report, report["status"], number=c.number, budget=budget, max_epochs=max_epochs,
                      seed=seed, model=c.model),
           "kind": c.kind, "name": c.name, "search_acc": c.search_acc, "test_acc": report.get("test_acc"),
           "test_loss": report.get("test_loss")}
    return {k: row[k] for k in (*RESULT_FIELDS, "arch")}


def _write_summary(final_dir: Path, rows: Sequence[Mapping[str, Any]], candidates: Sequence[Candidate],
                   protocol: _Protocol, data: ProxyData, budget: Mapping[str, Any]) -> list[dict[str, Any]]:
    """final/summary.json: per candidate, the test accuracy over its seeds (`_summarise`); its entries."""
    summary = _summarise(rows, candidates, budget)
    write_json_atomic(final_dir / "summary.json", {
        "protocol": {"seeds": protocol.seeds, "top": protocol.top, "zoo": protocol.zoo, "greedy": protocol.greedy},
        "epochs": protocol.train.epochs, "dataset": data.spec, "split": "test", "candidates": summary,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    return summary


def _weights_path(final_dir: Path, c: Candidate, seed: int) -> Path:
    return final_dir / "weights" / f"{c.name}_{c.arch.hash}_s{seed}.safetensors"


def _export(loaded: Any, candidates: Sequence[Candidate], summary: Sequence[Mapping[str, Any]], data: ProxyData,
            final_dir: Path, seed: int, train_cfg: TrainConfig) -> list[Path]:
    """The first seed's weights as timm models; the run's exported models' cards gain their test accuracy."""
    from shufflesearch.genome._catalog import read_model_config
    from shufflesearch.models._folder import PREFIX, model_card, model_name, sanitize, write_model_dir

    stats = {s["name"]: s for s in summary}
    folders = []
    for c in candidates:
        weights = _weights_path(final_dir, c, seed)
        if not weights.is_file():
            continue  # that seed diverged or failed
        s = stats[c.name]
        final = _final_card_entry(s, data, train_cfg, seed)
        name = (model_name(loaded.path.name, c.number) if c.kind == "found"
                else f"{PREFIX}{sanitize(loaded.path.name)}_{c.name}") + "_final"  # greedy: ss_<run>_greedy_t<N>
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
