"""Latency on the budget's target, known before a candidate is trained: measured there, or predicted from a
latency table built there.

Where a measurement runs (`budget.latency.target`):

* `local` and `cuda`: in this process, the driver's, on its CPU (`threads` pinned) or its CUDA device.
  Trials running beside it on the same machine contend with it; a quiet target is a node of its own;
* any other name: a Ray custom resource (`ray start --resources '{"rpi4": 1}'`). The measurements run in
  one Ray actor (`_Probe`) that holds one unit of it, so they run on that node, one at a time: no two of
  ours contend there. Give that node `--num-cpus 0` and no trial runs on it either.

`LatencyGate` is a run's estimator for `SearchSpace.sample`: each distinct genome is measured (or predicted)
once; the candidates over `budget.latency_ms` are never trained, the study is told why (the `latency`
constraint, `space._sampling.sample`) and each is written to `rejected.jsonl` in the run folder, the driver
being the only writer there. Written here because Ray's placement (a custom resource, an actor) and Optuna's
constraints are the libraries' own; what is ours is deciding before training, one target at a time.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.runs._records import append_rows

if TYPE_CHECKING:
    import optuna
    import torch.nn as nn

    from shufflesearch.space._configs import LatencySettings
    from shufflesearch.space._space import SearchSpace
    from shufflesearch.train._latency import Measurement
    from shufflesearch.train._latency_table import LatencyTable

IN_PROCESS = ("local", "cuda")  # targets measured in the driver's process; any other is a Ray custom resource
MAX_LATENCY_REJECTIONS = 200  # candidates in a row over the latency budget before the search gives up
REJECTED_FIELDS = ("number", "origin", "arch_hash", "summary", "mflops", "params", "latency_ms", "latency_iqr_ms",
                   "latency_node", "budget_latency_ms", "reason", "arch")  # rejected.jsonl's rows (and .csv's columns)


class _Probe:
    """The Ray actor that measures on a custom-resource target (one at a time: Ray runs an actor's calls in turn)."""

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def fingerprint(self, settings: LatencySettings) -> dict[str, Any]:
        from shufflesearch.train._latency import fingerprint

        return fingerprint(settings)

    def measure(self, model: Arch | nn.Module, settings: LatencySettings, input_size: int, num_classes: int,
                in_chans: int) -> tuple[Measurement, str]:
        from shufflesearch.train._latency import measure

        return measure(model, settings, input_size, num_classes=num_classes, in_chans=in_chans), self.node()

    def build_table(self, space: SearchSpace, settings: LatencySettings) -> LatencyTable:
        from shufflesearch.train._latency_table import LatencyTable

        return LatencyTable.build(space, settings, progress=None)


def _start_probe(settings: LatencySettings) -> Any:
    """The `_Probe` actor on the node carrying `settings.target`, in the running Ray; a target no node
    carries is one line (Ray would wait for it for ever)."""
    import ray

    have = ray.cluster_resources().get(settings.target, 0.0)
    if have < 1:
        raise ShuffleSearchError(
            f"budget.latency.target = {settings.target!r}: no node of the Ray cluster carries the custom resource "
            f"{settings.target!r} ({have:g} of it; start one with: ray start --address ... --resources "
            f"'{{\"{settings.target}\": 1}}'), or use local or cuda")
    return ray.remote(_Probe).options(resources={settings.target: 1}, num_cpus=0, max_restarts=0).remote()


def _check_cuda(settings: LatencySettings) -> None:
    import torch

    if settings.target == "cuda" and not torch.cuda.is_available():
        raise ShuffleSearchError("budget.latency.target = 'cuda': torch sees no CUDA device on this machine; "
                                 "use local or a Ray custom resource of a node with one")


def measure_on_target(model: Arch | nn.Module, settings: LatencySettings, input_size: int, num_classes: int = 1000,
                      in_chans: int = 3, address: str | None = None) -> tuple[Measurement, str]:
    """Measure `model` (a genome or a module) on `settings.target`: the measurement and the Ray node id it ran
    on ("local" when it ran in this process). A custom-resource target joins the Ray cluster at `address`
    (else $RAY_ADDRESS) for the call.

    Args:
        model: The architecture (built with `num_classes` outputs and `in_chans` input channels) or module.
        settings: Where and how (`LatencySettings`): target, backend, batch, threads, warm-up and runs.
        input_size: The square input side in pixels.
        num_classes: The classifier's outputs, when `model` is a genome.
        in_chans: The input channels.
        address: A Ray cluster's address, for a custom-resource target.
    """
    from shufflesearch.train._latency import measure

    if settings.target in IN_PROCESS:
        _check_cuda(settings)
        return measure(model, settings, input_size, num_classes=num_classes, in_chans=in_chans), "local"
    import ray

    from shufflesearch._exec._ray import ray_session

    with ray_session(address):
        probe = _start_probe(settings)
        try:
            return ray.get(probe.measure.remote(model, settings, input_size, num_classes, in_chans))
        finally:
            ray.kill(probe)


def build_table_on_target(space: SearchSpace, settings: LatencySettings, address: str | None = None,
                          progress: Callable[[str], None] | None = print) -> LatencyTable:
    """`LatencyTable.build(space, settings)` run on `settings.target` (see `measure_on_target`); on a
    custom-resource target the table is built there in one call, and `progress` hears only its start and end."""
    from shufflesearch.train._latency_table import LatencyTable

    if settings.target in IN_PROCESS:
        _check_cuda(settings)
        return LatencyTable.build(space, settings, progress=progress)
    import ray

    from shufflesearch._exec._ray import ray_session

    with ray_session(address):
        probe = _start_probe(settings)
        try:
            node = ray.get(probe.node.remote())
            if progress:
                progress(f"building the latency table of {space.name} on the node carrying {settings.target!r} ({node})")
            table = ray.get(probe.build_table.remote(space, settings))
        finally:
            ray.kill(probe)
    if progress:
        progress(f"latency table of {space.name} built on {node}")
    return table


def target_latencies(budget: Mapping[str, Any], archs: Mapping[str, Arch], address: str | None = None
                     ) -> dict[str, dict[str, Any]]:
    """The latency on a run's target (config.json `budget`: its `latency` settings) of each of `archs`, as the
    row fields a gate gives (`LatencyGate.fields`): predicted from its table, else measured there, one at a time."""
    from shufflesearch._exec._ray import ray_session
    from shufflesearch.space._configs import LatencySettings
    from shufflesearch.train._latency_table import LatencyTable

    settings = LatencySettings(**budget["latency"])
    size, classes = settings.input_size or budget["input_size"], budget.get("num_classes", 1000)
    if settings.table:
        table = LatencyTable.load(settings.table)
        return {name: _row_fields(table.predict(arch)) for name, arch in archs.items()}
    with contextlib.nullcontext() if settings.target in IN_PROCESS else ray_session(address):
        return {name: _row_fields(*measure_on_target(arch, settings, size, classes, address=address))
                for name, arch in archs.items()}


def _row_fields(latency: float | Measurement, node: str | None = None) -> dict[str, Any]:
    """A record row's latency fields: `latency_ms` (the median), `latency_iqr_ms` and `latency_node` (where it
    was measured), the last two None for a prediction (`latency` in ms)."""
    if isinstance(latency, float):
        return {"latency_ms": latency, "latency_iqr_ms": None, "latency_node": None}
    return {"latency_ms": latency.median_ms, "latency_iqr_ms": latency.iqr_ms, "latency_node": node}


class LatencyGate:
    """A run's latency estimator (`SearchSpace.sample(trial, latency=gate)`): each genome's milliseconds on
    the budget's target, measured there once (or predicted from `budget.latency.table`).

    Args:
        space: The run's space; its `budget.latency_ms` and `budget.latency` say the limit and the target.
        rejected: Where the candidates over the limit are written, one JSON row each (`rejected.jsonl`).
    """

    def __init__(self, space: SearchSpace, rejected: Path):
        self.space, self.budget, self.settings = space, space.budget, space.budget.latency
        self.rejected_path = rejected
        self.table: LatencyTable | None = None
        if self.settings.table:
            from shufflesearch.train._latency_table import LatencyTable

            self.table = LatencyTable.load(self.settings.table)
            self.table.check(self.settings, self.budget.latency_size, self.budget.num_classes, None, space.source)
        self._probe: Any = None
        self._known: dict[str, dict[str, Any]] = {}  # arch hash -> its row fields (`fields`)
        self._in_a_row = 0
        self.info: dict[str, Any] = {}  # what `open` found, for config.json

    def open(self) -> dict[str, Any]:
        """Reach the target (in the Ray session the search runs in) and check a table's fingerprint against
        it; the fields config.json records: `latency_fingerprint`, `latency_node` (None: predicted only)."""
        from shufflesearch.train._latency import fingerprint

        found, node = None, None
        if self.settings.target in IN_PROCESS:
            _check_cuda(self.settings)
            found, node = fingerprint(self.settings), "local"
        elif self.table is None or _carried(self.settings.target):  # a table's target need not be in the cluster
            import ray

            self._probe = _start_probe(self.settings)
            found, node = ray.get([self._probe.fingerprint.remote(self.settings), self._probe.node.remote()])
        if self.table is not None:
            self.table.check(self.settings, self.budget.latency_size, self.budget.num_classes, found, self.space.source)
        self.info = {"latency_fingerprint": found or (self.table.fingerprint if self.table else None),
                     "latency_node": node, "latency_predicted": self.table is not None}
        return self.info

    def close(self) -> None:
        if self._probe is not None:
            import ray

            ray.kill(self._probe)
            self._probe = None

    def __call__(self, arch: Arch) -> float:
        return self.fields(arch)["latency_ms"]

    def fields(self, arch: Arch) -> dict[str, Any]:
        """`arch`'s latency fields of a record row: `latency_ms` (median), `latency_iqr_ms` (None when
        predicted), `latency_node` (where it was measured; None when predicted)."""
        if arch.hash not in self._known:
            self._known[arch.hash] = self._estimate(arch)
        return self._known[arch.hash]

    def _estimate(self, arch: Arch) -> dict[str, Any]:
        if self.table is not None:
            return _row_fields(self.table.predict(arch))
        size, classes = self.budget.latency_size, self.budget.num_classes
        if self._probe is None:
            from shufflesearch.train._latency import measure

            return _row_fields(measure(arch, self.settings, size, num_classes=classes), "local")
        import ray

        return _row_fields(*ray.get(self._probe.measure.remote(arch, self.settings, size, classes, 3)))

    def sample(self, trial: optuna.Trial) -> Arch | None:
        """`space.sample(trial)` with this gate: a candidate over the latency budget is written to
        `rejected.jsonl` and None returned (the trial's `latency` constraint > 0)."""
        arch = self.space.sample(trial, self)
        over, origin = trial.user_attrs.get("rejected_arch"), trial.user_attrs.get("origin")
        if arch is None and over is not None:  # an evolution's draw (`origin`) is not a trial of the run's study
            self.reject(Arch.from_json(over), None if origin else trial.number, origin)
        elif arch is not None:
            self._in_a_row = 0
        return arch

    def reject(self, arch: Arch, number: int | None, origin: str | None = None) -> None:
        """Write `arch`'s rejection (over `budget.latency_ms`) to `rejected.jsonl`."""
        c = self.space.cost(arch)
        f = self.fields(arch)
        row = {"number": number, "origin": origin, "arch_hash": arch.hash, "summary": arch.summary(),
               "mflops": c.mflops, "params": c.params, **f, "budget_latency_ms": self.budget.latency_ms,
               "reason": f"latency {f['latency_ms']:.3f} ms > budget {self.budget.latency_ms:g} ms on "
                         f"{self.settings.target}{' (predicted)' if self.table is not None else ''}",
               "arch": arch.to_dict()}
        append_rows(self.rejected_path, [row], REJECTED_FIELDS)
        self._in_a_row += 1
        if self._in_a_row >= MAX_LATENCY_REJECTIONS:
            raise ShuffleSearchError(
                f"{self.space.source}: budget.latency_ms = {self.budget.latency_ms:g}: {self._in_a_row} candidates "
                f"in a row were over it on {self.settings.target} (see {self.rejected_path}); raise the latency "
                "budget, lower budget.mflops or narrow the space's choices")


@contextlib.contextmanager
def opened(gate: LatencyGate | None) -> Iterator[None]:
    """`gate` open for the block (in the running Ray session), its actor stopped after; None: nothing."""
    if gate is None:
        yield
        return
    gate.open()
    try:
        yield
    finally:
        gate.close()


def _carried(target: str) -> bool:
    import ray

    return ray.cluster_resources().get(target, 0.0) >= 1
