"""What follows a search on the same protocol: the zoo baselines on the search-validation split
(`run_baselines`) and the final evaluation on the test split (`final_evaluation`: the run's best and
the zoo within its budget retrained from scratch with several seeds).
"""

from shufflesearch.evaluation._baselines import run_baselines
from shufflesearch.evaluation._final import FinalResult, final_evaluation

__all__ = ["FinalResult", "final_evaluation", "run_baselines"]
