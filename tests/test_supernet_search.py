"""A search with the supernet evaluator on digits, end to end: the CLI's --evaluator trains a supernet for
one epoch, Optuna proposes, a pool of Ray actors scores the candidates in chunks as inherited paths, the
records, front, report and exported timm models are a proxy search's, a resumed search scores only the
missing candidates, and `final` retrains the best stand-alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from dataclasses import fields
from pathlib import Path

import optuna
import pytest
import timm
import torch
import yaml
from helpers import evaluate, run_cli, tiny_space
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from torch.optim.swa_utils import update_bn

import shufflesearch
from shufflesearch.data import load_data
from shufflesearch.driver._supernet import CHUNK, _Scorer
from shufflesearch.evaluation._final import final_evaluation
from shufflesearch.runs._records import read_rows
from shufflesearch.space._configs import SupernetConfig, TrainConfig
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._score import bn_images, load_supernet, read_supernet

pytestmark = pytest.mark.slow


def _space(tmp_path, **supernet):
    path = tiny_space(tmp_path, epochs=1, sampler="random")
    data = yaml.safe_load(path.read_text())
    data["search"]["trials"] = 2 * CHUNK + 3  # two actors: more than one chunk each, the last one short
    data["supernet"] = {"epochs": 1, "bn_batches": 4, **supernet}
    if "learned_loss" in {f.name for f in fields(SupernetConfig)}:  # a 1-epoch supernet has not learned yet
        data["supernet"]["learned_loss"] = None
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
    assert " --evaluator supernet" in config["command"]
    assert "supernet step" in stdout and "supernet trained" in stdout
    assert f"{config['trials']} candidate(s) to score on the supernet" in stdout
    state = json.loads((run_dir / "supernet" / "state.json").read_text())
    assert state["done"] and state["training"]["seed"] == config["seed"]
    rows = read_rows(run_dir / "trials.jsonl")
    assert len(rows) == config["trials"] and sorted(r["number"] for r in rows) == list(range(config["trials"]))
    assert all(r["status"] == "complete" and r["max_epochs"] == r["epochs"] == 1 for r in rows)
    assert all(r["latency_ms"] is None for r in rows)  # objectives acc, mflops: no latency measured
    assert len({r["arch_hash"] for r in rows}) > 1 and len({r["search_acc"] for r in rows}) > 1
    lines = [line for line in stdout.splitlines() if line.startswith("[")]  # one per candidate
    assert len(lines) == len(rows) and lines[-1].startswith(f"[{len(rows):>3}/{len(rows)}]")
    assert f"best {max(r['search_acc'] for r in rows):.4f} " in lines[-1]  # the best so far, kept line by line
    assert not (run_dir / "weights").exists()  # no weight files: export computes them
    study = optuna.load_study(study_name="sn", storage=JournalStorage(JournalFileBackend(str(run_dir / "optuna.journal"))))
    scored = [t for t in study.trials if "repeat_of" not in t.user_attrs]
    assert [t.state for t in scored] == [TrialState.COMPLETE] * len(rows)
    assert {t.number: t.values[0] for t in scored} == {r["number"]: r["search_acc"] for r in rows}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["pareto"] and summary["best"]["number"] in [r["number"] for r in rows]
    page = (run_dir / "report" / "report.html").read_text()
    assert "weight-sharing supernet" in page


def test_the_exported_model_is_the_scored_path(searched, one_thread):
    run_dir, _, _ = searched
    rows = read_rows(run_dir / "trials.jsonl")
    best = json.loads((run_dir / "summary.json").read_text())["best"]
    shufflesearch.register_models(run_dir / "models")
    model = timm.create_model("ss_sn_best", pretrained=True)
    assert evaluate(model, run_dir, "search") == best["search_acc"]
    # and the score is the supernet's path, extracted, re-estimated and evaluated again here the plain way
    space = SearchSpace.from_yaml(run_dir / "space.yaml")
    data = load_data(space.proxy.data, "search")
    net = load_supernet(space, run_dir, data)
    row = next(r for r in rows if r["number"] == best["number"])
    path = net.extract(shufflesearch.Arch.from_dict(row["arch"])).to(memory_format=torch.channels_last)
    images = bn_images(data, 4, space.supernet.batch_size, 0).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        update_bn(images.split(space.supernet.batch_size), path)
    assert evaluate(path, run_dir, "search") == best["search_acc"]
    torch.testing.assert_close(path.state_dict(), model.state_dict(), rtol=0, atol=0)


def test_a_scorer_measures_latency_when_an_objective_needs_it(searched, one_thread):
    run_dir, _, _ = searched
    space = SearchSpace.from_yaml(run_dir / "space.yaml")
    row = read_rows(run_dir / "trials.jsonl")[0]
    data = load_data(space.proxy.data, "search")
    scorer = _Scorer(space, space.supernet, 0, data, TrainConfig(), 32)
    (result,) = scorer.score([row["arch"]], [read_supernet(space, run_dir, data)])
    assert result["status"] == "complete" and result["search_acc"] == row["search_acc"]
    assert result["latency_ms"] > 0
    (broken,) = scorer.score([{**row["arch"], "stages": []}], [])
    assert broken["status"] == "failed" and broken["error"]


def _kill_a_scoring_actor() -> int:
    """kill -9 the first process found scoring a chunk (Ray titles an actor's process by its call); its pid."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            try:
                scoring = proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_Scorer.score")
            except OSError:  # gone meanwhile
                continue
            if scoring:
                os.kill(int(proc.name), signal.SIGKILL)
                return int(proc.name)
        time.sleep(0.01)
    raise AssertionError("no scoring actor found to kill")


def test_a_scoring_actor_killed_mid_chunk_is_replaced_and_ray_stays_off_the_console(searched, tmp_path, capfd):
    run_dir, _, space = searched
    shutil.copytree(run_dir, tmp_path / "sn")
    before = read_rows(tmp_path / "sn" / "trials.jsonl")
    killed = []
    killer = threading.Thread(target=lambda: killed.append(_kill_a_scoring_actor()), daemon=True)
    killer.start()
    result = shufflesearch.search(space, name="sn", trials=len(before) + 6 * CHUNK, runs_dir=tmp_path)
    killer.join(timeout=1)
    assert killed
    new = result.rows[len(before):]
    assert len(new) == 6 * CHUNK and all(r["status"] == "complete" for r in new)
    retried = [r for r in new if r["attempts"] > 1]  # the killed actor's chunks in flight (one or two)
    assert 1 <= len(retried) <= 2 * CHUNK
    assert all(r["attempts"] == 2 and r["faults"] == ["worker died"] for r in retried)
    assert all(r["attempts"] == 1 and r["faults"] == [] for r in new if r not in retried)
    study = optuna.load_study(study_name="sn", storage=JournalStorage(JournalFileBackend(
        str(result.run_dir / "optuna.journal"))))
    scored = [t for t in study.trials if "repeat_of" not in t.user_attrs and t.state != TrialState.PRUNED]
    assert [t.state for t in scored] == [TrialState.COMPLETE] * len(result.rows)  # each told once
    out, err = capfd.readouterr()
    assert err == ""  # no Ray message on the console, e.g. its warning on restarts (ray#53727)
    assert f"retry 1/2 (worker died); Ray's messages: {result.run_dir / 'ray.log'}" in out
    assert "A worker died" in (result.run_dir / "ray.log").read_text()


def test_a_resumed_supernet_search_scores_only_the_missing_candidates(searched, tmp_path):
    run_dir, _, space = searched
    copy = tmp_path / "sn"
    shutil.copytree(run_dir, copy)
    before = read_rows(copy / "trials.jsonl")
    with open(copy / "trials.jsonl", "a") as f:
        f.write('{"number": 99, "arch"')  # a row whose append a kill -9 cut short: that candidate is asked again
    lines = []
    result = shufflesearch.search(space, name="sn", trials=len(before) + 5, runs_dir=tmp_path, progress=lines.append)
    assert not any("supernet step" in line for line in lines)  # the trained supernet is reused
    assert len(result.rows) == len(before) + 5 and result.rows[:len(before)] == before
    assert sorted(r["number"] for r in result.rows) == sorted({r["number"] for r in result.rows})
    assert sum(line.startswith("[") for line in lines) == 5
    assert read_rows(copy / "trials.jsonl") == result.rows
    assert len((copy / "trials.csv").read_text().splitlines()) == 1 + len(result.rows)


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    """A search by evolution (generations of 6, children of the best 3): 19 candidates, 4 generations."""
    tmp = tmp_path_factory.mktemp("ev")
    path = _space(tmp)
    data = yaml.safe_load(path.read_text())
    data["search"].update(sampler="evolution", evolution_population=6, evolution_parents=3)
    path.write_text(yaml.safe_dump(data))
    lines = []
    result = shufflesearch.search(path, name="ev", evaluator="supernet", runs_dir=tmp / "runs", progress=lines.append)
    return result, lines, path


def _study(run_dir):
    return optuna.load_study(study_name=run_dir.name, storage=JournalStorage(JournalFileBackend(
        str(run_dir / "optuna.journal"))))


def test_an_evolution_search_scores_each_genome_once_as_one_study_trial(evolved):
    result, lines, path = evolved
    rows, space = result.rows, SearchSpace.from_yaml(path)
    assert len(rows) == space.search.trials and len({r["arch_hash"] for r in rows}) == len(rows)
    assert all(r["status"] == "complete" and r["mflops"] <= space.budget.mflops for r in rows)
    trials = _study(result.run_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * len(rows)  # one trial a candidate, no repeat
    for t, r in zip(trials, sorted(rows, key=lambda r: r["number"])):
        assert t.number == r["number"] and t.values[0] == r["search_acc"]
        assert space.sample(optuna.trial.FixedTrial(t.params)).hash == r["arch_hash"]  # a genome of the space
    origins = [t.user_attrs["origin"].split(" ")[0] for t in trials]
    assert origins[:6] == ["random"] * 6 and {"mutation", "crossover"} <= set(origins[6:])
    assert any("evolution: generations of 6, children of the best 3, mutation probability 0.1" in line for line in lines)


def test_an_interrupted_evolution_search_resumes_without_repeats_and_the_seed_gives_its_candidates(evolved, tmp_path):
    result, _, path = evolved
    shutil.copytree(result.run_dir / "supernet", tmp_path / "again" / "supernet")  # the same supernet, reused
    shown = []

    def stop_at_the_eighth(line):
        shown.append(line)
        if line.startswith("[") and sum(x.startswith("[") for x in shown) == 8:
            raise KeyboardInterrupt  # as Ctrl-C while the driver records a chunk

    first = shufflesearch.search(path, name="again", evaluator="supernet", runs_dir=tmp_path, progress=stop_at_the_eighth)
    assert first.interrupted and not any("supernet step" in line for line in shown)
    ordered = sorted(result.rows, key=lambda r: r["number"])
    assert [r["arch_hash"] for r in first.rows] == [r["arch_hash"] for r in ordered[:len(first.rows)]]  # same seed
    resumed = shufflesearch.search(path, name="again", runs_dir=tmp_path, resume=True, progress=None)
    assert len(resumed.rows) == len(result.rows) and len({r["arch_hash"] for r in resumed.rows}) == len(resumed.rows)
    trials = _study(resumed.run_dir).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == len(resumed.rows)
    assert all(t.state == TrialState.FAIL for t in trials if t.number not in {r["number"] for r in resumed.rows})


def test_a_space_with_fewer_genomes_than_candidates_ends_with_a_line(tmp_path):
    path = _space(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["budget"]["min_fraction"] = 1.0  # one width a structure
    data["shared"] = {"unit": "v2", "kernel_size": {"choices": [3, 5]}, "repeats": 1}  # two structures
    data["stages"] = [{k: v for k, v in st.items() if k not in ("repeats", "grouped_first_conv")}
                      for st in data["stages"]]
    data["search"].update(sampler="evolution", trials=5)
    path.write_text(yaml.safe_dump(data))
    lines = []
    result = shufflesearch.search(path, name="two", evaluator="supernet", runs_dir=tmp_path / "runs",
                                  progress=lines.append)
    assert len(result.rows) == 2 and len(_study(result.run_dir).trials) == 2
    assert (f"{result.run_dir}: the space has no more distinct architectures within the budget (1000 random draws "
            "in a row found none new): 2 scored of the 5 asked for") in lines


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


def test_export_after_the_supernet_was_deleted_says_how_to_train_it_again_and_that_works(searched, tmp_path):
    run_dir, _, _ = searched
    copy = tmp_path / "runs" / "sn"
    shutil.copytree(run_dir, copy)
    exported = (copy / "models" / "ss_sn_best" / "model.safetensors").read_bytes()
    shutil.rmtree(copy / "supernet")  # a clean-up
    out = run_cli("export", "sn", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"{copy / 'supernet'}: no trained supernet there (supernet.safetensors missing, deleted?)" in out.stderr
    command = out.stderr.strip().rsplit("train it again with the run's settings: ", 1)[1].split()
    assert command[:2] == ["shufflesearch", "search"] and command[-1] == "--resume"
    again = run_cli(*command[1:], cwd=tmp_path)  # no trial left to run: the supernet alone trains again
    assert again.returncode == 0, again.stderr
    assert "supernet trained" in again.stdout and read_rows(copy / "trials.jsonl") == read_rows(run_dir / "trials.jsonl")
    out = run_cli("export", "sn", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (copy / "models" / "ss_sn_best" / "model.safetensors").read_bytes() == exported  # the same supernet
