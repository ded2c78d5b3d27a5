"""Search spaces: the YAML format and its validation (`SearchSpace.from_yaml`), sampling a genome
from an Optuna trial, the objectives, and the plain settings of a space's sections (`SearchSettings`,
`Budget`, `DataConfig` + `TrainConfig` = `ProxyConfig`, `SupernetConfig`, `RerankConfig`). Imports no torch.
"""

from shufflesearch.space._configs import DataConfig, ProxyConfig, RerankConfig, SupernetConfig, TrainConfig
from shufflesearch.space._file import EVALUATORS, Budget, SearchSettings
from shufflesearch.space._objectives import OBJECTIVE_CHOICES, OBJECTIVES, Objective, cost_axis, parse_objectives
from shufflesearch.space._space import SearchSpace, shipped_spaces

__all__ = [
    "EVALUATORS", "OBJECTIVES", "OBJECTIVE_CHOICES", "Budget", "DataConfig", "Objective", "ProxyConfig",
    "RerankConfig", "SearchSettings", "SearchSpace", "SupernetConfig", "TrainConfig", "cost_axis", "parse_objectives",
    "shipped_spaces",
]
