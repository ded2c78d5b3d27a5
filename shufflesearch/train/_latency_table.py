"""A latency table: a network's latency on a target predicted from its parts, measured once there.

`LatencyTable.build` measures, on the target (this process, `measure`'s settings and timing loop), the
parts of networks the space produces: the stem (conv and max-pool), every unit, the head (conv head,
pool, classifier at the space's classes), each at its input size in the network at the budget's
`latency_size`. `predict` sums the parts of an `Arch` from `genome.blocks` (no module built, tens of
microseconds) plus a per-network overhead, in each memory format the backend has (torch: contiguous
and channels_last, of which `measure` keeps the faster, so `predict` keeps the smaller sum too).

Why this design. Channel counts are continuous in a space (the width is solved per sample), so a table
cannot hold every channel count. A part's *kind* is discrete: block type, unit type, stride, kernel,
groups, shuffle placement, input size (`block_key`); for each kind the space can produce, the build
takes the kind's parts from `samples` random in-budget architectures (`SearchSpace.random_sample`: the
configurations a search meets, with the in/out channel ratios the space's rounding gives) and measures
`points` of them spread evenly over their multiply-adds, from the cheapest to the dearest. A part's
latency is then interpolated linearly in MACs between the two nearest measured parts of its kind
(beyond them, the least-squares line through all of them, `_Curve`): for a fixed kind and input size,
run time grows smoothly with the channels, and MACs order the channel counts of a kind as the sampler
produces them. Measuring
every distinct configuration instead is thousands of parts per space (1,000-3,000 in 500 samples of
the shipped spaces), ten times the time for what interpolation between 6 points gets within the
noise. A kind no sample produced (a space of millions of structures) is predicted from all measured
parts of its family (block, unit type, stride, input size) by MACs: approximate, never a failure.

On a shared machine the load of others' processes comes in bursts: every part is timed in `rounds`
shuffled passes of `runs / rounds` runs, pooled, so that a burst slows a few runs of many parts rather
than all runs of one kind, an error every prediction with that kind would share.

Parts timed alone are not the network: the framework's per-call work, the memory-format changes
between units and the caches differ. `networks` whole networks are measured at build and the median
of (measured - sum of parts) per format is the overhead added to every prediction.
"""

from __future__ import annotations

import bisect
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from shufflesearch._io import read_json, write_json_atomic
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._cost import Block, blocks
from shufflesearch.space._configs import LatencySettings
from shufflesearch.train._latency import FINGERPRINT_KEYS, Timer, check_backend, clock_for, fingerprint, timer

if TYPE_CHECKING:
    import torch.nn as nn

    from shufflesearch.space._space import SearchSpace

FORMAT = "shufflesearch latency table"
VERSION = 1
CHECKED = ("backend", "batch", "threads", "input_size", "num_classes")  # settings a table must share with its use
PROGRESS_SECONDS = 5.0


def block_key(arch: Arch, block: Block) -> str:
    """A part's kind: `family | details`, everything but its channels. Parts of one kind are interpolated
    by MACs; an unmeasured kind falls back to its family."""
    if block.kind == "stem":
        return f"stem s{arch.stem.stride} pool{int(arch.stem.max_pool)} @{block.size} |"
    if block.kind == "head":
        return f"head @{block.size} | conv{arch.head.conv_channels or 0}"
    u = block.unit
    return f"{u.unit} s{u.stride} @{block.size} | k{u.kernel_size} g{u.groups1}/{u.groups2} {u.shuffle}"


def _parts(net: nn.Module) -> list[nn.Module]:
    """A built `ShuffleNet`'s modules in `blocks` order: stem with its pool, each unit, the head."""
    import torch.nn as nn

    return [nn.Sequential(net.stem, net.stem_pool), *(u for stage in net.stages for u in stage),
            nn.Sequential(net.conv_head, net.head)]


def _in_channels(arch: Arch, block: Block, in_chans: int) -> int:
    if block.kind == "stem":
        return in_chans
    return block.unit.in_channels if block.kind == "unit" else arch.stages[-1].out_channels


class _Curve:
    """The measured parts of one kind: ms per format against MACs (distinct). Inside the measured range,
    linear between the two neighbours; outside it, the least-squares line through all of them (slope >= 0;
    one point: proportional to MACs), never below 0, since the end two of a noisy curve can point anywhere."""

    def __init__(self, points: list[list[float]]) -> None:
        points = sorted(points)
        self.xs = [p[0] for p in points]
        self.ys = [[p[f] for p in points] for f in range(1, len(points[0]))]
        self.lines = [self._line(ys) for ys in self.ys]

    def _line(self, ys: list[float]) -> tuple[float, float]:
        if len(self.xs) == 1:
            return ys[0] / self.xs[0], 0.0
        slope, intercept = np.polyfit(self.xs, ys, 1)
        return (float(slope), float(intercept)) if slope > 0 else (0.0, float(np.mean(ys)))

    def at(self, x: float) -> list[float]:
        """Milliseconds per format of a part of `x` MACs."""
        xs = self.xs
        if len(xs) > 1 and xs[0] <= x <= xs[-1]:
            i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            return [ys[i - 1] + (ys[i] - ys[i - 1]) * w for ys in self.ys]
        return [max(0.0, slope * x + intercept) for slope, intercept in self.lines]


@dataclass
class LatencyTable:
    """Measured part latencies of a space on one target; `predict` sums them for any `Arch`.

    `settings`: the `LatencySettings` it was built with (without `table`), plus `input_size` and
    `num_classes`. `formats`: the memory formats timed (torch: contiguous, channels_last; ONNX Runtime:
    one). `points`: per part kind (`block_key`), `[macs, ms per format...]` sorted by MACs.
    `overhead_ms`: per format, added to each network's sum. `info`: how it was built.
    """
    settings: dict[str, Any]
    fingerprint: dict[str, Any]
    formats: list[str]
    points: dict[str, list[list[float]]]
    overhead_ms: list[float]
    info: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the file it was loaded from or saved to

    def __post_init__(self) -> None:
        self._curves = {key: _Curve(pts) for key, pts in self.points.items()}

    # --- building -------------------------------------------------------------------------------
    @classmethod
    def build(cls, space: SearchSpace, settings: LatencySettings, progress: Callable[[str], None] | None = print,
              samples: int = 1000, points: int = 6, networks: int = 12, rounds: int = 3, seed: int = 0,
              in_chans: int = 3) -> LatencyTable:
        """Measure the parts of the space's networks on this process's target (see the module docstring).

        Args:
            space: The search space; its budget's `latency_size` and `num_classes` are used.
            settings: Where and how to measure (`budget.latency`): backend, batch, threads, warmup, runs.
            progress: Called with a line every few seconds; None: silent.
            samples: Random in-budget architectures whose parts define the kinds and their MAC ranges.
            points: Parts measured per kind, spread evenly over its MACs.
            networks: Whole networks measured to fit the per-network overhead.
            rounds: Passes over all parts, each timing `settings.runs / rounds` runs of every part.
            seed: Seed of the samples.
            in_chans: Input image channels.
        """
        from shufflesearch.models._network import build as build_net

        say = progress or (lambda line: None)
        start = monotonic()
        device = check_backend(settings)
        size, classes = space.budget.latency_size, space.budget.num_classes
        say(f"latency table: drawing {samples} architectures of {space.name} ...")
        archs = space.random_sample(samples, seed)
        found: dict[str, dict[int, tuple[Arch, int]]] = {}
        for arch in archs:
            for i, b in enumerate(blocks(arch, size, classes, in_chans)):
                found.setdefault(block_key(arch, b), {}).setdefault(b.macs, (arch, i))
        todo: dict[Arch, list[tuple[int, str, int]]] = {}  # arch -> its parts to measure: (index, kind, macs)
        for key, by_macs in found.items():
            macs = sorted(by_macs)
            for m in sorted({min(macs, key=lambda v: abs(v - t)) for t in np.linspace(macs[0], macs[-1], points)}):
                arch, i = by_macs[m]
                todo.setdefault(arch, []).append((i, key, m))
        timers: list[tuple[str, int, Timer]] = []  # (kind, macs, its part ready to time)
        for arch, wanted in todo.items():
            parts = _parts(build_net(arch, num_classes=classes, in_chans=in_chans))
            bs = blocks(arch, size, classes, in_chans)
            for i, key, m in wanted:
                shape = (_in_channels(arch, bs[i], in_chans), bs[i].size, bs[i].size)
                timers.append((key, m, timer(parts[i], settings, shape, device)))
        checks = archs[:: max(1, len(archs) // networks)][:networks]  # whole networks, for the overhead
        wholes = [timer(build_net(a, num_classes=classes, in_chans=in_chans), settings, (in_chans, size, size),
                        device) for a in checks]
        formats = list(wholes[0].calls)
        say(f"latency table: measuring {len(timers)} parts of {len(found)} kinds and {len(wholes)} networks on "
            f"{device} ({settings.backend}, batch {settings.batch}, {settings.threads} thread(s), {size}px) in "
            f"{rounds} rounds")
        # every part timed in `rounds` passes, shuffled, pooled: a burst of others' load then hits a few runs
        # of many parts, not all runs of one kind (whose error every prediction with that kind would share)
        runs = [{f: [] for f in formats} for _ in range(len(timers) + len(wholes))]
        every = [t for _, _, t in timers] + wholes
        order, last = list(range(len(every))), monotonic()
        for r in range(rounds):
            random.Random(seed + r).shuffle(order)
            for done, j in enumerate(order, 1):
                for f, times in every[j].times(settings.warmup, math.ceil(settings.runs / rounds)).items():
                    runs[j][f] += times
                if monotonic() - last > PROGRESS_SECONDS:
                    say(f"latency table: round {r + 1}/{rounds}, {done}/{len(order)} ({monotonic() - start:.0f} s)")
                    last = monotonic()
        medians = [[float(np.median(t[f])) for f in formats] for t in runs]
        measured: dict[str, list[list[float]]] = {}
        for (key, m, _), ms in zip(timers, medians):
            measured.setdefault(key, []).append([m, *ms])
        table = cls(settings={**{k: v for k, v in settings.to_dict().items() if k != "table"},
                              "input_size": size, "num_classes": classes},
                    fingerprint=fingerprint(settings), formats=formats,
                    points={k: sorted(v) for k, v in sorted(measured.items())}, overhead_ms=[0.0] * len(formats))
        residuals = [[w - s for w, s in zip(whole, table._sums(a, in_chans))]
                     for a, whole in zip(checks, medians[len(timers):])]
        table.overhead_ms = [float(v) for v in np.median(residuals, axis=0)]
        table.info = {"space": space.name, "clock": clock_for(device, settings.threads), "samples": samples,
                      "seed": seed, "points_per_kind": points, "rounds": rounds, "parts_measured": len(timers),
                      "kinds": len(found), "networks": len(residuals),
                      "overhead_residuals_ms": residuals, "seconds": round(monotonic() - start, 1),
                      "loadavg": list(os.getloadavg())}
        say(f"latency table: {len(timers)} parts and {len(residuals)} networks measured in "
            f"{monotonic() - start:.0f} s; "
            f"overhead per network {', '.join(f'{f} {o:+.3f} ms' for f, o in zip(formats, table.overhead_ms))}")
        return table

    # --- predicting -----------------------------------------------------------------------------
    def _curve(self, key: str) -> _Curve:
        """A kind's measured parts; for a kind never measured, all parts of its family (kept once made)."""
        if key not in self._curves:
            family = key.partition("|")[0]
            pooled = {p[0]: p for k, pts in self.points.items() if k.partition("|")[0] == family for p in pts}
            if not pooled:
                raise ShuffleSearchError(f"latency table {self.path or '(not saved)'}: no measured part like "
                                         f"{key!r}; it was built for another space ({self.info.get('space')})")
            self._curves[key] = _Curve(list(pooled.values()))
        return self._curves[key]

    def _sums(self, arch: Arch, in_chans: int = 3) -> list[float]:
        """Per format, the sum of `arch`'s parts."""
        sums = [0.0] * len(self.formats)
        for b in blocks(arch, self.settings["input_size"], self.settings["num_classes"], in_chans):
            for f, ms in enumerate(self._curve(block_key(arch, b)).at(b.macs)):
                sums[f] += ms
        return sums

    def predict(self, arch: Arch) -> float:
        """Predicted latency of `arch` in milliseconds (median of a batch, as `measure` reports), computed
        from the table alone: the faster format's sum of parts plus its per-network overhead."""
        return min(s + o for s, o in zip(self._sums(arch), self.overhead_ms))

    # --- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "settings": self.settings, "fingerprint": self.fingerprint,
                "formats": self.formats, "overhead_ms": self.overhead_ms, "info": self.info, "points": self.points}

    def save(self, path: str | Path) -> None:
        """Write the table as JSON, atomically."""
        write_json_atomic(path, self.to_dict())
        self.path = str(path)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table `save` wrote; an unreadable or malformed file is one line naming it."""
        data = read_json(Path(path), "latency table")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ShuffleSearchError(f"{path}: not a shufflesearch latency table (no 'format: {FORMAT}')")
        if data.get("version") != VERSION:
            raise ShuffleSearchError(f"{path}: latency table version {data.get('version')!r}, this shufflesearch "
                                     f"reads version {VERSION}; rebuild it (shufflesearch latency-table)")
        try:
            formats = list(data["formats"])
            table = cls(settings=dict(data["settings"]), fingerprint=dict(data["fingerprint"]), formats=formats,
                        points={str(k): [[float(v) for v in p] for p in pts] for k, pts in data["points"].items()},
                        overhead_ms=[float(v) for v in data["overhead_ms"]], info=dict(data.get("info", {})),
                        path=str(path))
            if any(len(p) != len(formats) + 1 for pts in table.points.values() for p in pts) \
                    or len(table.overhead_ms) != len(formats) or not table.points:
                raise ValueError("points or overhead_ms do not match formats")
            missing = [name for name in CHECKED if name not in table.settings]
            if missing:
                raise ValueError(f"settings lack {', '.join(missing)}")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ShuffleSearchError(f"{path}: malformed latency table ({type(e).__name__}: {e})") from None
        return table

    def check(self, settings: LatencySettings, input_size: int, num_classes: int, fingerprint: dict | None,
              source: str) -> None:
        """Refuse (one line naming `source`, the table, the field and both values) a table built with other
        settings, or, given the `fingerprint` of the target, on another target.

        Args:
            settings: The budget's latency settings the table is to stand in for.
            input_size: The latency input size (`Budget.latency_size`).
            num_classes: The space's classes.
            fingerprint: The target's fingerprint (`fingerprint(settings)` measured there); None: not checked.
            source: Where the table is named (the space file and field, or a flag).
        """
        wanted = {**settings.to_dict(), "input_size": input_size, "num_classes": num_classes}
        where = f"{source}: latency table {self.path or '(not saved)'}"
        for name in CHECKED:
            if self.settings.get(name) != wanted[name]:
                raise ShuffleSearchError(f"{where} was built with {name} = {self.settings.get(name)!r}, not "
                                         f"{wanted[name]!r}; build one with these settings "
                                         "(shufflesearch latency-table)")
        for name in FINGERPRINT_KEYS if fingerprint is not None else ():
            if self.fingerprint.get(name) != fingerprint.get(name):
                raise ShuffleSearchError(f"{where} was built on another target: {name} = "
                                         f"{self.fingerprint.get(name)!r} there, {fingerprint.get(name)!r} here; "
                                         "build it on this target (shufflesearch latency-table)")
