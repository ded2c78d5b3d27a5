"""Evolution vs random candidates on one trained supernet (issue 30.4): the best search-validation score
reached, the wall time and the study's trial count at the same number of scored candidates.

For each seed, trains the space's supernet once (the search's seed is its training's), then runs a
supernet search with `--sampler evolution` and one with `--sampler random` on copies of it, `--candidates` each,
and records per run: the best search-val accuracy (`summary.json`'s best: the most accurate on the
Pareto front), the best after each quarter of the candidates, the search's wall time (the supernet's
training excluded: it is reused) and the Optuna study's trial count. Writes `--out` (JSON). The
supernet is scored whether or not it learned (`supernet.learned_loss: null`): the two strategies are
compared on the same scores; its epoch losses are recorded beside them.

    python benchmarks/supernet_strategy.py [--space demo] [--candidates 400] [--seeds 0 1]
        [--supernet-epochs 5] [--out benchmarks/results/supernet_strategy_demo.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import optuna
import yaml

import shufflesearch
from shufflesearch._exec._optuna import quiet_optuna
from shufflesearch.space._configs import SupernetConfig
from shufflesearch.space._space import SearchSpace, shipped_spaces


def _space(name: str, candidates: int, epochs: int, dataset: str | None, out: Path) -> Path:
    src = shipped_spaces().get(name, Path(name))
    data = yaml.safe_load(Path(src).read_text())
    data["search"].update(trials=candidates)
    data["search"].pop("sampler", None)
    data["supernet"] = {**(data.get("supernet") or {}), "epochs": epochs}
    if "learned_loss" in {f.name for f in fields(SupernetConfig)}:
        data["supernet"]["learned_loss"] = None  # scored even if it has not learned: the strategies are compared
    if dataset:
        data["proxy"]["dataset"] = dataset
    path = out / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _trials(run_dir: Path) -> int:
    with quiet_optuna():
        study = optuna.load_study(study_name=run_dir.name, storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(run_dir / "optuna.journal"))))
    return len(study.get_trials(deepcopy=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="demo")
    p.add_argument("--dataset", default=None, help="overrides the space's proxy dataset")
    p.add_argument("--candidates", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--supernet-epochs", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results/supernet_strategy_demo.json")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="supernet_strategy_"))
    space = _space(args.space, args.candidates, args.supernet_epochs, args.dataset, work)
    results, losses = [], {}
    for seed in args.seeds:
        # the seed's supernet (its training's seed is the search's), trained once by a one-candidate search,
        # then copied into both runs of the seed: no wall time below has it
        trained = shufflesearch.search(space, name=f"train_s{seed}", evaluator="supernet", trials=1, seed=seed,
                                       runs_dir=work / "runs", progress=None).run_dir / "supernet"
        losses[seed] = json.loads((trained / "state.json").read_text()).get("epoch_losses")
        for sampler in ("evolution", "random"):
            name = f"{sampler}_s{seed}"
            shutil.copytree(trained, work / "runs" / name / "supernet")
            started = time.monotonic()
            result = shufflesearch.search(space, name=name, evaluator="supernet", sampler=sampler, seed=seed,
                                          runs_dir=work / "runs", progress=None)
            wall = time.monotonic() - started
            ordered = sorted(result.rows, key=lambda r: r["number"])
            quarters = [max(r["search_acc"] for r in ordered[:k]) for k in
                        (len(ordered) // 4, len(ordered) // 2, 3 * len(ordered) // 4, len(ordered))]
            row = {"sampler": sampler, "seed": seed, "candidates": len(result.rows),
                   "distinct": len({r["arch_hash"] for r in result.rows}),
                   "best_search_acc": result.best["search_acc"], "best_mflops": result.best["mflops"],
                   "best_by_quarter": quarters, "wall_seconds": wall, "study_trials": _trials(result.run_dir)}
            results.append(row)
            print(json.dumps(row), flush=True)
    space_info = SearchSpace.from_yaml(space)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/supernet_strategy.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if v is not None),
        "split": "search-val (accuracy of the inherited path, BN re-estimated)",
        "space": space_info.name, "dataset": space_info.proxy.data.dataset,
        "supernet_epoch_losses_by_seed": losses,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), local Ray, no GPU",
        "date": time.strftime("%Y-%m-%d"), "runs": results}, indent=1))


if __name__ == "__main__":
    main()
