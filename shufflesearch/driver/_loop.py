"""What either loop of a search runs with: Tune's trials (`_search._run_tune`) or the supernet's scoring
pool (`_supernet.score_candidates`).

`search` resolves a run once (its space, settings, data, train config, folder, cluster) and hands both
loops the same `SearchLoop`, so neither takes a dozen loose arguments and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.driver._latency import LatencyGate
    from shufflesearch.space._configs import TrainConfig
    from shufflesearch.space._space import SearchSettings, SearchSpace


@dataclass(frozen=True)
class SearchLoop:
    """A search's run, as its loop needs it.

    Args:
        space: The run's search space.
        settings: The run's search settings (objectives, cpus and GPUs per trial, seed, retries).
        data: The proxy data.
        train_cfg: The trials' train config, its device resolved.
        run_dir: The run folder.
        address: A Ray cluster's address, None for a local Ray.
        remaining: Trials still to run.
        progress: Where the loop's lines go (the start line, retries, the supernet's training).
        latency: The run's latency gate when its budget has `latency_ms` (`_latency.LatencyGate`): candidates
            are measured on the target (or predicted) before they train, and their rows carry that latency.
    """

    space: SearchSpace
    settings: SearchSettings
    data: ProxyData
    train_cfg: TrainConfig
    run_dir: Path
    address: str | None
    remaining: int
    progress: Callable[[str], None]
    latency: LatencyGate | None = None

    @property
    def ray_log(self) -> Path:
        """Where Ray's own messages go."""
        return self.run_dir / "ray.log"
