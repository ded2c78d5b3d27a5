"""A search's last stage: its near-ties trained again at a higher fidelity, before its best is chosen.

The top of a short search is a set of near-ties on the search-validation split: one seed of a 6-epoch
proxy separates them by less than that score's own noise, and the proxy favours small models that
converge fast. So, when the space's `rerank:` section (or `search(rerank=True)`, `--rerank`) asks, the
run's candidates within the noise of the leader (`runs._pareto.rerank_candidates`: at most
`rerank.candidates`, the leader included, within `rerank.margin` binomial standard errors of its
accuracy) are each trained again from scratch, `rerank.seeds` seeds each, for `rerank.epochs_factor` x
the proxy's epochs on `rerank.subset_per_class` training images per class (null: all), and scored on
the same search-validation split. The run's best and the top of its front then come from their mean
accuracy (`runs._pareto.pareto_front`, which says exactly how); every command that names a best
(summary.json, export, report, final evaluation) reads it through `Run.reranked`.

Each training is the one trial body run as a Ray job in the `JobPool` baselines and final evaluation
use, with the search's CPUs, GPUs and retries per job; a supernet search's candidates (paths of the
supernet) are trained from scratch the same way. Files in the run folder: `rerank.json` (the plan:
candidates, margin, seeds, fidelity, written before the first job) and `rerank.jsonl` + `.csv` (one row
per candidate and seed, `stage: rerank`, written as each job finishes), so a killed search resumes
(`--resume`) with the jobs still missing. A leader ahead of everyone by more than the margin has
nothing to re-rank: the plan names it alone and no job runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from shufflesearch._exec._progress import Progress
from shufflesearch._io import write_json_atomic
from shufflesearch.driver._jobs import JobPool
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.runs._pareto import ACC, rerank_candidates, rerank_results
from shufflesearch.runs._records import FIELDS, RecordLog, make_row, read_rows
from shufflesearch.runs._run import RERANK_PLAN, RERANK_ROWS

if TYPE_CHECKING:
    from shufflesearch.driver._loop import SearchLoop
    from shufflesearch.space._configs import RerankConfig
    from shufflesearch.space._space import SearchSpace

ROW_FIELDS = ("stage", "proxy_acc", "subset_per_class", *FIELDS)


def plan(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str], cfg: RerankConfig, n: int,
         proxy_epochs: int, seed: int) -> dict[str, Any]:
    """The re-ranking of a finished search, as rerank.json records it (a pure function of its arguments).

    Args:
        rows: The search's trial rows.
        objectives: The run's objectives.
        cfg: The `rerank:` settings.
        n: Images in the search-validation split (the margin's binomial standard error).
        proxy_epochs: The proxy's epochs (x `cfg.epochs_factor`: the re-ranking's).
        seed: The run's seed: the re-ranking's seeds are seed, seed + 1, ...

    Returns:
        `candidates` (trial numbers, most accurate first, the leader first) and their `proxy_accs`,
        `margin` (accuracy, `margin_se` standard errors on `n` images), `seeds` (none where only the
        leader is a candidate), `max_epochs` and `subset_per_class`.
    """
    chosen, margin = rerank_candidates(rows, objectives, n, cfg.margin, cfg.candidates)
    return {"candidates": [r["number"] for r in chosen], "proxy_accs": [r[ACC] for r in chosen],
            "margin": margin, "margin_se": cfg.margin, "n": n,
            "seeds": [seed + i for i in range(cfg.seeds)] if len(chosen) > 1 else [],
            "max_epochs": proxy_epochs * cfg.epochs_factor, "subset_per_class": cfg.subset_per_class}


def rerank(loop: SearchLoop, rows: Sequence[Mapping[str, Any]], cfg: RerankConfig,
           budget: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Re-rank the finished search `loop` ran (its trial `rows`): plan it, train what is missing, return
    `rerank_results` (None if a job was lost for good and is still missing).

    Args:
        loop: The search's run (space, settings, data, train config, folder, cluster, progress).
        rows: Its trial rows, all finished.
        cfg: The `rerank:` settings.
        budget: The run's budget record (every row's cost basis).
    """
    from shufflesearch.data import load_data

    data = loop.data
    if cfg.subset_per_class != loop.space.proxy.data.subset_per_class:  # same search-validation split
        data = load_data(replace(loop.space.proxy.data, subset_per_class=cfg.subset_per_class))
    the_plan = plan(rows, loop.settings.objectives, cfg, len(data.eval_y), loop.space.proxy.train.epochs,
                    loop.settings.seed)
    plan_path, rows_path = loop.run_dir / RERANK_PLAN, loop.run_dir / RERANK_ROWS
    write_json_atomic(plan_path, the_plan)
    by_number = {r["number"]: r for r in rows}
    kept = read_rows(rows_path)
    done = {(r["number"], r["seed"]) for r in kept if r["status"] in ("complete", "diverged")
            and r["max_epochs"] == the_plan["max_epochs"] and r["subset_per_class"] == the_plan["subset_per_class"]}
    jobs = {(n, s): {"arch": by_number[n]["arch"], "seed": s}
            for n in the_plan["candidates"] for s in the_plan["seeds"] if (n, s) not in done}
    loop.progress(_start_line(the_plan, len(jobs), data.summary()))
    if jobs:
        train_cfg = replace(loop.train_cfg, epochs=the_plan["max_epochs"])
        pool = JobPool(data, train_cfg, loop.settings.cpus_per_trial, loop.settings.gpus_per_trial,
                       loop.settings.max_retries, loop.address, loop.ray_log)
        printer = Progress(len(jobs), loop.progress, label=lambda r: f"t{r['number']} seed {r['seed']}")
        log = RecordLog(rows_path, kept, fields=ROW_FIELDS, announce=printer,
                        key=lambda r: (r["number"], r["seed"], r["max_epochs"], r["subset_per_class"]))
        pool.run(jobs, _row_maker(by_number, the_plan, budget), log, printer, lambda key: f"t{key[0]} seed {key[1]}")
    return rerank_results(read_rows(rows_path), the_plan)


def _row_maker(trials: Mapping[int, Mapping[str, Any]], the_plan: Mapping[str, Any],
               budget: Mapping[str, Any]) -> Callable[[tuple[int, int], dict[str, Any]], dict[str, Any]]:
    """The row of a finished re-ranking job (candidate `number`, `seed`): `make_row` of its report, marked
    `stage: rerank`, with its fidelity's `subset_per_class` and its trial's proxy accuracy `proxy_acc`."""
    def row(key: tuple[int, int], report: dict[str, Any]) -> dict[str, Any]:
        number, seed = key
        trial = trials[number]
        made = make_row(Arch.from_dict(trial["arch"]), report, report["status"], number=number, budget=budget,
                        max_epochs=the_plan["max_epochs"], seed=seed)
        return {**made, "stage": "rerank", "subset_per_class": the_plan["subset_per_class"], "proxy_acc": trial[ACC]}
    return row


def _start_line(the_plan: Mapping[str, Any], jobs: int, data: str) -> str:
    n, margin = len(the_plan["candidates"]), the_plan["margin"]
    within = (f"{n} candidate(s) within {margin * 100:.2f} points of the leader "
              f"({the_plan['margin_se']:g} standard errors on {the_plan['n']} search-validation images)")
    if n < 2:
        return f"re-ranking: no trial within {margin * 100:.2f} points of the leader: nothing to re-rank"
    return (f"re-ranking: {within}: {jobs} training(s) to run, {the_plan['max_epochs']} epochs, "
            f"seeds {the_plan['seeds']}, on {data}")



def resolve(space: SearchSpace, previous: Mapping[str, Any] | None, given: bool | None,
            train_fn: Callable | None) -> RerankConfig:
    """The run's `rerank:` settings: the space's (a resumed run's: those it recorded), turned on or off by
    `given` (`search(rerank=)`, `--rerank/--no-rerank`) where not None. A re-ranking trains with the
    proxy trainer, so one asked for with a `train_fn` is refused."""
    from shufflesearch.space._configs import RerankConfig

    cfg = space.rerank
    if previous and isinstance(previous.get("rerank"), Mapping):
        cfg = RerankConfig.from_dict(previous["rerank"], "the resumed run's config.json")
    if given is not None:
        cfg = replace(cfg, enabled=given)
    if cfg.enabled and train_fn is not None:
        raise ShuffleSearchError("rerank.enabled = true: not with train_fn (the re-ranking trains with the proxy "
                                 "trainer); turn it off (--no-rerank, rerank=False)")
    return cfg
