"""The zoo reproduces the papers' complexity and is layer for layer torchvision's ShuffleNet V2."""

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from shufflesearch import build, cost, get_arch, list_archs, resolve_arch
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._zoo import ZOO
from shufflesearch.models._registry import convert_torchvision_shufflenet_v2

pytestmark = pytest.mark.usefixtures("one_thread")

# ShuffleNet v1 (arXiv 1707.01083) Table 1 / Table 2 MFLOPs, megvii ShuffleNet-Series for 1.5x / 2x g3:
# (name, published MFLOPs, allowed relative error)
V1_PAPER = (
    [(f"shufflenet_v1_g{g}_x1_0", m, 0.015) for g, m in zip((1, 2, 3, 4, 8), (143, 140, 137, 133, 137))]
    + [(f"shufflenet_v1_g{g}_x0_5", 38, 0.05) for g in (1, 2, 3, 4, 8)]
    + [(f"shufflenet_v1_g{g}_x0_25", 13, 0.10) for g in (1, 2, 3, 4, 8)]
    + [("shufflenet_v1_g3_x1_5", 292, 0.03), ("shufflenet_v1_g3_x2_0", 524, 0.03)]
)
# torchvision's documented num_params and conv+linear MMACs of shufflenet_v2_*
TORCHVISION_V2 = {"x0_5": (1_366_792, 40.48), "x1_0": (2_278_604, 144.91), "x1_5": (3_503_624, 295.76),
                  "x2_0": (7_393_996, 583.25)}


@pytest.mark.parametrize("name, mflops, tolerance", V1_PAPER)
def test_v1_complexity_matches_the_paper(name, mflops, tolerance):
    assert abs(cost(ZOO[name]).mflops - mflops) <= tolerance * mflops


def test_v1_zoo_follows_the_papers_unit_rules():
    arch = ZOO["shufflenet_v1_g3_x1_0"]
    assert [s.out_channels for s in arch.stages] == [240, 480, 960] and arch.stem.channels == 24
    units = arch.units()
    assert units[0][0].groups1 == 1 and units[0][1].groups1 == 3  # stage 2's first pointwise conv ungrouped
    assert all(u.mid_channels == u.out_channels // 4 for stage in units for u in stage)
    assert [len(s) for s in units] == [4, 8, 4]


@pytest.mark.parametrize("tag", list(TORCHVISION_V2))
def test_v2_params_and_macs_equal_torchvisions(tag):
    params, mmacs = TORCHVISION_V2[tag]
    c = cost(ZOO[f"shufflenet_v2_{tag}"])
    assert c.params == params and round(c.macs / 1e6, 2) == mmacs
    ref = getattr(torchvision.models, f"shufflenet_v2_{tag}")().eval()
    assert sum(p.numel() for p in ref.parameters()) == params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.randn(1, 3, 224, 224))
    assert counter.get_total_flops() // 2 == c.macs


@pytest.mark.parametrize("tag", ["x0_5", "x1_0"])
def test_torchvision_weights_give_the_same_logits(tag):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, f"shufflenet_v2_{tag}")()
    with torch.no_grad():  # non-trivial BN statistics, so eval mode is tested too
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ref.eval()
    ours = build(get_arch(f"shufflenet_v2_{tag}")).eval()
    ours.load_state_dict(convert_torchvision_shufflenet_v2(ref.state_dict()))  # strict: every key maps
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), ref(x))


def test_convert_rejects_foreign_keys():
    with pytest.raises(ShuffleSearchError, match="'layer1.0.conv1.weight': not a torchvision ShuffleNetV2 key"):
        convert_torchvision_shufflenet_v2({"layer1.0.conv1.weight": torch.zeros(1)})


def test_get_arch_and_resolve_arch(tmp_path):
    assert get_arch("shufflenet_v1_g3_x1_0") is ZOO["shufflenet_v1_g3_x1_0"]
    assert list_archs() == ZOO  # each test sees the zoo alone (conftest), not models found for the user
    path = tmp_path / "genome.json"
    ZOO["shufflenet_v2_x0_5"].save(path)
    assert resolve_arch(path) == resolve_arch(str(path)) == resolve_arch("shufflenet_v2_x0_5")
    with pytest.raises(ShuffleSearchError, match=r"'shufflenet_v1_g3_x1': unknown .*did you mean shufflenet_v1_g3_x1_"):
        get_arch("shufflenet_v1_g3_x1")
    with pytest.raises(ShuffleSearchError, match="'resnet50': unknown shufflesearch model; see"):
        resolve_arch("resnet50")
    with pytest.raises(ShuffleSearchError, match="missing.yaml: cannot read genome file"):
        resolve_arch(tmp_path / "missing.yaml")
