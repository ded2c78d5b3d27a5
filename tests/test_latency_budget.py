"""A latency budget on a target (issue 32): every candidate is measured there (or predicted from a table
built there) before it trains; none over the budget is trained, the study is told it is infeasible (its
`latency` constraint) and `rejected.jsonl` says why. On a Ray cluster, the measurements run on the node
that carries the target's custom resource, and nowhere else.

Latency is measured at 64 px with few runs so that each measurement takes milliseconds; the budget is
taken from measured latencies of the space's own samples, so that some candidates fit and some do not on
any machine (a test never asserts a time, only that the search kept to what it measured).
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import tiny_space

import shufflesearch
from shufflesearch.driver._latency import LatencyGate, measure_on_target
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.space import SearchSpace, shipped_spaces
from shufflesearch.space._configs import LatencySettings

FAST = {"input_size": 64, "runs": 5, "warmup": 1}  # budget.latency settings whose measurements are quick


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _limit(space: SearchSpace, quantile: float, n: int = 12, seed: int = 3) -> float:
    """The `quantile` of the latencies (FAST settings, here) of the first `n` in-budget samples of
    `space` under a RandomSampler(seed) (those a gate sampling so sees first)."""
    settings = LatencySettings(**FAST)
    ms = sorted(measure_on_target(a, settings, 64)[0].median_ms for a in space.random_sample(n, seed=seed))
    return ms[int(quantile * (n - 1))]


def test_the_gate_rejects_what_it_measured_over_the_budget_and_records_why(tmp_path):
    space = SearchSpace.from_yaml("demo")
    limit = _limit(space, 0.5, n=20, seed=0)  # the median of the very architectures the gate sees below
    space = space.with_budget(latency_ms=limit, latency=FAST)
    gate = LatencyGate(space, tmp_path / "rejected.jsonl")
    info = gate.open()
    assert info["latency_node"] == "local" and info["latency_fingerprint"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kept = [a for a in (gate.sample(study.ask()) for _ in range(20)) if a is not None]
    rejected = _rows(tmp_path / "rejected.jsonl")
    assert kept and rejected and len(kept) + len(rejected) == 20
    assert all(gate(a) <= limit for a in kept)
    for r in rejected:
        assert r["latency_ms"] > limit and r["budget_latency_ms"] == limit and r["latency_node"] == "local"
        assert r["reason"].startswith(f"latency {r['latency_ms']:.3f} ms > budget {limit:g} ms on local")
        trial = study.trials[r["number"]]  # the study's own trial, its constraint > 0
        assert trial.user_attrs["rejected_latency_ms"] == r["latency_ms"]
        assert Arch.from_json(trial.user_attrs["rejected_arch"]).hash == r["arch_hash"]
    feasible = [t for t in study.trials if "arch_hash" in t.user_attrs]
    assert all(t.user_attrs["latency_ms"] <= limit for t in feasible) and len(feasible) == len(kept)


@pytest.mark.parametrize("name", sorted(shipped_spaces()))
@pytest.mark.parametrize("alone", [False, True], ids=["with-flops", "alone"])
def test_every_shipped_space_samples_through_the_gate(tmp_path, name, alone):
    space = SearchSpace.from_yaml(name)
    limit = _limit(space, 0.5, n=6, seed=0)
    data = yaml.safe_load(space.with_budget(latency_ms=limit, latency=FAST).to_yaml())
    if alone:
        del data["budget"]["mflops"]
    gate = LatencyGate(SearchSpace.from_dict(data, name), tmp_path / "rejected.jsonl")
    gate.open()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kept = [a for a in (gate.sample(study.ask()) for _ in range(6)) if a is not None]
    assert all(gate(a) <= limit for a in kept)
    assert all(r["latency_ms"] > limit for r in _rows(tmp_path / "rejected.jsonl"))
    assert len(kept) + len(_rows(tmp_path / "rejected.jsonl")) == 6


def test_a_latency_budget_alone_fits_the_width_to_it(tmp_path):
    """No FLOPs budget: the width is solved for a fraction of the latency budget, so samples straddle
    neither a FLOPs cap nor the latency budget (a structure too slow even at the smallest width is refused)."""
    demo = SearchSpace.from_yaml("demo")
    limit = _limit(demo, 0.5)
    data = yaml.safe_load(demo.to_yaml())
    del data["budget"]["mflops"]
    data["budget"].update(latency_ms=limit, latency=FAST)
    space = SearchSpace.from_dict(data, "latency-only.yaml")
    assert not space.budget.flops_capped and space.budget.mflops >= demo.budget.mflops
    gate = LatencyGate(space, tmp_path / "rejected.jsonl")
    gate.open()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kept = [a for a in (gate.sample(study.ask()) for _ in range(8)) if a is not None]
    assert kept and all(gate(a) <= limit for a in kept)
    assert max(space.cost(a).mflops for a in kept) > 0


def test_a_target_no_node_carries_is_one_line(tmp_path):
    space = SearchSpace.from_yaml("demo").with_budget(latency_ms=5.0, latency={**FAST, "target": "rpi4"})
    with pytest.raises(ShuffleSearchError, match=r"budget.latency.target = 'rpi4': no node of the Ray cluster "
                                                 r"carries the custom resource 'rpi4'"):
        shufflesearch.search(space, name="nowhere", trials=1, runs_dir=tmp_path / "runs", progress=None)


@pytest.mark.slow
def test_a_latency_budgeted_search_trains_none_over_it(tmp_path):
    path = tiny_space(tmp_path, epochs=1)
    limit = _limit(SearchSpace.from_yaml(path), 0.25)  # a quarter of the space's samples fit, on a quiet machine
    result = shufflesearch.search(path, name="lat", trials=3, scheduler="none", runs_dir=tmp_path / "runs",
                                  progress=None, budget_latency_ms=limit, latency=FAST)
    assert len(result.rows) == 3 and result.counts["complete"] == 3
    for r in result.rows:  # the target's measurement, taken before training, is the row's latency
        assert r["latency_ms"] <= limit and r["latency_iqr_ms"] >= 0 and r["latency_node"] == "local"
    rejected = _rows(result.run_dir / "rejected.jsonl")
    assert rejected, "a budget at the 25th percentile of the space's latencies rejected nothing"
    assert all(r["latency_ms"] > limit and "> budget" in r["reason"] for r in rejected)
    assert not {r["arch_hash"] for r in rejected} & {r["arch_hash"] for r in result.rows}
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["budget"]["latency_ms"] == limit and config["budget"]["latency"]["input_size"] == 64
    assert config["latency_node"] == "local" and config["latency_fingerprint"]["threads"] == 1
    assert f"--budget-latency-ms {limit:g}" in config["command"]
    baseline, = shufflesearch.run_baselines(result.run_dir, ["shufflenet_v1_g1_x0_25"])  # measured on the target too
    assert baseline["latency_node"] == "local" and baseline["latency_iqr_ms"] >= 0 and baseline["latency_ms"] > 0


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """The demo space's latency table at FAST settings, built here (the target is this machine)."""
    from shufflesearch.train._latency_table import LatencyTable

    space = SearchSpace.from_yaml("demo").with_budget(latency_ms=1.0, latency=FAST)
    path = tmp_path_factory.mktemp("table") / "demo64.json"
    LatencyTable.build(space, space.budget.latency, progress=None).save(path)
    return path


def test_with_a_table_latencies_are_predicted_and_the_rejections_say_so(tmp_path, table):
    space = SearchSpace.from_yaml("demo")
    limit = _limit(space, 0.4)
    space = space.with_budget(latency_ms=limit, latency={**FAST, "table": str(table)})
    gate = LatencyGate(space, tmp_path / "rejected.jsonl")
    assert gate.open()["latency_predicted"] is True  # and the table's fingerprint is this machine's
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kept = [a for a in (gate.sample(study.ask()) for _ in range(20)) if a is not None]
    assert all(gate.fields(a)["latency_ms"] <= limit and gate.fields(a)["latency_iqr_ms"] is None for a in kept)
    for r in _rows(tmp_path / "rejected.jsonl"):
        assert r["latency_ms"] > limit and r["reason"].endswith("on local (predicted)") and r["latency_node"] is None


def test_a_table_of_other_settings_is_refused_before_anything_is_written(tmp_path, table):
    with pytest.raises(ShuffleSearchError) as e:
        shufflesearch.search("demo", name="other", trials=1, runs_dir=tmp_path / "runs", progress=None,
                             budget_latency_ms=5.0, latency={**FAST, "threads": 2, "table": str(table)})
    assert str(table) in str(e.value) and "threads" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_supernet_search_draws_its_candidates_through_the_gate(tmp_path):
    """The supernet evaluator's evolution draws through the same gate: no scored path over the budget, and its
    rejected draws recorded with their origin (not trials of the run's study)."""
    data = yaml.safe_load(SearchSpace.from_yaml("demo").to_yaml())
    data.update(evaluator="supernet", supernet={"epochs": 1, "learned_loss": None})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    limit = _limit(SearchSpace.from_yaml(path), 0.4)
    result = shufflesearch.search(path, name="snl", trials=6, runs_dir=tmp_path / "runs", progress=None,
                                  budget_latency_ms=limit, latency=FAST)
    assert len(result.rows) == 6 and all(r["latency_ms"] <= limit for r in result.rows)
    for r in _rows(result.run_dir / "rejected.jsonl"):
        assert r["latency_ms"] > limit and r["number"] is None and r["origin"]
