"""Channel shuffle and the ShuffleNet v1 / V2 units, each built from a resolved `arch.Unit`.

Every unit builds exactly the convs `cost._unit_convs` lists (bias-free, each followed by a BatchNorm,
padding k // 2), so the analytic cost equals what FlopCounterMode counts on the built model.

* v1 (Zhang et al., arXiv 1707.01083, Fig. 2): 1x1 GConv -> BN -> ReLU -> kxk DWConv (stride) -> BN
  (no ReLU) -> 1x1 GConv -> BN; added to the input (stride 1) or concatenated with a 3x3 stride-2
  avg-pool of it (stride 2); then ReLU. The shuffle sits where `Unit.shuffle` says.
* V2 (Ma et al., arXiv 1807.11164) layer for layer as torchvision's `InvertedResidual`: `branch1` /
  `branch2` are flat `nn.Sequential`s with torchvision's indices, so torchvision's state_dict keys
  carry over unchanged inside a unit (see `registry.convert_torchvision_shufflenet_v2`).

Every module takes timm's `device` / `dtype` factory kwargs and creates its tensors there. No
`from __future__ import annotations` (see `model.py`): a unit may be the root of an fx trace too.
"""

from collections import OrderedDict

import torch
from timm.layers import ConvNormAct
from torch import nn

from shufflesearch.genome._arch import Unit


@torch.fx.wrap  # a leaf for torch.fx: the layout test below is data-dependent control flow
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """The paper's shuffle: channels (g * n) viewed as (g, n), transposed to (n, g), flattened.

    Output channel ``i * g + j`` is input channel ``j * n + i``. A channels_last input is permuted
    on its NHWC view, so the result stays channels_last in one copy.
    """
    if x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).unflatten(3, (groups, -1)).transpose(3, 4).flatten(3).permute(0, 3, 1, 2)
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


@torch.fx.wrap
def concat_shuffle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`channel_shuffle(torch.cat((a, b), 1), 2)` in one copy instead of two: interleave a and b.

    The layout follows `b` (a conv output; `a` may be a channel slice of the unit's input).
    """
    if b.is_contiguous(memory_format=torch.channels_last):
        return torch.stack((a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)), 4).flatten(3).permute(0, 3, 1, 2)
    return torch.stack((a, b), 2).flatten(1, 2)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: bool = True, device=None, dtype=None) -> ConvNormAct:
    return ConvNormAct(cin, cout, kernel, stride=stride, groups=groups, apply_act=act,
                       act_kwargs=dict(inplace=True), device=device, dtype=dtype)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1 unit; `branch` is gconv1 -> dwconv -> gconv2 with `shuffle` at its placement."""

    def __init__(self, u: Unit, device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        layers: list[tuple[str, nn.Module]] = [
            ("gconv1", conv_bn(u.in_channels, u.mid_channels, groups=u.groups1, **dd)),
            ("dwconv", conv_bn(u.mid_channels, u.mid_channels, u.kernel_size, u.stride,
                                groups=u.mid_channels, act=False, **dd)),
            ("gconv2", conv_bn(u.mid_channels, u.branch_out, groups=u.groups2, act=False, **dd)),
        ]
        position = {"before_gconv1": 0, "after_gconv1": 1, "after_dwconv": 2}.get(u.shuffle)
        if position is not None and u.shuffle_groups > 1:
            layers.insert(position, ("shuffle", ChannelShuffle(u.shuffle_groups)))
        self.branch = nn.Sequential(OrderedDict(layers))
        self.downsample = u.stride == 2
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if self.downsample else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            return self.act(torch.cat((self.shortcut(x), self.branch(x)), 1))
        return self.act(x + self.branch(x))


class ShuffleV2Unit(nn.Module):
    """ShuffleNet V2 unit, torchvision's `InvertedResidual` with a kxk depthwise conv.

    Stride 1: split the input in halves, transform the second (`branch2`), concat. Stride 2: both
    branches see the whole input. Then the 2-group shuffle, fused with the concat (`concat_shuffle`).
    """

    def __init__(self, u: Unit, device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        b, k, s = u.branch_out, u.kernel_size, u.stride
        self.stride = s
        self.shuffle = u.shuffle_groups > 1
        if s == 2:
            cin = u.in_channels
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, k, s, k // 2, groups=cin, bias=False, **dd), nn.BatchNorm2d(cin, **dd),
                nn.Conv2d(cin, b, 1, bias=False, **dd), nn.BatchNorm2d(b, **dd), nn.ReLU(inplace=True),
            )
        else:
            cin = b
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin, b, 1, bias=False, **dd), nn.BatchNorm2d(b, **dd), nn.ReLU(inplace=True),
            nn.Conv2d(b, b, k, s, k // 2, groups=b, bias=False, **dd), nn.BatchNorm2d(b, **dd),
            nn.Conv2d(b, b, 1, bias=False, **dd), nn.BatchNorm2d(b, **dd), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            a, b = x1, self.branch2(x2)
        else:
            a, b = self.branch1(x), self.branch2(x)
        if self.shuffle:
            return concat_shuffle(a, b)
        return torch.cat((a, b), 1)


def make_unit(u: Unit, device=None, dtype=None) -> nn.Module:
    return (ShuffleV1Unit if u.unit == "v1" else ShuffleV2Unit)(u, device=device, dtype=dtype)
