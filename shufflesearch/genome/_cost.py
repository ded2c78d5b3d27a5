"""Exact analytic cost of an `Arch`: multiply-adds and parameters, from the genome alone.

MACs count what the ShuffleNet papers call FLOPs: the multiply-adds of the conv and fully connected
layers (no BN, pooling, activation or shuffle). They equal `torch.utils.flop_counter.FlopCounterMode`'s
total / 2 on the built model, and `params` equals `sum(p.numel() for p in model.parameters())`;
tests hold both exactly. Written by hand because no library costs a network without building it, and
the search calls this on every sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from shufflesearch.genome._arch import Arch, Unit


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int

    @property
    def mflops(self) -> float:
        """Millions of multiply-adds: the ShuffleNet papers' 'MFLOPs'."""
        return self.macs / 1e6


def budget_cost(arch: Arch, budget: Mapping[str, Any]) -> Cost:
    """The cost basis of a run (its config.json `budget`): what its budget caps and every record states.

    At the budget's `input_size` on 3-channel input, with a `num_classes`-way classifier (1000, the
    papers' convention, for runs that did not record it).
    """
    return cost(arch, budget["input_size"], budget.get("num_classes", 1000))


def _out_size(size: int, kernel: int, stride: int) -> int:
    """Spatial output of a conv or pool with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _conv(size: int, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1):
    """(output size, MACs, weight params) of a bias-free conv."""
    out = _out_size(size, kernel, stride)
    weights = cout * (cin // groups) * kernel * kernel
    return out, weights * out * out, weights


def _unit_convs(u: Unit) -> list[tuple[int, int, int, int, int, bool]]:
    """The convs of a unit as (cin, cout, kernel, stride, groups, runs at the unit's input size)."""
    dw = (u.mid_channels, u.mid_channels, u.kernel_size, u.stride, u.mid_channels, True)
    if u.unit == "v1":
        return [(u.in_channels, u.mid_channels, 1, 1, u.groups1, True), dw,
                (u.mid_channels, u.branch_out, 1, 1, u.groups2, False)]
    b = u.branch_out
    if u.stride == 1:
        return [(b, b, 1, 1, 1, True), dw, (b, b, 1, 1, 1, False)]
    return [(u.in_channels, u.in_channels, u.kernel_size, 2, u.in_channels, True),
            (u.in_channels, b, 1, 1, 1, False),
            (u.in_channels, b, 1, 1, 1, True), dw, (b, b, 1, 1, 1, False)]


@dataclass(frozen=True)
class Block:
    """One part of a network in forward order, costed at its input: the stem (conv and max-pool), a unit,
    or the head (conv head, global pool, classifier). What a latency table keys its measurements on."""
    kind: str  # 'stem', 'unit' or 'head'
    size: int  # spatial side of its input
    macs: int
    params: int
    unit: Unit | None = None  # the resolved unit of a 'unit' block


def blocks(arch: Arch, input_size: int = 224, num_classes: int = 1000, in_chans: int = 3) -> list[Block]:
    """The stem, every unit and the head of `arch` with their MACs and parameters (they sum to `cost`)."""
    size, macs, params = _conv(input_size, in_chans, arch.stem.channels, 3, arch.stem.stride)
    parts = [Block("stem", input_size, macs, params + 2 * arch.stem.channels)]  # + BN affine
    if arch.stem.max_pool:
        size = _out_size(size, 3, 2)
    for stage in arch.units():
        for u in stage:
            out_size = _out_size(size, u.kernel_size, u.stride)
            macs = params = 0
            for cin, cout, k, s, g, at_input in _unit_convs(u):
                _, m, p = _conv(size if at_input else out_size, cin, cout, k, s, g)
                macs += m
                params += p + 2 * cout  # every conv is followed by a BN
            parts.append(Block("unit", size, macs, params, u))
            size = out_size
    feats = arch.stages[-1].out_channels
    macs = params = 0
    if arch.head.conv_channels:
        _, macs, params = _conv(size, feats, arch.head.conv_channels)
        params += 2 * arch.head.conv_channels
        feats = arch.head.conv_channels
    parts.append(Block("head", size, macs + feats * num_classes, params + feats * num_classes + num_classes))
    return parts


def cost(arch: Arch, input_size: int = 224, num_classes: int = 1000, in_chans: int = 3) -> Cost:
    """MACs and parameters of `arch` at a square `input_size` with `num_classes` outputs."""
    parts = blocks(arch, input_size, num_classes, in_chans)
    return Cost(sum(b.macs for b in parts), sum(b.params for b in parts))
