"""The genome: exact round trips, a stable hash, and validation errors naming stage, field and value."""

import json

import pytest

from shufflesearch import Arch, ShuffleSearchError
from shufflesearch.genome._arch import Head, Stage, Stem
from shufflesearch.genome._zoo import ZOO

GENOME = Arch(
    stem=Stem(channels=12, stride=1, max_pool=False),
    stages=(Stage("v1", 96, 3, groups=3, kernel_size=5, bottleneck_ratio=1 / 3, grouped_first_conv=False,
                  shuffle="after_dwconv"),
            Stage("v2", 128, 2, kernel_size=7, shuffle="none")),
    head=Head(conv_channels=256),
)


@pytest.mark.parametrize("arch", [GENOME, *ZOO.values()], ids=["custom", *ZOO])
def test_round_trips_are_exact(arch, tmp_path):
    assert Arch.from_dict(arch.to_dict()) == arch
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_yaml(arch.to_yaml()) == arch
    for name in ("a.yaml", "a.yml", "a.json"):
        arch.save(tmp_path / name)
        assert Arch.load(tmp_path / name) == arch
    assert Arch.from_json(arch.to_json()).hash == arch.hash


def test_hash_is_stable_and_identifies_the_genome():
    # the hash of a fixed genome must not drift between versions (it names runs and exported models)
    assert ZOO["shufflenet_v2_x1_0"].hash == "ba8016c46d"
    assert len({a.hash for a in ZOO.values()}) == len(ZOO)
    data = GENOME.to_dict()
    data["stages"][1]["kernel_size"] = 5
    assert Arch.from_dict(data).hash != GENOME.hash
    assert json.loads(GENOME.to_json()) == GENOME.to_dict()


def test_default_shuffle_resolves_per_unit():
    assert Stage("v1", 48, 1).shuffle == "after_gconv1" and Stage("v2", 48, 1).shuffle == "after_concat"
    assert Arch.from_dict({"stages": [{"unit": "v2", "out_channels": 48, "repeats": 1}]}).stages[0].shuffle \
        == "after_concat"


def _stage(**kw):
    base = dict(unit="v1", out_channels=240, repeats=4, groups=3)
    return {"stem": {"channels": 24}, "stages": [{**base, **kw}]}


@pytest.mark.parametrize("data, message", [
    (_stage(out_channels=241), "stages[0].out_channels = 241: must be divisible by groups=3"),
    ({"stem": {"channels": 240}, "stages": [_stage()["stages"][0]]},
     "stages[0].out_channels = 240: a stride-2 v1 unit concatenates its input, so it needs out > in (240)"),
    (_stage(kernel_size=4), "stages[0].kernel_size = 4: must be one of [3, 5, 7]"),
    (_stage(shuffle="after_concat"), "stages[0].shuffle = 'after_concat': must be one of"),
    (_stage(unit="v3"), "stages[0].unit = 'v3': must be 'v1' or 'v2'"),
    (_stage(unit="v2", groups=3), "stages[0].groups = 3: is a v1 option"),
    (_stage(stride=3), "stages[0].stride = 3: must be 1 or 2"),
    (_stage(widht=3), "stages[0].widht: unknown key"),
    ({"stages": [], "heads": {}}, "heads: unknown key"),
    ({"stem": {"channels": 0}, "stages": _stage()["stages"]}, "stem.channels = 0: must be an integer >= 1"),
    ({"stages": "v1"}, "stages: a list of stages is required"),
])
def test_validation_names_stage_field_and_value(data, message):
    with pytest.raises(ShuffleSearchError, match="^genome.yaml: ") as err:
        Arch.from_dict(data, source="genome.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [unit: v1\n")
    with pytest.raises(ShuffleSearchError, match="bad.yaml: not valid YAML"):
        Arch.load(bad)
    with pytest.raises(ShuffleSearchError, match="nothere.json: cannot read genome file"):
        Arch.load(tmp_path / "nothere.json")
