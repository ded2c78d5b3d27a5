"""Search winners as timm models: `runs/<run>/models/<name>/`, one folder per exported model.

A model folder holds `config.json` (timm's Hugging Face Hub format, written by timm's own
`save_config_for_hf`: architecture `shufflesearch_net`, the genome in `model_args.arch`, num_classes,
label_names, a `pretrained_cfg` for the proxy data, plus our `shufflesearch` provenance key),
`model.safetensors` (the trial's proxy-trained weights, byte for byte; for a supernet search the
path's inherited weights and re-estimated BatchNorm statistics, `supernet_score.path_weights`), `arch.yaml`, a model card
`README.md` and, when asked, `model.onnx`. So `timm.create_model('local-dir:<folder>', pretrained=True)`
loads it without shufflesearch's registry, and the folder's name is its registered timm name.

Names (`model_name`): `ss_<run>_best` (the run's best trial, `pareto.best_row`: the most accurate
full-fidelity trial, the cheapest of equals), `ss_<run>_p<k>` (the k-th point of the run's Pareto
front, `pareto.pareto_front`, k = 1 the cheapest), `ss_<run>_t<N>` (trial N). Best and front are of the
run's own objectives (config.json) and, where the search re-ranked its near-ties, of that re-ranking
(`Run.reranked`), as its search result and summary.json name them. `<run>` is the
run folder's name lowercased, every run of characters outside [a-z0-9] made one `_`, leading/trailing
`_` dropped ('My Run-2' -> 'my_run_2').

A folder appears whole or not at all: it is written under a temporary name and renamed into place
(a re-export swaps the old folder out the same way).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.models._folder import model_name, write_model_dir
from shufflesearch.models._registry import unregister_model
from shufflesearch.runs._pareto import best_row, pareto_front
from shufflesearch.runs._run import Run, load_run
from shufflesearch.supernet._score import path_weights


def select(run: Run, which: str | Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
    """(name, trial row) pairs for 'best', 'pareto' or a list of trial numbers: what `export_run` writes."""
    rows = run.trials
    if which == "best":
        best = best_row(rows, run.config.get("objectives"), run.reranked)
        chosen = [("best", best)] if best else []
    elif which == "pareto":
        front = pareto_front(rows, run.config.get("objectives"), run.reranked)
        chosen = [(f"p{k}", row) for k, row in enumerate(front, 1)]
    elif isinstance(which, str):
        raise ShuffleSearchError(f"which = {which!r}: expected 'best', 'pareto' or trial numbers")
    else:
        by_number = {r["number"]: r for r in rows}
        for n in which:
            if n not in by_number:
                raise ShuffleSearchError(f"{run.path / 'trials.jsonl'}: trial {n}: not recorded "
                                         f"(recorded: {sorted(by_number)})")
        chosen = [(int(n), by_number[n]) for n in which]
    if not chosen:
        raise ShuffleSearchError(f"{run.path / 'trials.jsonl'}: no full-fidelity complete trial to export")
    return [(model_name(run.path.name, which_one), row) for which_one, row in chosen]


def _data_info(config: Mapping[str, Any], path: Path) -> dict[str, Any]:
    data = config.get("data")
    keys = ("spec", "num_classes", "in_chans", "image_size", "mean", "std", "label_names")
    if not isinstance(data, Mapping) or any(k not in data for k in keys):
        raise ShuffleSearchError(f"{path / 'config.json'}: data: missing or incomplete (needs {', '.join(keys)})")
    return {k: data[k] for k in keys}


def _proxy_as_run(config: Mapping[str, Any]) -> Any:
    """The run's proxy protocol as its trials ran it: with the run's `cpus_per_trial` threads (`search`
    overrides `proxy.threads` with it), so a final training of the model defaults to the run's value."""
    proxy = config.get("proxy")
    if isinstance(proxy, Mapping) and config.get("cpus_per_trial") is not None:
        return {**proxy, "threads": config["cpus_per_trial"]}
    return proxy


def _latency_target(config: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a trial's `latency_ms` was measured when the run had a latency budget: the budget's latency
    settings, the node and the target's fingerprint (config.json); None: the trial's own measurement."""
    budget = config.get("budget") or {}
    if budget.get("latency_ms") is None:
        return None
    settings = budget.get("latency") or {}
    return {**settings, "input_size": settings.get("input_size") or budget.get("input_size"),
            "node": row.get("latency_node") or config.get("latency_node"),
            "fingerprint": config.get("latency_fingerprint"), "predicted": bool(settings.get("table"))}


def export_run(run_dir: str | Path, which: str | Sequence[int] = "best", onnx: bool = False) -> list[Path]:
    """Export a run's chosen trials to `runs/<run>/models/<name>/` and register them in timm here.

    `which`: 'best', 'pareto' or trial numbers. Each trial's weights must load strictly into its
    architecture. Returns the model folders.
    """
    run = load_run(run_dir)
    data = _data_info(run.config, run.path)
    chosen = select(run, which)
    folders = []
    # a supernet search keeps no weight files: its candidates' are computed again
    complete = {row["arch_hash"]: Arch.from_dict(row["arch"]) for _, row in chosen
                if row.get("status") == "complete"} if run.config.get("evaluator") == "supernet" else {}
    inherited = dict(zip(complete, path_weights(run.path, list(complete.values())))) if complete else {}
    for name, row in chosen:
        arch = Arch.from_dict(row["arch"])
        weights = run.path / "weights" / f"trial_{row['number']}.safetensors"
        if row["arch_hash"] in inherited:
            payload = inherited[row["arch_hash"]]
        elif weights.is_file():
            payload = weights.read_bytes()
        else:
            raise ShuffleSearchError(f"{weights}: weights file missing (trial {row['number']} is "
                                     f"{row.get('status')}; only complete trials keep weights)")
        provenance = {
            "run": run.path.name, "trial": row["number"], "seed": row.get("seed"), "search_acc": row["search_acc"],
            "best_search_acc": row.get("best_search_acc"), "epochs": row["epochs"], "mflops": row["mflops"],
            "params": row["params"], "latency_ms": row.get("latency_ms"), "latency_iqr_ms": row.get("latency_iqr_ms"),
            "latency_target": _latency_target(run.config, row),
            "budget_input_size": run.config.get("budget", {}).get("input_size"),
            "budget_num_classes": run.config.get("budget", {}).get("num_classes", 1000), "dataset": data["spec"],
            "arch_hash": row.get("arch_hash"), "proxy": _proxy_as_run(run.config),
            "search_command": run.config.get("command"),
        }
        folders.append(write_model_dir(run.path / "models" / name, arch, payload, data, provenance, onnx=onnx))
    if which == "pareto":  # a front that shrank (e.g. after a resumed search) leaves no stale p<k> behind
        point = re.compile(re.escape(model_name(run.path.name, "p")) + r"\d+")
        for folder in (run.path / "models").iterdir():
            if point.fullmatch(folder.name) and folder not in folders:
                shutil.rmtree(folder)
                unregister_model(folder.name)
    return folders
