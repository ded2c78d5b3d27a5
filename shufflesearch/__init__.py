"""shufflesearch: search ShuffleNet-family architectures under a FLOPs budget; use winners as timm models.

Importing the package registers the paper's model zoo, the generic `shufflesearch_net` and every
exported search winner under the registry roots in timm.
"""

from .arch import Arch, Head, Stage, Stem
from .cost import Cost, cost
from .errors import ShuffleSearchError

__version__ = "0.1.0"

__all__ = [
    "Arch",
    "Cost",
    "Head",
    "ShuffleSearchError",
    "Stage",
    "Stem",
    "cost",
]
