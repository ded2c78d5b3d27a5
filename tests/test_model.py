"""timm's model-family checks (timm tests/test_models.py) on every registered shufflesearch model.

Every check of timm_contract runs on every zoo name at 64x64 (timm itself shrinks inputs for these;
the pool size is also checked at 224 on two models), plus `mixed`, a genome with every v1 shuffle
placement, a stride-1 stage, kernels 5/7, V2 units, a conv head and no stem max-pool.
"""

import subprocess
import sys

import pytest
import timm
import timm_contract
import torch
from timm_contract import MIXED, SIZE, create, expected_spatial

import shufflesearch
from shufflesearch import Arch, ShuffleSearchError, build
from shufflesearch.genome._arch import Stage, Stem
from shufflesearch.genome._zoo import ZOO

pytestmark = pytest.mark.usefixtures("one_thread")

ZOO_NAMES = list(ZOO)
ALL = ZOO_NAMES + ["mixed"]


def test_every_zoo_name_and_the_generic_entry_are_registered():
    assert set(timm.list_models("shufflenet_*")) >= set(ZOO)
    assert "shufflesearch_net" in timm.list_models("shufflesearch*")
    # the zoo alone: found models (./runs, SHUFFLESEARCH_MODELS) are the user's, not the tests'
    assert set(shufflesearch.list_archs()) == set(ZOO)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("check", timm_contract.CHECKS, ids=lambda check: check.__name__)
def test_timm_contract(check, name):
    check(name)


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
