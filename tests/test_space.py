import itertools
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from shufflesearch import Arch, SearchSpace, cost
from shufflesearch.cli import main
from shufflesearch.genome._zoo import ZOO
from shufflesearch.models._network import build
from shufflesearch.space._sampling import all_choices, structure_arch

SPACE_DIR = Path(__file__).parents[1] / "search_spaces"
SPACES = sorted(SPACE_DIR.glob("*.yaml"))
SAMPLERS = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_study(space: SearchSpace, sampler: optuna.samplers.BaseSampler, n: int) -> list[optuna.trial.FrozenTrial]:
    """Ask/tell `n` trials; feasible ones get a made-up accuracy that prefers cost, so TPE has a signal."""
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(n):
        trial = study.ask()
        arch = space.sample(trial)
        if arch is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, trial.user_attrs["mflops"] / space.budget.mflops)
    return study.trials


def test_shipped_spaces_are_the_five_named():
    assert {p.stem for p in SPACES} == {"shufflenet_v1_paper", "shufflenet_v1_free", "shufflenet_v2", "mixed", "demo"}


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_space_loads_with_proxy_and_search_sections(path):
    space = SearchSpace.from_yaml(path)
    assert space.name == path.stem and space.source == str(path)
    assert space.proxy.data.dataset == "digits" and space.proxy.train.epochs >= 1
    assert space.search.sampler in ("tpe", "nsga2", "random") and space.search.trials >= 1
    lo, hi = space.cost_range()
    assert lo.macs <= space.budget.macs < hi.macs
    assert space.count() > 1


@pytest.fixture(scope="module", params=[(p, s) for p in SPACES for s in SAMPLERS],
                ids=lambda ps: f"{ps[0].stem}-{ps[1]}")
def sampled(request):
    path, sampler = request.param
    space = SearchSpace.from_yaml(path)
    return space, run_study(space, SAMPLERS[sampler](seed=0), 500)


def test_500_samples_are_within_budget_by_construction(sampled):
    space, trials = sampled
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # no shipped structure is rejected
    lo_mult = space.width_multiplier[0]
    for t in trials:
        arch = Arch.from_json(t.user_attrs["arch"])
        c = space.cost(arch)
        assert c.macs <= space.budget.macs and c.mflops == t.user_attrs["mflops"]
        assert c.params == t.user_attrs["params"] and arch.hash == t.user_attrs["arch_hash"]
        assert t.constraints["budget"] <= 0
        # the width lands at or under the sampled fraction of the budget (unless already at the narrowest)
        assert c.macs <= t.params["budget.fraction"] * space.budget.macs or t.user_attrs["width_multiplier"] == lo_mult


def test_samples_spread_over_the_cost_axis(sampled):
    space, trials = sampled
    fractions = [t.user_attrs["mflops"] / space.budget.mflops for t in trials]
    assert min(fractions) < 2 * space.budget.min_fraction and max(fractions) > 0.9


def test_a_subset_of_samples_builds_and_costs_what_flopcounter_counts(sampled):
    space, trials = sampled
    for t in trials[::125]:
        arch = Arch.from_json(t.user_attrs["arch"])
        model = build(arch, num_classes=10).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64))
        assert out.shape == (1, 10)
        c = cost(arch, input_size=64, num_classes=10)
        assert counter.get_total_flops() == 2 * c.macs
        assert sum(p.numel() for p in model.parameters()) == c.params


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_and_sampler_give_the_same_architectures(sampler):
    space = SearchSpace.from_yaml(SPACE_DIR / "mixed.yaml")
    runs = [[t.user_attrs["arch_hash"] for t in run_study(space, SAMPLERS[sampler](seed=s), 30)] for s in (3, 3, 4)]
    assert runs[0] == runs[1] != runs[2]


@pytest.mark.parametrize("name", [n for n in ZOO if n.startswith("shufflenet_v1_")])
def test_paper_zoo_models_are_points_of_the_paper_space(name):
    space = SearchSpace.from_yaml(SPACE_DIR / "shufflenet_v1_paper.yaml")
    zoo = ZOO[name]
    stem_choice = {8: 12}.get(zoo.stem.channels, zoo.stem.channels)  # 12 rounds down to 8 for g=8
    params = {"shared.groups": zoo.stages[0].groups, "stem.channels": stem_choice,
              "budget.fraction": (space.cost(zoo).macs + 0.5) / space.budget.macs}
    assert space.sample(optuna.trial.FixedTrial(params)) == zoo


def _enumerated(space: SearchSpace, mult: float) -> dict[str, int]:
    """Every assignment of the choices at width `mult`: architecture hash -> MACs."""
    choices = all_choices(space)
    archs = {}
    for values in itertools.product(*(c.values for c in choices)):
        arch = structure_arch(space, {c.path: v for c, v in zip(choices, values)}, mult)
        archs[arch.hash] = space.cost(arch).macs
    return archs


@pytest.mark.parametrize("stem", ["demo", "shufflenet_v1_paper", "shufflenet_v2"])
def test_count_and_cost_range_agree_with_enumeration(stem):
    space = SearchSpace.from_yaml(SPACE_DIR / f"{stem}.yaml")
    lo, hi = space.cost_range()
    smallest = _enumerated(space, space.width_multiplier[0])
    largest = _enumerated(space, space.width_multiplier[1])
    assert lo.macs == min(smallest.values()) and hi.macs == max(largest.values())
    assert space.count() == len(largest)


def test_a_structure_too_big_for_the_budget_is_rejected_with_an_optuna_constraint(tmp_path):
    data = yaml.safe_load((SPACE_DIR / "demo.yaml").read_text())
    data["stages"] = [{"base_channels": 116, "repeats": {"choices": [1, 16]}},
                      {"base_channels": 232, "repeats": {"choices": [1, 16]}}]
    data["budget"]["mflops"] = 12
    space = SearchSpace.from_dict(data, "test")
    trials = run_study(space, optuna.samplers.TPESampler(seed=0), 40)
    rejected = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    accepted = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert rejected and accepted
    for t in rejected:  # never a penalty value: only the constraint and what was too big
        assert t.values is None and t.constraints["budget"] > 0 and t.user_attrs["smallest_mflops"] > 12
        assert "arch" not in t.user_attrs
    assert all(t.constraints["budget"] <= 0 and t.user_attrs["mflops"] <= 12 for t in accepted)


def test_max_params_caps_every_sample(tmp_path):
    data = yaml.safe_load((SPACE_DIR / "demo.yaml").read_text())
    data["budget"]["max_params"] = 600_000
    space = SearchSpace.from_dict(data, "test")
    trials = run_study(space, optuna.samplers.RandomSampler(seed=1), 100)
    assert all(t.user_attrs["params"] <= 600_000 and t.constraints["params"] <= 0
               for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert max(t.user_attrs["params"] for t in trials if "params" in t.user_attrs) > 400_000


def test_with_budget_and_to_yaml_round_trip():
    space = SearchSpace.from_yaml(SPACE_DIR / "shufflenet_v2.yaml")
    again = SearchSpace.from_dict(yaml.safe_load(space.to_yaml()), space.source)
    assert again.to_yaml() == space.to_yaml() and again.count() == space.count()
    smaller = space.with_budget(60)
    assert smaller.budget.mflops == 60 and space.budget.mflops == 150
    assert all(t.user_attrs["mflops"] <= 60 for t in run_study(smaller, optuna.samplers.RandomSampler(seed=0), 50))


def test_cli_space_prints_size_cost_range_and_seeded_samples(capsys):
    path = str(SPACE_DIR / "demo.yaml")
    assert main(["space", path, "--samples", "3", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    space = SearchSpace.from_yaml(path)
    lo, hi = space.cost_range()
    assert f"{space.count():,d} discrete structures" in out
    assert f"{lo.mflops:.2f} to {hi.mflops:.2f} MFLOPs (multiply-adds) at 224x224" in out
    samples = [line for line in out.splitlines() if line.startswith("  #")]
    assert len(samples) == 3 and all("MFLOPs" in line for line in samples)
    assert main(["space", path, "--samples", "3", "--seed", "7"]) == 0
    assert capsys.readouterr().out == out


def test_stride_1_stages_keep_their_input_width_and_respect_divisors():
    data = yaml.safe_load((SPACE_DIR / "demo.yaml").read_text())
    data["shared"] = {"kernel_size": 3}
    data["stages"] = [
        {"unit": {"choices": ["v1", "v2"]}, "base_channels": 120, "repeats": 1, "groups": {"choices": [1, 3, 8]}},
        {"unit": {"choices": ["v1", "v2"]}, "stride": 1, "repeats": 1, "groups": {"choices": [2, 4]}},
        {"unit": "v1", "base_channels": 480, "repeats": 2, "groups": {"choices": [3, 8]}},
    ]
    space = SearchSpace.from_dict(data, "test")
    for t in run_study(space, optuna.samplers.RandomSampler(seed=0), 60):
        arch = Arch.from_json(t.user_attrs["arch"])  # Arch validates every channel rule
        first, second, third = arch.stages
        assert second.out_channels == first.out_channels and second.stride == 1
        assert first.out_channels % third.groups == 0 and arch.stem.channels % (first.groups if first.unit == "v1" else 1) == 0


def test_random_sample_gives_n_in_budget_architectures_the_same_for_the_same_seed():
    space = SearchSpace.from_yaml(SPACE_DIR / "demo.yaml")
    first = space.random_sample(5, seed=7)
    assert len(first) == 5 and all(space.cost(a).mflops <= space.budget.mflops for a in first)
    assert [a.hash for a in space.random_sample(5, seed=7)] == [a.hash for a in first]
    assert [a.hash for a in space.random_sample(5, seed=8)] != [a.hash for a in first]
