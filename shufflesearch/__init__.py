"""shufflesearch: search ShuffleNet-family architectures under a FLOPs budget; use winners as timm models.

The public names below load on first use (PEP 562), so `import shufflesearch` and the CLI's quick
commands import no torch, timm or Ray. timm learns the paper's zoo, the generic `shufflesearch_net`
and every exported search winner under the registry roots as soon as both are imported, in either
order (`_timm_hook`): `import shufflesearch, timm; timm.create_model("ss_demo_best", pretrained=True)`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shufflesearch import _timm_hook

__version__ = "0.1.0"

_EXPORTS = {  # public name -> the package that defines it
    "ShuffleSearchError": "shufflesearch.errors",
    **dict.fromkeys(["Arch", "Cost", "Head", "Stage", "Stem", "cost"], "shufflesearch.genome"),
    **dict.fromkeys(["DataConfig", "ProxyConfig", "SearchSettings", "SearchSpace", "SupernetConfig", "TrainConfig"],
                    "shufflesearch.space"),
    **dict.fromkeys(["ProxyData", "load_data"], "shufflesearch.data"),
    **dict.fromkeys(["get_arch", "list_archs", "resolve_arch"], "shufflesearch.genome"),
    **dict.fromkeys(["ShuffleNet", "build", "channel_shuffle", "register_models"], "shufflesearch.models"),
    **dict.fromkeys(["Latency", "LatencyTable", "Measurement", "ProxyResult", "measure", "measure_latency", "train_final",
                     "train_proxy"], "shufflesearch.train"),
    **dict.fromkeys(["Run", "best_row", "greedy_pick", "hypervolume", "load_run", "pareto_front"],
                    "shufflesearch.runs"),
    **dict.fromkeys(["Supernet", "train_supernet"], "shufflesearch.supernet"),
    **dict.fromkeys(["SearchResult", "build_table_on_target", "measure_on_target", "search"], "shufflesearch.driver"),
    **dict.fromkeys(["FinalResult", "final_evaluation", "run_baselines"], "shufflesearch.evaluation"),
    "write_report": "shufflesearch.report",
    "export_run": "shufflesearch.export",
    **dict.fromkeys(["PipelineResult", "run_pipeline"], "shufflesearch.pipeline"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shufflesearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from shufflesearch.data import ProxyData, load_data
    from shufflesearch.driver import SearchResult, build_table_on_target, measure_on_target, search
    from shufflesearch.errors import ShuffleSearchError
    from shufflesearch.evaluation import FinalResult, final_evaluation, run_baselines
    from shufflesearch.export import export_run
    from shufflesearch.genome import Arch, Cost, Head, Stage, Stem, cost
    from shufflesearch.models import (
        ShuffleNet,
        build,
        channel_shuffle,
        get_arch,
        list_archs,
        register_models,
        resolve_arch,
    )
    from shufflesearch.pipeline import PipelineResult, run_pipeline
    from shufflesearch.report import write_report
    from shufflesearch.runs import Run, best_row, greedy_pick, hypervolume, load_run, pareto_front
    from shufflesearch.space import DataConfig, ProxyConfig, SearchSettings, SearchSpace, SupernetConfig, TrainConfig
    from shufflesearch.supernet import Supernet, train_supernet
    from shufflesearch.train import (
        Latency,
        LatencyTable,
        Measurement,
        ProxyResult,
        measure,
        measure_latency,
        train_final,
        train_proxy,
    )

_timm_hook.install()
