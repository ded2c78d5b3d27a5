"""The search driver: `search` runs a space's trials on Ray Tune (or scores supernet paths on Ray
actors) while an Optuna study, kept in the run folder's journal, proposes the genomes; MO-ASHA
(`_moasha`) is its two-objective scheduler, one scheduler per file as in Ray Tune. Latency on a budget's
target (`_latency`): `measure_on_target`, `build_table_on_target`, and the gate that measures each
candidate there before it trains.

Named `driver`, not `search`, so that `shufflesearch.search` stays the function.
"""

from shufflesearch.driver._latency import build_table_on_target, measure_on_target
from shufflesearch.driver._search import SearchResult, search

__all__ = ["SearchResult", "build_table_on_target", "measure_on_target", "search"]
