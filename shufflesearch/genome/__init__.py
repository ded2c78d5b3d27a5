"""The genome, the one currency of the package: `Arch` (stem, stages, head) with its validation,
(de)serialisation and hash; the analytic cost model (`cost`: exact multiply-adds and parameters, no
module built); the ShuffleNet papers' zoo (`ZOO`); the catalogue of every model name and its genome
(`get_arch`: the zoo and the found models in model folders). Imports no torch, timm, Optuna or Ray.
"""

from shufflesearch.genome._arch import Arch, Head, Stage, Stem, Unit
from shufflesearch.genome._catalog import get_arch, list_archs, resolve_arch
from shufflesearch.genome._cost import Cost, budget_cost, cost
from shufflesearch.genome._zoo import ZOO

__all__ = ["ZOO", "Arch", "Cost", "Head", "Stage", "Stem", "Unit", "budget_cost", "cost", "get_arch", "list_archs",
           "resolve_arch"]
