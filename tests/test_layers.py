"""Channel shuffle permutation and the v1 / V2 units' structure."""

import pytest
import torch
from torch import nn

from shufflesearch.genome._arch import Arch, Stage, Stem
from shufflesearch.models._layers import ChannelShuffle, ShuffleV1Unit, ShuffleV2Unit, channel_shuffle, concat_shuffle

pytestmark = pytest.mark.usefixtures("one_thread")

CHANNELS_LAST = [False, True]


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("channels_last", CHANNELS_LAST)
def test_channel_shuffle_is_the_papers_g_n_to_n_g_permutation(channels_last):
    # 12 channels, g = 3 groups of n = 4: (g, n) -> (n, g) takes one channel from each group in turn
    x = torch.arange(12.0).view(1, 12, 1, 1).expand(2, 12, 3, 3)
    out = channel_shuffle(_layout(x.contiguous(), channels_last), 3)
    assert out[0, :, 0, 0].tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert torch.equal(out[1, :, 2, 1], out[0, :, 0, 0])
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("channels_last", CHANNELS_LAST)
def test_channel_shuffle_general_rule_and_inverse(channels_last):
    g, n = 4, 6
    x = _layout(torch.randn(2, g * n, 5, 7), channels_last)
    out = channel_shuffle(x, g)
    for i in range(n):
        for j in range(g):
            assert torch.equal(out[:, i * g + j], x[:, j * n + i])
    assert torch.equal(channel_shuffle(out, n), x)  # shuffling by n undoes shuffling by g
    assert torch.equal(ChannelShuffle(g)(x), out)


@pytest.mark.parametrize("channels_last", CHANNELS_LAST)
def test_concat_shuffle_equals_concat_then_shuffle(channels_last):
    a, b = (_layout(torch.randn(2, 10, 4, 3), channels_last) for _ in range(2))
    assert torch.equal(concat_shuffle(a, b), channel_shuffle(torch.cat((a, b), 1), 2))
    assert torch.equal(concat_shuffle(a[:, :5], b[:, 5:]), channel_shuffle(torch.cat((a[:, :5], b[:, 5:]), 1), 2))


def _v1_units(shuffle: str, stride: int = 2, groups: int = 3):
    arch = Arch(stages=(Stage("v1", 48, 2, stride=stride, groups=groups, shuffle=shuffle),),
                stem=Stem(channels=24 if stride == 2 else 48))
    return arch.units()[0]


@pytest.mark.parametrize("shuffle, order", [
    ("after_gconv1", ["gconv1", "shuffle", "dwconv", "gconv2"]),
    ("before_gconv1", ["shuffle", "gconv1", "dwconv", "gconv2"]),
    ("after_dwconv", ["gconv1", "dwconv", "shuffle", "gconv2"]),
    ("none", ["gconv1", "dwconv", "gconv2"]),
])
def test_v1_shuffle_placement(shuffle, order):
    unit = ShuffleV1Unit(_v1_units(shuffle)[1])
    assert [name for name, _ in unit.branch.named_children()] == order
    if shuffle != "none":
        assert unit.branch.shuffle.groups == 3


def test_v1_unit_layers_follow_the_paper():
    u = _v1_units("after_gconv1")[0]
    unit = ShuffleV1Unit(u)
    b = unit.branch
    assert isinstance(b.gconv1.bn.act, nn.ReLU)
    assert isinstance(b.dwconv.bn.act, nn.Identity)  # no ReLU after the depthwise conv
    assert isinstance(b.gconv2.bn.act, nn.Identity)  # the ReLU comes after the add / concat
    assert b.dwconv.conv.groups == u.mid_channels and b.dwconv.conv.stride == (2, 2)
    assert (b.gconv1.conv.groups, b.gconv2.conv.groups) == (u.groups1, u.groups2)
    assert isinstance(unit.shortcut, nn.AvgPool2d)
    x = torch.randn(2, 24, 8, 8)
    out = unit.eval()(x)
    assert out.shape == (2, 48, 4, 4)
    # stride 2: the first 24 channels are the 3x3 avg-pooled input, through the final ReLU
    torch.testing.assert_close(out[:, :24], torch.relu(nn.functional.avg_pool2d(x, 3, 2, 1)))
    assert (out >= 0).all()


def test_v1_stride1_unit_adds_its_input():
    u = _v1_units("after_gconv1", stride=1)[1]
    unit = ShuffleV1Unit(u).eval()
    x = torch.randn(2, 48, 6, 6)
    torch.testing.assert_close(unit(x), torch.relu(x + unit.branch(x)))


def test_v2_unit_mirrors_torchvision_inverted_residual():
    from torchvision.models.shufflenetv2 import InvertedResidual

    arch = Arch(stages=(Stage("v2", 48, 2),))
    for u in arch.units()[0]:
        ours, ref = ShuffleV2Unit(u).eval(), InvertedResidual(u.in_channels, u.out_channels, u.stride).eval()
        assert ours.state_dict().keys() == ref.state_dict().keys()
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(2, u.in_channels, 8, 8)
        torch.testing.assert_close(ours(x), ref(x))


def test_v2_unit_kernel_and_no_shuffle():
    u = Arch(stages=(Stage("v2", 48, 2, kernel_size=7, shuffle="none"),)).units()[0][1]
    unit = ShuffleV2Unit(u).eval()
    assert unit.branch2[3].kernel_size == (7, 7) and unit.branch2[3].padding == (3, 3)
    x = torch.randn(1, 48, 5, 5)
    out = unit(x)
    assert torch.equal(out[:, :24], x[:, :24])  # no shuffle: the first half passes through in place
