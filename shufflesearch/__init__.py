"""shufflesearch: search ShuffleNet-family architectures under a FLOPs budget; use winners as timm models.

Importing the package registers the paper's model zoo, the generic `shufflesearch_net` and every
exported search winner under the registry roots in timm.
"""

from .arch import Arch, Head, Stage, Stem
from .cost import Cost, cost
from .data import ProxyData, load_data
from .errors import ShuffleSearchError
from .export import export_run
from .final import train_final
from .layers import channel_shuffle
from .model import ShuffleNet, build
from .pareto import best_row, hypervolume, pareto_front
from .pipeline import PipelineResult, run_pipeline
from .proxy import Latency, ProxyResult, TrainConfig, measure_latency, train_proxy
from .registry import get_arch, list_archs, register_models, resolve_arch  # importing it registers models in timm
from .report import write_report
from .search import SearchResult, search
from .space import SearchSettings, SearchSpace
from .supernet import Supernet
from .supernet_train import SupernetConfig, train_supernet

__version__ = "0.1.0"

__all__ = [
    "Arch",
    "Cost",
    "Head",
    "Latency",
    "PipelineResult",
    "ProxyData",
    "ProxyResult",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "ShuffleNet",
    "ShuffleSearchError",
    "Stage",
    "Stem",
    "Supernet",
    "SupernetConfig",
    "TrainConfig",
    "best_row",
    "build",
    "channel_shuffle",
    "cost",
    "export_run",
    "get_arch",
    "hypervolume",
    "list_archs",
    "load_data",
    "measure_latency",
    "pareto_front",
    "register_models",
    "resolve_arch",
    "run_pipeline",
    "search",
    "train_final",
    "train_proxy",
    "train_supernet",
    "write_report",
]
