"""timm's model-family checks (timm tests/test_models.py), each a function of a registered model name.

test_model runs them on every zoo name and on `mixed` (a genome with every v1 shuffle placement, a
stride-1 stage, kernels 5/7, V2 units, a conv head and no stem max-pool), test_export on exported
search winners. Inputs are 64x64, as timm shrinks them for these checks. A helper module, not a test
module (pytest puts tests/ on sys.path).
"""

import math
import warnings

import timm
import torch
from timm.models._features_fx import create_feature_extractor, get_graph_node_names

from shufflesearch import Arch
from shufflesearch.genome._arch import Head, Stage, Stem

SIZE = 64
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


def forward_and_grad_checkpointing(name):
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


def backward_every_parameter_gets_a_gradient(name):
    model = create(name, num_classes=42).train()
    out = model(torch.randn(2, 3, SIZE, SIZE))
    out.mean().backward()
    assert out.shape == (2, 42) and not out.isnan().any()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def create_without_classifier_or_pool(name):
    model = create(name, num_classes=0, global_pool="").eval()
    out = model(torch.randn(1, 3, SIZE, SIZE))
    assert out.shape == (1, model.num_features, expected_spatial(model), expected_spatial(model))
    assert model.forward_head(model.forward_features(torch.randn(1, 3, SIZE, SIZE)), pre_logits=True).ndim == 4


def torchscript(name):
    with timm.set_scriptable(True):
        model = create(name).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
        scripted = torch.jit.script(model)
    x = torch.randn(1, 3, SIZE, SIZE)
    torch.testing.assert_close(scripted(x), model(x))


def fx(name):
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


def features_only(name):
    model = create(name, features_only=True).eval()
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) == len(model.feature_info.info) >= 2
    outs = model(torch.randn(1, 3, SIZE, SIZE))
    assert len(outs) == len(channels)
    for c, r, o in zip(channels, reductions, outs):
        assert o.shape[1:] == (c, math.ceil(SIZE / r), math.ceil(SIZE / r))
    subset = create(name, features_only=True, out_indices=(1, -1))
    assert [o.shape[1] for o in subset(torch.randn(1, 3, SIZE, SIZE))] == [channels[1], channels[-1]]


def forward_intermediates_and_prune(name):
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


CHECKS = [forward_and_grad_checkpointing, backward_every_parameter_gets_a_gradient,
          create_without_classifier_or_pool, torchscript, fx, features_only, forward_intermediates_and_prune]
