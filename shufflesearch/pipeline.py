"""What `shufflesearch search` does, as one call: the search, then the zoo baselines under the same
protocol (if asked), the export of the Pareto front and the best trial as timm models, and the report.

The CLI only prints what `run_pipeline` returns; a Python user gets the same run folder from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from shufflesearch.driver._search import SearchResult, search
from shufflesearch.evaluation._baselines import run_baselines
from shufflesearch.export import export_run
from shufflesearch.report._report import write_report
from shufflesearch.space._space import SearchSpace


@dataclass(frozen=True)
class PipelineResult:
    """The search's result, the baseline rows trained, the exported model folders and the report page.

    An interrupted search (Ctrl-C) stops the pipeline: nothing is exported or reported.
    """

    search: SearchResult
    baselines: list[dict[str, Any]] = field(default_factory=list)
    pareto_models: list[Path] = field(default_factory=list)  # ss_<run>_p1, p2, ...: the front, cheapest first
    best_model: Path | None = None  # ss_<run>_best
    report: Path | None = None  # runs/<run>/report/report.html


def run_pipeline(space: SearchSpace | str | Path, *, baselines: bool = False, address: str | None = None,
                 progress: Callable[[str], None] | None = print, **search_options: Any) -> PipelineResult:
    """`search(space, **search_options)`, then, unless it was interrupted: `run_baselines` (when
    `baselines`), `export_run` of the front and of the best trial, and `write_report`.

    `address` (a running Ray cluster) serves the search and the baselines; `progress` gets their lines.
    """
    result = search(space, address=address, progress=progress, **search_options)
    if result.interrupted:
        return PipelineResult(result)
    rows = run_baselines(result.run_dir, address=address, progress=progress) if baselines else []
    pareto = export_run(result.run_dir, "pareto") if result.best else []
    best = export_run(result.run_dir, "best")[0] if result.best else None
    return PipelineResult(result, rows, pareto, best, write_report(result.run_dir))
