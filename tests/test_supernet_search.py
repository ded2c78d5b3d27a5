"""A search with the supernet evaluator on digits, end to end: the CLI's --evaluator trains a supernet for
one epoch, Optuna proposes, Ray scores each candidate as an inherited path, the records, front, report and
exported timm models are a proxy search's, and `final` retrains the best stand-alone."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import yaml
from helpers import evaluate, run_cli, tiny_space

import shufflesearch
from shufflesearch.evaluation import final_evaluation
from shufflesearch.records import read_rows
from shufflesearch.space import SearchSpace
from shufflesearch.supernet_score import bn_images, load_supernet, score_path

pytestmark = pytest.mark.slow


def _space(tmp_path, **supernet):
    path = tiny_space(tmp_path, epochs=1, sampler="random")
    data = yaml.safe_load(path.read_text())
    data["search"]["trials"] = 12
    data["supernet"] = {"epochs": 1, "bn_batches": 4, **supernet}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sn")
    space = _space(tmp)
    out = run_cli("search", str(space), "--name", "sn", "--evaluator", "supernet", "--runs-dir", str(tmp / "runs"),
                  cwd=tmp)
    assert out.returncode == 0, out.stderr
    return tmp / "runs" / "sn", out.stdout, space


def test_the_cli_searches_with_the_supernet(searched):
    run_dir, stdout, _ = searched
    config = json.loads((run_dir / "config.json").read_text())
    assert config["evaluator"] == "supernet" and config["supernet"]["epochs"] == 1
    assert config["command"].endswith("--evaluator supernet")
    assert "supernet step" in stdout and "supernet trained" in stdout
    state = json.loads((run_dir / "supernet" / "state.json").read_text())
    assert state["done"] and state["training"]["seed"] == config["seed"]
    rows = read_rows(run_dir / "trials.jsonl")
    assert len(rows) == 12 and all(r["status"] == "complete" and r["max_epochs"] == r["epochs"] == 1 for r in rows)
    assert len({r["arch_hash"] for r in rows}) > 1 and len({r["search_acc"] for r in rows}) > 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["pareto"] and summary["best"]["number"] in [r["number"] for r in rows]
    page = (run_dir / "report" / "report.html").read_text()
    assert "weight-sharing supernet" in page


def test_the_exported_model_is_the_scored_path(searched):
    run_dir, _, _ = searched
    rows = read_rows(run_dir / "trials.jsonl")
    best = json.loads((run_dir / "summary.json").read_text())["best"]
    shufflesearch.register_models(run_dir / "models")
    model = timm.create_model("ss_sn_best", pretrained=True)
    assert evaluate(model, run_dir, "search") == best["search_acc"]
    # and the score is the supernet's path, re-estimated and evaluated again here
    space = SearchSpace.from_yaml(run_dir / "space.yaml")
    data = space.proxy.data.load("search")
    net = load_supernet(space, run_dir, data.num_classes, data.in_chans)
    row = next(r for r in rows if r["number"] == best["number"])
    arch = shufflesearch.Arch.from_dict(row["arch"])
    torch.set_num_threads(1)
    _, _, acc = score_path(net, arch, data, bn_images(data, 4, space.supernet.batch_size, 0), space.supernet.batch_size)
    assert acc == best["search_acc"]


def test_final_retrains_the_supernet_search_best_stand_alone(searched):
    run_dir, _, _ = searched
    result = final_evaluation(run_dir, top=1, seeds=1, epochs=1, zoo=[], progress=None)
    assert len(result.rows) == 1 and result.rows[0]["status"] == "complete"
    (found,) = result.summary
    shufflesearch.register_models(run_dir / "models")
    model = timm.create_model(f"ss_sn_t{found['number']}_final", pretrained=True)
    assert evaluate(model, run_dir, "test") == found["test_accs"][0]


def test_a_resumed_run_keeps_its_evaluator(searched, tmp_path):
    run_dir, _, space = searched
    out = run_cli("search", str(space), "--name", "sn", "--evaluator", "proxy", "--runs-dir", str(run_dir.parent))
    assert out.returncode == 2 and out.stderr.strip().endswith(
        "--evaluator proxy: this run was started with evaluator supernet; choose a new --name")
    bad = run_cli("search", str(space), "--name", "other", "--evaluator", "supernet", "--workers", "0",
                  "--runs-dir", str(tmp_path))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--workers: supernet.workers = 0: must be an integer >= 1" in bad.stderr
    assert not (tmp_path / "other").exists()
