"""Search spaces: a YAML file of open ShuffleNet choices and a FLOPs budget, sampled within that budget.

FLOPs here, as in both ShuffleNet papers and torchvision's model tables, means multiply-adds (MACs):
the paper's "140 MFLOPs" ShuffleNet costs 140 here (`shufflesearch.cost`).

`SearchSpace.sample(trial)` is an Optuna define-by-run function. It suggests the discrete structure
(unit type, groups, repeats, kernel, shuffle, ... per stage or shared), then a fraction of the budget
(`budget.fraction`, log-uniform in [budget.min_fraction, 1]), then picks by bisection the largest
width multiplier whose rounded architecture costs at most that fraction of the budget. Only costed
architectures are returned, so none exceeds the budget. A structure too big even at the smallest
width is not returned: the trial gets the Optuna constraint `budget` > 0 (`trial.set_constraint`).

The spaces in the repository's `search_spaces/` ship inside the package (`shipped_spaces()`): a bare
name such as "demo" means the shipped file when no file of that name exists; a path always means the file.

The file's format and its validation live in `_space_file.py` (documented in search_spaces/README.md);
structures, widths, counting and the cost range in `_space_sampling.py`; the channel rules in `arch.py`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import yaml

from shufflesearch._io import parse_yaml, read_text
from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.genome._arch import Arch, Stem
from shufflesearch.genome._cost import Cost, cost
from shufflesearch.space import _sampling as sampling
from shufflesearch.space._configs import ProxyConfig, RerankConfig, SupernetConfig
from shufflesearch.space._file import Budget, Choice, SearchSettings, StageSpace, parse_space

if TYPE_CHECKING:
    import optuna

__all__ = ["Budget", "SearchSettings", "SearchSpace", "shipped_spaces"]

_SHIPPED = "shufflesearch.search_spaces"  # the repository's search_spaces/, mapped into the package


def shipped_spaces() -> dict[str, Path]:
    """The search space files that come with the package, by name ("demo": .../demo.yaml), sorted."""
    files = (Path(str(f)) for f in resources.files(_SHIPPED).iterdir() if f.name.endswith(".yaml"))
    return {f.stem: f for f in sorted(files, key=lambda f: f.stem)}


def _space_path(path: str | Path) -> Path:
    """The file `path` names: itself if it exists, else the shipped space of that bare name, else an error."""
    path = Path(path)
    if path.exists() or path.parent != Path("."):
        return path
    shipped = shipped_spaces()
    if path.name in shipped:
        return shipped[path.name]
    raise ShuffleSearchError(f"{path}: no such search space file, and no shipped space of that name "
                             f"(shipped: {', '.join(shipped)}; `shufflesearch spaces` lists them)")


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """A validated search space; build with `from_yaml(path)` or `from_dict(data, source)`."""

    name: str
    description: str
    source: str
    budget: Budget
    width_multiplier: tuple[float, float]
    stem: Stem
    stem_channels: Choice
    head_conv: Choice
    shared: dict[str, Choice]
    stages: tuple[StageSpace, ...]
    proxy: ProxyConfig  # the `proxy:` section: its data and its training
    search: SearchSettings
    evaluator: str  # 'proxy' or 'supernet' (`space._file.EVALUATORS`)
    supernet: SupernetConfig  # the `supernet:` section
    rerank: RerankConfig  # the `rerank:` section: the search's re-ranking of its near-ties
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Load and validate a space file (`yaml.safe_load`), or a shipped space by name ("demo")."""
        path = _space_path(path)
        data = parse_yaml(read_text(path, "search space file"), str(path))
        if isinstance(data, Mapping) and "name" not in data:
            data = {"name": path.stem, **data}
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "search space") -> SearchSpace:
        """Validate a parsed space; errors name `source`, the YAML path and the value."""
        with errors_from(source):
            space = cls(**parse_space(data, source))
            if space.budget.mflops is None:  # a latency budget alone: FLOPs capped by the space's dearest only
                dearest = sampling.extreme(space, space.width_multiplier[1], max)
                object.__setattr__(space, "budget", replace(space.budget, mflops=math.ceil(dearest.mflops * 100) / 100,
                                                            flops_capped=False))
            sampling.check_budget(space)
        return space

    def with_budget(self, mflops: float | None = None, latency_ms: float | None = None,
                    latency: Mapping[str, Any] | None = None) -> SearchSpace:
        """This space with another budget: millions of multiply-adds, milliseconds on the latency target,
        and `budget.latency` settings merged over the space's (None: as the space has it)."""
        raw = copy.deepcopy(self.raw)
        budget = raw.setdefault("budget", {})
        if mflops is not None:
            budget["mflops"] = mflops
        if latency_ms is not None:
            budget["latency_ms"] = latency_ms
        if latency:
            budget["latency"] = {**(budget.get("latency") or {}), **latency}
        return SearchSpace.from_dict(raw, self.source)

    def to_yaml(self) -> str:
        """The space as loaded (with any budget override), as YAML."""
        return yaml.safe_dump(self.raw, sort_keys=False)

    def sample(self, trial: optuna.Trial, latency: Callable[[Arch], float] | None = None) -> Arch | None:
        """Define-by-run: suggest an architecture within the budget, or None if its structure cannot fit.

        Records in `trial.user_attrs`: `arch` (genome JSON), `arch_hash`, `mflops` (multiply-adds),
        `params`, `width_multiplier`; and the constraint `budget` (cost / budget - 1, feasible <= 0),
        plus `params` when `budget.max_params` is set. On None the constraints are > 0 and the caller
        should tell the study the trial is PRUNED (Optuna's TPE then learns to avoid it), never train it.
        `latency(arch)` (milliseconds on the budget's target, measured or predicted) enforces
        `budget.latency_ms` too: the user attribute `latency_ms` and the constraint `latency`; given alone,
        the latency budget is what the width is fitted to. Without it the latency budget is not checked.
        """
        return sampling.sample(self, trial, latency)

    def random_sample(self, n: int, seed: int = 0) -> list[Arch]:
        """`n` architectures as `sample` draws them under Optuna's `RandomSampler(seed)`, skipping the
        structures that cannot fit the budget (same seed, same list)."""
        import optuna

        from shufflesearch._exec._optuna import quiet_optuna

        with quiet_optuna():
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        archs: list[Arch] = []
        while len(archs) < n:
            arch = self.sample(study.ask())
            if arch is not None:
                archs.append(arch)
        return archs

    def cost(self, arch: Arch) -> Cost:
        """`cost(arch)` at the budget's input size and classes: what the budget caps."""
        return cost(arch, self.budget.input_size, self.budget.num_classes)

    def count(self) -> int:
        """The number of distinct discrete structures (every choice but the width).

        Each structure is then sampled at a continuous width multiplier, so widths are not counted.
        Two stem choices that round to the same channels still count twice.
        """
        return sampling.count(self)

    def cost_range(self) -> tuple[Cost, Cost]:
        """The cheapest and dearest architecture of the space, ignoring the budget (at its input size).

        Found by coordinate descent over the choices at the smallest / largest width multiplier;
        exact when each choice's effect on cost does not depend on the others' (true of the shipped
        spaces, whose results the tests check against enumeration).
        """
        return (sampling.extreme(self, self.width_multiplier[0], min),
                sampling.extreme(self, self.width_multiplier[1], max))
