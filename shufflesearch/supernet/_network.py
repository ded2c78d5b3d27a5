"""`Supernet`: one weight-sharing network holding every architecture a search space can sample.

Single Path One-Shot (Guo et al., arXiv 1904.00420): per unit position, one *choice block* for each
combination of the settings that change a unit's weights or wiring (v1/v2 unit, groups, bottleneck
ratio, kernel, shuffle placement, and for a stage's first unit whether its first 1x1 conv is
grouped). A path (an `Arch` of the space) uses, at each of its positions, the block of its choice;
positions past a stage's chosen `repeats` are skipped. Widths are searched by channel slicing
(SPOS's channel search): each block is a `layers` unit built at the widest channel counts the
space's sampler can produce within the budget, and a path uses the leading corner of every weight
and BatchNorm tensor, i.e. ``tensor[:out, :in, ...]``. The stem, the head conv and the classifier
are shared the same way.

Every tensor of the stand-alone `build(arch)` model is exactly one such slice, so the path forward
is the stand-alone network's own forward (`torch.func.functional_call` on a parameter-free
``meta``-device copy of `build(arch)`) on views of the supernet's tensors: gradients flow into the
shared tensors, and `Supernet.extract(arch)` copies the same views into a real `build(arch)` model,
whose outputs equal the path's in train and eval mode. BatchNorm statistics are per choice block
and sliced like the weights; they mean little for any one path after weight-sharing training, so
scoring re-estimates them on the extracted model (`supernet_score.score_path`).

Written by hand: no maintained library offers a supernet over ShuffleNet v1/v2 choice blocks with
channel slicing (NNI's is archived and builds its own blocks, not timm-contract models).

The widest widths are bounds, not samples: the widest multiplier any structure can take within the
budget (the multiplier at which the space's cheapest structure reaches it), and from it each stage's
widest output after the genome's rounding (`arch.round_channels` moves a width by less than one
divisor, plus one divisor when a stride-2 v1 stage must grow past its input). Channel counts are
rounded up to the lcm of every divisor the space uses, so each grouped conv can be built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from timm.layers import ClassifierHead
from torch import nn

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import DEFAULT_SHUFFLE, STAGE_DEFAULTS, Arch, Unit, round_to_multiple
from shufflesearch.models._layers import ShuffleV1Unit, conv_bn, make_unit
from shufflesearch.models._network import ShuffleNet, build
from shufflesearch.space import _sampling as sampling

if TYPE_CHECKING:
    from shufflesearch.space._space import SearchSpace

__all__ = ["Supernet", "SupernetBounds", "supernet_bounds"]


@dataclass(frozen=True)
class SupernetBounds:
    """The widest channel counts of a space's paths: `stem`, each stage's output, the head conv (0: none).

    `multiplier` is the widest width multiplier any structure takes within the budget; `divisor` the
    lcm of every divisor the space uses, which every bound is a multiple of.
    """
    multiplier: float
    divisor: int
    stem: int
    stages: tuple[int, ...]
    head: int


def _ceil_to(value: float, divisor: int) -> int:
    return max(divisor, math.ceil(value / divisor) * divisor)


def supernet_bounds(space: SearchSpace) -> SupernetBounds:
    """Upper bounds on the channel counts of every architecture `space.sample` can return."""
    lo, hi = space.width_multiplier
    budget = space.budget.macs

    def fits(mult: float) -> bool:
        return sampling.extreme(space, mult, min).macs <= budget

    if fits(hi):
        mult = hi
    else:  # the cheapest structure's widest fitting multiplier bounds every structure's
        low, high = lo, hi
        for _ in range(sampling.BISECTION_STEPS):
            mid = (low + high) / 2
            low, high = (mid, high) if fits(mid) else (low, mid)
        mult = high
    groups = {g for st in space.stages for g in st.choices["groups"].values}
    divisor = math.lcm(2, *groups)
    stem = _ceil_to(max(space.stem_channels.values), divisor)
    outs, in_max = [], stem
    for st in space.stages:
        if st.choices["stride"].values[0] == 1:
            out = in_max
        else:
            width = max(st.choices["base_channels"].values) * mult
            out = _ceil_to(max(width + divisor / 2, in_max + divisor), divisor)
        outs.append(out)
        in_max = out
    head = max((c for c in space.head_conv.values if c), default=0)
    return SupernetBounds(mult, divisor, stem, tuple(outs), head)


def block_key(stage_unit: Unit, bottleneck_ratio: float) -> str:
    """The name of the choice block a resolved unit runs in (its type, groups, ratio, kernel, shuffle)."""
    u = stage_unit
    v1 = f"_g{u.groups1}x{u.groups2}_r{bottleneck_ratio:g}".replace(".", "p") if u.unit == "v1" else ""
    return f"{u.unit}{v1}_k{u.kernel_size}_{u.shuffle}"


def _blocks(space: SearchSpace, index: int, first: bool, in_max: int, out_max: int) -> dict[str, nn.Module]:
    """Every choice block of one unit position of stage `index`, at the widest channels."""
    st = space.stages[index]
    values = {k: c.values for k, c in st.choices.items()}
    stride = values["stride"][0] if first else 1
    blocks: dict[str, nn.Module] = {}
    for unit in values["unit"]:
        v1 = unit == "v1"
        v1_values = [(g, r, gfc) for g in values["groups"] for r in values["bottleneck_ratio"]
                     for gfc in values["grouped_first_conv"]] if v1 else \
            [(STAGE_DEFAULTS["groups"], STAGE_DEFAULTS["bottleneck_ratio"], STAGE_DEFAULTS["grouped_first_conv"])]
        for k in values["kernel_size"]:
            for shuffle in values["shuffle"]:
                shuffle = shuffle or DEFAULT_SHUFFLE[unit]
                for g, ratio, gfc in v1_values:
                    groups1 = g if (gfc or not first) else 1
                    shuffle_groups = (g if v1 else 2) if shuffle != "none" else 1
                    if v1:  # the main branch may carry up to out_max channels whatever the input's width
                        cin = in_max if stride == 2 else out_max
                        out = cin + out_max if stride == 2 else out_max
                        mid = round_to_multiple(out_max * ratio, g)
                    else:
                        cin, out, mid = (in_max if stride == 2 else out_max), out_max, out_max // 2
                    u = Unit(unit, cin, out, mid, stride, groups1, g, k, shuffle, shuffle_groups)
                    blocks.setdefault(block_key(u, ratio), make_unit(u))
    return blocks


class Supernet(nn.Module):
    """A weight-sharing supernet over every path of a `SearchSpace`; `forward(x, arch)` runs one path."""

    def __init__(self, space: SearchSpace, num_classes: int = 1000, in_chans: int = 3):
        """
        Args:
            space: The search space whose every sampled `Arch` is a path.
            num_classes: Classifier outputs.
            in_chans: Input image channels.
        """
        super().__init__()
        self.space = space
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.bounds = b = supernet_bounds(space)
        self.stem = conv_bn(in_chans, b.stem, 3, space.stem.stride)
        stages, in_max = [], b.stem
        for i, st in enumerate(space.stages):
            repeats = max(st.choices["repeats"].values)
            stages.append(nn.ModuleList(
                [nn.ModuleDict(_blocks(space, i, j == 0, in_max if j == 0 else b.stages[i], b.stages[i]))
                 for j in range(repeats)]))
            in_max = b.stages[i]
        self.stages = nn.ModuleList(stages)
        self.conv_head = conv_bn(b.stages[-1], b.head) if b.head else nn.Identity()
        self.num_features = max(b.head, b.stages[-1])
        self.head = ClassifierHead(self.num_features, num_classes)
        ShuffleNet._init_weights(self)
        _zero_residual_branches(self)
        self._last: tuple[Arch, ShuffleNet, dict[str, tuple[str, torch.Size]]] | None = None  # see _layout
        self._owners: dict[str, tuple[nn.Module, str]] | None = None  # tensor name -> (module, attribute)

    def _layout(self, arch: Arch) -> tuple[ShuffleNet, dict[str, tuple[str, torch.Size]]]:
        """A parameter-free (meta) `build(arch)`, and for each of its tensors the supernet tensor it is
        a slice of and its shape.

        Only the last path's is kept (a training step reads its path twice): a kept model outlives
        Python's young GC generations, dies in the old one and so brings on full collections, each a
        walk of the whole heap (keeping 256 cost a tenth of a training step; 4, 8%).
        """
        if self._last is None or self._last[0] != arch:
            skeleton = build(arch, num_classes=self.num_classes, in_chans=self.in_chans, device="meta")
            for m in skeleton.modules():
                if _PointwiseMatmul.runs(m):
                    m.__class__ = _PointwiseMatmul  # the same module, its forward another
            self._last = arch, skeleton, _sources(arch, skeleton)
        return self._last[1:]

    def path_tensors(self, arch: Arch, model: ShuffleNet | None = None) -> dict[str, torch.Tensor]:
        """Views of this supernet's tensors named and shaped as `build(arch)`'s state_dict (`model`: such
        a model, meta or not, to read the names and shapes from instead of a kept skeleton).

        Raises `ShuffleSearchError` if `arch` is not a path of this supernet.
        """
        tensors = {}
        layout = self._layout(arch)[1] if model is None else _sources(arch, model)
        for name, (source_name, shape) in layout.items():
            source = self._tensor(source_name)
            if source is None or source.dim() != len(shape) or any(s > m for s, m in zip(shape, source.shape)):
                raise ShuffleSearchError(f"arch {arch.summary()}: not a path of the supernet over space "
                                         f"{self.space.name!r} ({name} {tuple(shape)})")
            tensors[name] = source[tuple(slice(0, s) for s in shape)] if shape else source
        return tensors

    def _tensor(self, name: str) -> torch.Tensor | None:
        """This supernet's parameter or buffer `name`, None if it has none (read from its module each
        time: `.to()` replaces buffers; the modules, kept by name, stay)."""
        if self._owners is None:
            self._owners = {f"{prefix}.{attr}".lstrip("."): (module, attr) for prefix, module in self.named_modules()
                            for attr in (*module._parameters, *module._buffers)}
        owner = self._owners.get(name)
        return getattr(*owner) if owner else None

    def path_blocks(self, arch: Arch) -> set[str]:
        """The names of the supernet tensors `arch`'s path reads."""
        return {source for source, _ in self._layout(arch)[1].values()}

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """Logits of path `arch` on `x` (train mode: BatchNorm uses and updates its block's sliced stats)."""
        skeleton = self._layout(arch)[0].train(self.training)
        return torch.func.functional_call(skeleton, self.path_tensors(arch), (x,), strict=True)

    def extract(self, arch: Arch, **kwargs: Any) -> ShuffleNet:
        """The stand-alone `build(arch)` model with the path's weights and BatchNorm statistics copied in.

        Its outputs equal `self(x, arch)`. `kwargs` go to `build` (e.g. `drop_rate`).
        """
        model = build(arch, num_classes=self.num_classes, in_chans=self.in_chans, device="meta", **kwargs)
        model.load_state_dict({k: v.detach().clone() for k, v in self.path_tensors(arch, model).items()}, assign=True)
        return model


def _zero_residual_branches(net: Supernet) -> None:
    """Zero the last BatchNorm's scale of every stride-1 v1 block's branch (Goyal et al., arXiv 1706.02677),
    so each starts as the identity, x + 0.

    With the papers' initialisation each residual unit adds a branch of unit variance to its input, so the
    features' scale grows with the depth a path takes, which changes from step to step: on the mixed
    space the supernet's training loss was 7.1 in its first epoch and 3.3 after 10 (chance 2.3,
    `benchmarks/supernet_learning.py`). Stand-alone models (`build`) keep the papers' initialisation.
    """
    for stage in net.stages:
        for position in stage:
            for block in position.values():
                if isinstance(block, ShuffleV1Unit) and not block.downsample:
                    nn.init.zeros_(block.branch.gconv2.bn.weight)


class _PointwiseMatmul(nn.Conv2d):
    """A path skeleton's bias-free 1x1 stride-1 conv, which on a channels_last CPU input runs as the
    matrix product of the input's NHWC rows with its weight (one product per group), as MKL's sgemm.

    oneDNN, PyTorch's CPU conv, builds and JIT-compiles kernels for every new shape (forward, and both
    backward passes), and a supernet training step is on a new path, of new widths, almost every step:
    that building took ~10 ms of a 26 ms step (demo space, 64 images at 32 px), more than the convs
    themselves. A matrix product has no per-shape cost: a step went from 25.3 to 19.3 ms. The depthwise
    convs stay oneDNN's. Equal to the conv up to float rounding (tested, with the gradients).
    """

    @staticmethod
    def runs(m: nn.Module) -> bool:
        """Whether `m` is a conv this class computes."""
        return (type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.stride == (1, 1) and m.padding == (0, 0)
                and m.dilation == (1, 1) and m.bias is None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        n, c, h, w = x.shape
        g, out = self.groups, self.out_channels
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # NHWC: a view
        weight = self.weight.view(out, c // g)
        if g == 1:
            y = rows @ weight.t()
        else:  # group j: input channels j*c/g.., output channels j*out/g..
            y = torch.bmm(rows.view(-1, g, c // g).transpose(0, 1), weight.view(g, out // g, c // g).transpose(1, 2))
            y = y.transpose(0, 1).reshape(-1, out)
        return y.view(n, h, w, out).permute(0, 3, 1, 2)


def _sources(arch: Arch, model: ShuffleNet) -> dict[str, tuple[str, torch.Size]]:
    """For each tensor of `model` (a `build(arch)`), the name of the supernet tensor it is a slice of and
    its shape."""
    units = arch.units()
    sources = {}
    for name, tensor in model.state_dict().items():
        source = name
        if name.startswith("stages."):
            _, i, j, rest = name.split(".", 3)
            i, j = int(i), int(j)
            source = f"stages.{i}.{j}.{block_key(units[i][j], arch.stages[i].bottleneck_ratio)}.{rest}"
        sources[name] = (source, tensor.shape)
    return sources
