"""timm's model-family checks (timm tests/test_models.py) on every registered shufflesearch model.

Every check runs on every zoo name at 64x64 (timm itself shrinks inputs for these; the pool size
is also checked at 224 on two models), plus `mixed`, a genome with every v1 shuffle placement, a
stride-1 stage, kernels 5/7, V2 units, a conv head and no stem max-pool.
"""

import math
import subprocess
import sys

import pytest
import timm
import torch
from timm.models._features_fx import create_feature_extractor, get_graph_node_names

import shufflesearch
from shufflesearch import Arch, ShuffleSearchError, build
from shufflesearch.arch import Head, Stage, Stem
from shufflesearch.registry import FOUND
from shufflesearch.zoo import ZOO

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
ZOO_NAMES = list(ZOO)
MIXED = Arch(
    stem=Stem(channels=24, stride=2, max_pool=False),
    stages=(
        Stage("v1", 96, 2, groups=3, grouped_first_conv=False, shuffle="before_gconv1", kernel_size=5),
        Stage("v1", 192, 2, groups=4, shuffle="after_dwconv"),
        Stage("v1", 192, 2, stride=1, groups=2, shuffle="none", kernel_size=7),
        Stage("v2", 256, 2, kernel_size=5),
    ),
    head=Head(conv_channels=320),
)
ALL = ZOO_NAMES + ["mixed"]


def create(name: str, **kwargs):
    """A 3-channel, 1000-class model: the zoo's defaults, asked for explicitly so found models
    (registered with their proxy data's channels and classes) take the same checks."""
    kwargs = {"in_chans": 3, "num_classes": 1000, **kwargs}
    if name == "mixed":
        return timm.create_model("shufflesearch_net", arch=MIXED, **kwargs)
    return timm.create_model(name, **kwargs)


def expected_spatial(model, size: int = SIZE) -> int:
    """Final feature-map side at `size`: each stride pads k // 2, so it rounds up."""
    return math.ceil(size / model.feature_info[-1]["reduction"])


def test_every_zoo_name_and_the_generic_entry_are_registered():
    assert set(timm.list_models("shufflenet_*")) >= set(ZOO)
    assert "shufflesearch_net" in timm.list_models("shufflesearch*")
    # the zoo, plus any found models registered (from runs/ here, or exported by other tests)
    assert set(shufflesearch.list_archs()) == set(ZOO) | set(FOUND)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_forward_and_grad_checkpointing(name):
    model = create(name).eval()
    x = torch.randn(1, 3, SIZE, SIZE, requires_grad=True)
    out = model(x)
    assert out.shape == (1, 1000) and not out.isnan().any()
    (grad,) = torch.autograd.grad(out.sum(), x)
    model.set_grad_checkpointing()
    out_ckpt = model(x)
    (grad_ckpt,) = torch.autograd.grad(out_ckpt.sum(), x)
    assert torch.equal(out, out_ckpt)
    torch.testing.assert_close(grad, grad_ckpt)


@pytest.mark.parametrize("name", ALL)
def test_backward_every_parameter_gets_a_gradient(name):
    model = create(name, num_classes=42).train()
    out = model(torch.randn(2, 3, SIZE, SIZE))
    out.mean().backward()
    assert out.shape == (2, 42) and not out.isnan().any()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("name", ALL)
def test_default_cfg(name):
    model = create(name).eval()
    cfg = model.default_cfg
    state_dict = model.state_dict()
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == 0.875 and cfg["interpolation"] == "bilinear"
    assert cfg["paper_ids"] and cfg["mean"] and cfg["std"]
    assert cfg["pool_size"] == (expected_spatial(model, 224),) * 2
    side = expected_spatial(model)
    x = torch.randn(1, 3, SIZE, SIZE)
    feats = model.forward_features(x)
    assert feats.shape == (1, model.num_features, side, side)
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)
    model.reset_classifier(0, "")
    assert model(x).shape == (1, model.num_features, side, side)
    for key in (cfg["classifier"], cfg["first_conv"]):
        assert key + ".weight" in state_dict
    assert model.head_hidden_size == model.num_features == model.arch.num_features


@pytest.mark.parametrize("name", ["shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_0"])
def test_default_cfg_pool_size_at_224(name):
    model = create(name).eval()
    assert model.forward_features(torch.randn(1, 3, 224, 224)).shape[-2:] == model.default_cfg["pool_size"] == (7, 7)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "mixed"])
def test_create_without_classifier_or_pool(name):
    model = create(name, num_classes=0, global_pool="").eval()
    out = model(torch.randn(1, 3, SIZE, SIZE))
    assert out.shape == (1, model.num_features, expected_spatial(model), expected_spatial(model))
    assert model.forward_head(model.forward_features(torch.randn(1, 3, SIZE, SIZE)), pre_logits=True).ndim == 4


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", ALL)
def test_torchscript(name):
    with timm.set_scriptable(True):
        model = create(name).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, SIZE, SIZE)
    torch.testing.assert_close(scripted(x), model(x))


@pytest.mark.parametrize("name", ALL)
def test_fx(name):
    model = create(name).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x))
    # timm's fx feature extraction (its tracer, its leaf modules)
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert train_nodes[-1] == eval_nodes[-1]
    extractor = create_feature_extractor(model, return_nodes=[eval_nodes[-1]])
    torch.testing.assert_close(next(iter(extractor(x).values())), model(x))
    fx_feats = create(name, features_only=True, feature_cls="fx").eval()
    assert [f.shape[1] for f in fx_feats(x)] == [i["num_chs"] for i in model.feature_info]


@pytest.mark.parametrize("name", ALL)
def test_features_only(name):
    model = create(name, features_only=True).eval()
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) == len(model.feature_info.info) >= 2
    outs = model(torch.randn(1, 3, SIZE, SIZE))
    assert len(outs) == len(channels)
    for c, r, o in zip(channels, reductions, outs):
        assert o.shape[1:] == (c, math.ceil(SIZE / r), math.ceil(SIZE / r))
    subset = create(name, features_only=True, out_indices=(1, -1))
    assert [o.shape[1] for o in subset(torch.randn(1, 3, SIZE, SIZE))] == [channels[1], channels[-1]]


@pytest.mark.parametrize("name", ALL)
def test_forward_intermediates_and_prune(name):
    model = create(name).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    final, inter = model.forward_intermediates(x)
    torch.testing.assert_close(final, model.forward_features(x))
    assert [t.shape[1] for t in inter] == [i["num_chs"] for i in model.feature_info]
    for info, t in zip(model.feature_info, inter):
        assert t.shape[-1] == math.ceil(SIZE / info["reduction"])
    early = model.forward_intermediates(x, indices=[1], stop_early=True, intermediates_only=True)
    torch.testing.assert_close(early[0], inter[1])
    assert model.forward_intermediates(x, indices=2, intermediates_only=True)[-1].shape == inter[-1].shape

    kept = model.prune_intermediate_layers([1])
    assert kept == [1]
    assert model(x).shape == inter[1].shape  # stages after tap 1, conv_head and classifier are gone
    assert model.num_features == model.feature_info[1]["num_chs"]


def test_group_matcher_groups_stem_blocks_head():
    model = create("shufflenet_v2_x0_5")
    groups = list(timm.models.group_parameters(model, model.group_matcher()).values())
    coarse = list(timm.models.group_parameters(model, model.group_matcher(coarse=True)).values())
    n_units = sum(len(s) for s in model.stages)
    # stem, each unit (conv_head joins the last, as in timm's EfficientNet), then the classifier
    assert len(groups) == 1 + n_units + 1 and len(coarse) == 1 + len(model.stages) + 1
    for g in (groups, coarse):
        assert all(n.startswith("stem.") for n in g[0]) and g[-1] == ["head.fc.weight", "head.fc.bias"]
        assert sum(len(v) for v in g) == len(list(model.parameters()))


def test_drop_rate_in_chans_and_build_sources(tmp_path):
    arch = ZOO["shufflenet_v2_x0_5"]
    path = tmp_path / "a.yaml"
    arch.save(path)
    for source in (arch, arch.to_dict(), str(path), path):
        model = build(source, num_classes=7, in_chans=1, drop_rate=0.3)
        assert model.arch == arch and model.head.drop.p == 0.3
        assert model.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(ShuffleSearchError, match="missing.yaml"):
        build(tmp_path / "missing.yaml")
    with pytest.raises(ShuffleSearchError, match="expected an Arch"):
        build(42)


def test_channels_last_model_matches_contiguous():
    model = create("mixed").eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), ref, rtol=1e-4, atol=1e-5)


def test_generic_entry_defaults_to_v2_x1_0_and_follows_its_genome_pool_size():
    model = timm.create_model("shufflesearch_net")  # timm's tooling builds every name with no arguments
    assert model.arch == ZOO["shufflenet_v2_x1_0"]
    assert model.default_cfg["pool_size"] == (7, 7) and model.default_cfg["paper_ids"] == "arXiv:1807.11164"
    arch = Arch(stages=(Stage("v2", 32, 1),), stem=Stem(channels=16, stride=1, max_pool=False))
    model = timm.create_model("shufflesearch_net", arch=arch.to_dict())
    assert model.default_cfg["pool_size"] == (112, 112)
    assert model.default_cfg["paper_ids"] == "arXiv:1807.11164"


@pytest.mark.parametrize("name", ["shufflenet_v1_g3_x1_0", "shufflesearch_net"])
def test_pretrained_true_says_there_are_no_weights(name):
    with pytest.raises(ShuffleSearchError, match=f"{name}: no pretrained weights exist"):
        timm.create_model(name, pretrained=True, arch=MIXED) if name == "shufflesearch_net" \
            else timm.create_model(name, pretrained=True)


def test_pretrained_from_a_weights_file(tmp_path):
    ref = create("shufflenet_v2_x0_5", num_classes=10).eval()
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    model = timm.create_model("shufflenet_v2_x0_5", pretrained=True, num_classes=10,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / "w.pth"), num_classes=10)).eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x), ref(x))


def test_create_model_in_a_fresh_process():
    code = ("import shufflesearch, timm, torch; m = timm.create_model('shufflenet_v1_g3_x1_0').eval(); "
            "print(tuple(m(torch.randn(1, 3, 64, 64)).shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 1000)"
