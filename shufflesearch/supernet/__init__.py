"""The weight-sharing evaluator (Single Path One-Shot): the `Supernet` holding every path of a space,
its training (one sampled path a step, resumable, data-parallel under Ray Train), and scoring a path
(inherited weights, BatchNorm re-estimation, accuracy on the search-validation split).
"""

from shufflesearch.supernet._network import Supernet
from shufflesearch.supernet._score import load_supernet, path_weights
from shufflesearch.supernet._train import train_supernet

__all__ = ["Supernet", "load_supernet", "path_weights", "train_supernet"]
