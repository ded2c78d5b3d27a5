"""A latency target on a Ray cluster (issue 32.2): a node that carries a custom resource (`ray start
--resources '{"rpi4": 1}'`) is the deployment target; every latency measurement of a search, trained
candidates' and rejected ones' alike, and of `measure_on_target`, runs on that node and nowhere else
(checked by node id), while the trials train on any node. The cluster is tests/cluster.py's: a head that
runs no work and two worker nodes of one CPU that share no disk with the driver; the second carries rpi4.
"""

from __future__ import annotations

import json

import pytest
from cluster import cluster_for_module
from helpers import tiny_space
from test_latency_budget import FAST, _limit, _rows

import shufflesearch
from shufflesearch.driver._latency import measure_on_target
from shufflesearch.space import SearchSpace
from shufflesearch.space._configs import LatencySettings

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from cluster_for_module(tmp_path_factory, workers=2, resources=[{}, {"rpi4": 1}])


def test_measure_on_target_runs_on_the_node_with_the_resource(cluster):
    arch = SearchSpace.from_yaml("demo").random_sample(1)[0]
    m, node = measure_on_target(arch, LatencySettings(**FAST, target="rpi4"), 64, address=cluster.address)
    assert node == cluster.node_ids[1] and m.median_ms > 0 and m.runs == FAST["runs"]


def test_every_latency_of_a_search_is_measured_on_the_target_node(cluster, tmp_path):
    path = tiny_space(tmp_path, epochs=1)
    limit = _limit(SearchSpace.from_yaml(path), 0.5)  # measured here: the target's own may differ a little
    result = shufflesearch.search(path, name="rpi", trials=3, scheduler="none", runs_dir=tmp_path / "runs",
                                  address=cluster.address, progress=None, budget_latency_ms=limit,
                                  latency={**FAST, "target": "rpi4"})
    target = cluster.node_ids[1]
    assert result.counts["complete"] == 3
    assert all(r["latency_node"] == target and r["latency_ms"] <= limit for r in result.rows)
    rejected = _rows(result.run_dir / "rejected.jsonl")
    assert all(r["latency_node"] == target and r["latency_ms"] > limit for r in rejected)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["latency_node"] == target and config["budget"]["latency"]["target"] == "rpi4"
