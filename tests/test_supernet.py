"""The weight-sharing supernet: every sampled architecture is a path, `extract` gives the stand-alone
`build(arch)` model whose outputs equal the path's, and `PathScorer` scores a path as that model would be."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import ROOT
from torch import nn
from torch.optim.swa_utils import update_bn

from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch, Stage
from shufflesearch.models._network import build
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._network import Supernet, supernet_bounds
from shufflesearch.supernet._score import PathScorer, bn_images
from shufflesearch.train._proxy import _evaluate

SPACES = ["demo", "mixed", "shufflenet_v1_paper", "shufflenet_v2"]


def _space(name: str) -> SearchSpace:
    return SearchSpace.from_yaml(ROOT / "search_spaces" / f"{name}.yaml")


@pytest.fixture(scope="module")
def supernets():
    torch.manual_seed(0)
    return {name: Supernet(_space(name), num_classes=10, in_chans=1) for name in SPACES}


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])  # channels_last: 1x1 convs as matmuls in the path
@pytest.mark.parametrize("name", SPACES)
def test_extracted_model_equals_the_path(supernets, name, layout, one_thread):
    net = supernets[name]
    fmt = torch.contiguous_format
    if layout == "channels_last":
        net, fmt = copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last
    units = set()
    for arch in net.space.random_sample(6, seed=1):
        units.update(s.unit for s in arch.stages)
        x = torch.randn(8, 1, 32, 32).contiguous(memory_format=fmt)
        net.train()
        with torch.no_grad():
            train_out = net(x, arch)  # batch statistics; also moves the path's running statistics
        model = net.extract(arch)
        assert type(model).__name__ == "ShuffleNet" and model.arch == arch
        with torch.no_grad():
            net.eval()
            out = net(x, arch)
            torch.testing.assert_close(model.eval()(x), out, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model.train()(x), train_out, rtol=1e-5, atol=1e-5)
        assert out.shape == (8, 10)
    assert units  # which unit types the space gave: v1 for the paper space, v2 for v2, both for mixed
    if name == "mixed":
        assert units == {"v1", "v2"}


def test_a_channels_last_path_has_the_stand_alone_models_gradients(supernets, one_thread):
    """The path's 1x1 convs run as matrix products (`supernet._PointwiseMatmul`), the model's as convs:
    the gradients agree, in v1 units with grouped 1x1 convs and in v2 units."""
    net = copy.deepcopy(supernets["mixed"]).to(memory_format=torch.channels_last).train()
    for arch in net.space.random_sample(4, seed=7):
        x = torch.randn(8, 1, 32, 32).contiguous(memory_format=torch.channels_last)
        model = net.extract(arch).to(memory_format=torch.channels_last).train()
        net.zero_grad(set_to_none=True)
        y = torch.randint(0, 10, (8,))
        nn.functional.cross_entropy(net(x, arch), y).backward()
        nn.functional.cross_entropy(model(x), y).backward()
        params = dict(net.named_parameters())
        for name, p in model.named_parameters():
            source = params[net._layout(arch)[1][name][0]]  # the supernet tensor the path slices
            expected = source.grad[tuple(slice(0, n) for n in p.shape)]
            # float rounding, summed over the net (and some gradients, a BatchNorm's bias before another, are 0 but for it)
            assert (p.grad - expected).norm() <= 1e-4 * expected.norm() + 1e-5, name


def test_paths_share_weights_and_gradients_reach_only_the_path(supernets, one_thread):
    net = supernets["mixed"]
    a, b = net.space.random_sample(2, seed=3)
    net.train()
    net.zero_grad(set_to_none=True)
    net(torch.randn(4, 1, 32, 32), a).sum().backward()
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    assert with_grad == {n for n in net.path_blocks(a) if n in dict(net.named_parameters())}
    # the stem is shared by every path: a change to it changes both extracted models
    with torch.no_grad():
        net.stem.conv.weight.add_(1.0)
    assert torch.equal(net.extract(a).stem.conv.weight, net.stem.conv.weight[:a.stem.channels])
    assert torch.equal(net.extract(b).stem.conv.weight, net.stem.conv.weight[:b.stem.channels])


def test_different_choices_use_different_blocks(supernets):
    net = supernets["shufflenet_v1_paper"]
    a, b = (Arch.from_dict({"stem": {"channels": 24}, "stages": [
        {"unit": "v1", "out_channels": 240 if g == 3 else 200, "repeats": 4, "groups": g, "grouped_first_conv": False},
        {"unit": "v1", "out_channels": 480 if g == 3 else 400, "repeats": 8, "groups": g},
        {"unit": "v1", "out_channels": 960 if g == 3 else 800, "repeats": 4, "groups": g}]}) for g in (3, 8))
    units_a, units_b = ({n for n in net.path_blocks(arch) if n.startswith("stages.")} for arch in (a, b))
    assert units_a and units_b and not units_a & units_b  # groups 3 and 8: no unit weights in common
    assert net.path_blocks(a) - units_a == net.path_blocks(b) - units_b  # stem and head are shared


@pytest.mark.parametrize("name", ["demo", "mixed", "shufflenet_v1_free", "shufflenet_v1_paper", "shufflenet_v2"])
def test_bounds_hold_every_sample(name):
    space = _space(name)
    b = supernet_bounds(space)
    for arch in space.random_sample(200, seed=2):
        assert arch.stem.channels <= b.stem
        assert all(s.out_channels <= m for s, m in zip(arch.stages, b.stages))
        assert (arch.head.conv_channels or 0) <= b.head
    assert all(c % b.divisor == 0 for c in (b.stem, *b.stages))


def test_a_new_supernets_residual_blocks_start_as_the_identity(one_thread):
    """Every stride-1 v1 block's branch ends in a BatchNorm of scale 0 (its bias is 0), so a path's
    residual units add nothing at first, whatever depth the path takes; v2 and stride-2 blocks, the
    stand-alone models, keep the papers' initialisation."""
    net = Supernet(_space("mixed"), num_classes=10, in_chans=1).train()
    scales = {}
    for i, stage in enumerate(net.stages):
        for j, position in enumerate(stage):
            for key, block in position.items():
                bn = block.branch.gconv2.bn if key.startswith("v1") else block.branch2[-2]
                scales[(i, j, key[:2])] = bn.weight.abs().max().item()
    assert all((s == 0) == (unit == "v1" and j > 0) for (_, j, unit), s in scales.items())
    assert {unit for _, _, unit in scales} == {"v1", "v2"}
    arch = next(a for a in net.space.random_sample(50, seed=0) if a.stages[1].unit == "v1" and a.stages[1].repeats > 1)
    model = net.extract(arch)
    x = torch.rand(4, model.stages[1][1].branch.gconv1.conv.in_channels, 8, 8)  # >= 0, as after a ReLU
    with torch.no_grad():
        torch.testing.assert_close(model.stages[1][1](x), x, rtol=0, atol=0)
    assert build(arch).stages[1][1].branch.gconv2.bn.weight.min() == 1


def test_an_arch_outside_the_space_is_refused(supernets):
    net = supernets["shufflenet_v2"]
    wide = Arch(stages=(Stage("v2", 2000, 1), Stage("v2", 4000, 1), Stage("v2", 8000, 1)))
    with pytest.raises(ShuffleSearchError, match="not a path of the supernet over space 'shufflenet_v2'"):
        net.extract(wide)
    v1 = Arch(stages=(Stage("v1", 48, 1, groups=2), Stage("v1", 96, 1, groups=2), Stage("v1", 192, 1, groups=2)))
    with pytest.raises(ShuffleSearchError, match="not a path"):
        net.path_tensors(v1)


def test_a_supernet_copies(supernets, one_thread):
    import copy

    net = supernets["demo"].eval()
    arch = net.space.random_sample(1, seed=4)[0]
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(copy.deepcopy(net)(x, arch), net(x, arch), rtol=0, atol=0)


def test_a_path_scorer_scores_as_extract_update_bn_and_evaluation_do(supernets, one_thread):
    """`PathScorer` keeps each stem width's features (several widths here); what it returns equals the
    plain procedure's, to the bit, with its stems kept or not (`cache_bytes=0`: each path runs whole)."""
    net = supernets["shufflenet_v1_paper"].eval()
    data = load_data(_space("demo").proxy.data, "search")
    images = bn_images(data, 3, 16, seed=0)
    cached, whole = PathScorer(net, data, images, 16), PathScorer(net, data, images, 16, cache_bytes=0)
    archs = net.space.random_sample(4, seed=5)
    stems = {a.stem.channels for a in archs}
    assert len(stems) > 1
    cl = torch.channels_last
    for arch in archs:
        reference = net.extract(arch).to(memory_format=cl)
        with torch.no_grad():
            update_bn(images.contiguous(memory_format=cl).split(16), reference)
        expected = _evaluate(reference, data.eval_x.contiguous(memory_format=cl), data.eval_y)
        for scorer in (cached, whole):
            model, loss, acc = scorer.score(arch)
            assert (loss, acc) == expected
            torch.testing.assert_close(model.state_dict(), reference.state_dict(), rtol=0, atol=0)
    assert len(cached._stems) == len(stems) and not whole._stems
