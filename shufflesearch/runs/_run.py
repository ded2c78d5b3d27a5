"""Reading a run directory (`runs/<name>/`, its files described in runs/README.md): what the report,
the export and the baselines start from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from shufflesearch._io import read_json
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.runs._pareto import rerank_results, reranked
from shufflesearch.runs._records import read_rows

RERANK_PLAN, RERANK_ROWS = "rerank.json", "rerank.jsonl"  # a search's re-ranking (`driver._rerank`)
REJECTED = "rejected.jsonl"  # candidates a latency budget refused, one row each (`driver`)


@dataclass
class Run:
    """A run directory as read by `load_run`."""

    path: Path
    config: dict
    trials: list[dict]
    baselines: list[dict]
    summary: dict | None
    models: dict[int, list[str]]  # trial number -> exported timm names
    final: dict | None = None  # final/summary.json: the final evaluation on the test split, if run
    rerank_plan: dict | None = None  # rerank.json: the search's re-ranking of its near-ties, if it ran one
    rerank_rows: list[dict] = field(default_factory=list)  # rerank.jsonl: its trainings, one per candidate and seed
    rejected: list[dict] = field(default_factory=list)  # rejected.jsonl: candidates refused for latency, untrained

    @property
    def name(self) -> str:
        return self.config.get("name") or self.path.name

    @property
    def rerank_results(self) -> list[dict] | None:
        """Per re-ranked candidate, its re-ranked accuracies, mean and sd (`pareto.rerank_results`); None
        where the run has no finished re-ranking."""
        return None if self.rerank_plan is None else rerank_results(self.rerank_rows, self.rerank_plan)

    @property
    def reranked(self) -> dict[int, float | None] | None:
        """The re-ranking as `best_row` and `pareto_front` take it: what every command's best comes from."""
        return reranked(self.rerank_results)

    @property
    def legacy(self) -> bool:
        """Recorded before the three splits (see `records.upgrade_row`)."""
        return any(r.get("legacy_split") for r in self.trials)


RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")


def run_folder(runs_dir: str | Path, name: str) -> Path:
    """`runs_dir/name` for a new or resumed run, whose name must be one folder name: letters, digits,
    '.', '_' and '-' (not '.' or '..'), so a run never lands outside `runs_dir` or inside another run."""
    if not RUN_NAME.fullmatch(name) or set(name) == {"."}:
        fixed = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "run"
        raise ShuffleSearchError(f"run name {name!r}: must be one folder name of letters, digits, '.', '_' and "
                                 f"'-' (e.g. {fixed!r})")
    return Path(runs_dir) / name


def resolve_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run given as a path, or as a name under `runs_dir` (the CLI's --runs-dir)."""
    for path in (Path(run), Path(runs_dir) / str(run)):
        if path.is_dir():
            return path
    raise ShuffleSearchError(f"run {str(run)!r}: no such run directory (looked for {run} and "
                             f"{Path(runs_dir) / str(run)})")


def _exported_models(run_dir: Path) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for cfg_path in sorted(run_dir.glob("models/*/config.json")):
        trial = (read_json(cfg_path, "the model's config").get("shufflesearch") or {}).get("trial")
        if isinstance(trial, int):
            names.setdefault(trial, []).append(cfg_path.parent.name)
    return names


def load_run(run: str | Path) -> Run:
    """Read config.json, trials.jsonl, baselines.jsonl, summary.json, models/*/config.json,
    final/summary.json, rerank.json, rerank.jsonl and rejected.jsonl."""
    path = resolve_run(run)
    trials_path = path / "trials.jsonl"
    if not trials_path.is_file():
        raise ShuffleSearchError(f"{trials_path}: missing (no trial of this run has finished yet?)")
    config_path, summary_path, final_path = path / "config.json", path / "summary.json", path / "final" / "summary.json"
    return Run(
        path=path,
        config=read_json(config_path, "the run's config") if config_path.is_file() else {},
        trials=read_rows(trials_path),
        baselines=read_rows(path / "baselines.jsonl"),
        summary=read_json(summary_path, "the run's summary") if summary_path.is_file() else None,
        models=_exported_models(path),
        final=read_json(final_path, "the final evaluation's summary") if final_path.is_file() else None,
        rerank_plan=read_json(path / RERANK_PLAN, "the re-ranking's plan") if (path / RERANK_PLAN).is_file() else None,
        rerank_rows=read_rows(path / RERANK_ROWS),
        rejected=read_rows(path / REJECTED),
    )
