"""Errors a user can cause with a run or a model folder: one line naming the file, field and value, exit
code 2, and nothing written. Each case runs the CLI in this process on a folder made by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

import shufflesearch
from shufflesearch import ShuffleSearchError
from shufflesearch.cli import main
from shufflesearch.genome._zoo import ZOO

ARCH = ZOO["shufflenet_v1_g3_x0_25"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fails(args: list[str], message: str, capsys, folder: Path) -> None:
    """`shufflesearch ARGS` exits 2 with one stderr line matching `message`, and `folder` is unchanged."""
    before = snapshot(folder)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert snapshot(folder) == before


@pytest.fixture
def started_run(tmp_path) -> Path:
    """A run folder as a search leaves it after one trial: space.yaml, config.json, trials.jsonl, journal."""
    space = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    (run / "config.json").write_text(json.dumps({"sampler": "tpe", **space["search"], "name": "demo", "seed": 0,
                                                 "budget": {**space["budget"], "max_params": None},
                                                 "proxy": space["proxy"],
                                                 "data": {"spec": "digits", "num_classes": 10, "in_chans": 1,
                                                          "image_size": 32, "mean": [0.0], "std": [1.0],
                                                          "label_names": list("0123456789")}}))
    row = {"number": 0, "arch": ARCH.to_dict(), "arch_hash": ARCH.hash, "status": "complete", "epochs": 6,
           "max_epochs": 6, "search_acc": 0.5, "mflops": 13.0, "params": 1000}
    (run / "trials.jsonl").write_text(json.dumps(row) + "\n")
    (run / "optuna.journal").write_text("")
    return run


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "space.yaml").unlink(), "space.yaml: missing, so the run in"),
    (lambda run: (run / "space.yaml").write_text("budget: [unclosed"), "space.yaml: not valid YAML"),
    (lambda run: (run / "config.json").unlink(), "config.json: missing, so the run in"),
    (lambda run: (run / "config.json").write_text('{"trials": 16,'), "config.json: cannot read the run's config"),
    (lambda run: (run / "config.json").write_text('{"sampler": "tpe"}'), "config.json: trials: missing"),
])
def test_resuming_a_run_whose_space_or_config_is_missing_or_corrupt(started_run, damage, message, capsys):
    damage(started_run)
    fails(["search", str(started_run / "space.yaml") if (started_run / "space.yaml").is_file()
           else str(ROOT / "search_spaces" / "demo.yaml"), "--name", "demo",
           "--runs-dir", str(started_run.parent), "--resume"], message, capsys, started_run.parent)


def test_resuming_with_another_space_is_refused(started_run, capsys):
    fails(["search", str(ROOT / "search_spaces" / "mixed.yaml"), "--name", "demo", "--runs-dir",
           str(started_run.parent)], "this run was started with another search space", capsys, started_run.parent)


def test_exporting_a_trial_that_does_not_exist(started_run, capsys):
    fails(["export", str(started_run), "--trial", "7"], "trial 7: not recorded (recorded: [0])", capsys,
          started_run.parent)


def _model_folder(root: Path, name: str) -> Path:
    """A model folder as export writes it (config.json in timm's format), without weights."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architecture": "shufflesearch_net", "num_classes": 10,
                                                    "model_args": {"arch": ARCH.to_dict()}}))
    ARCH.save(folder / "arch.yaml")
    return folder


@pytest.mark.parametrize("name, message", [
    ("shufflenet_v2_x1_0", "model name 'shufflenet_v2_x1_0' is taken by a timm / zoo model"),
    ("Bad-Name", "folder name 'Bad-Name' is not a model name"),
])
def test_a_model_name_that_is_taken_or_malformed(tmp_path, name, message):
    _model_folder(tmp_path / "models", name)
    with pytest.raises(ShuffleSearchError, match=message) as err:
        shufflesearch.register_models(tmp_path / "models")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, message", [
    ('{"architecture": "shufflesearch_net",', "unreadable model config"),
    ('["a list"]', "a JSON list, not a shufflesearch model config"),
    ('{"architecture": "resnet50"}', "architecture = 'resnet50': not a shufflesearch model"),
])
def test_a_broken_config_json_in_a_model_folder(tmp_path, text, message):
    folder = _model_folder(tmp_path / "models", "ss_x_best")
    (folder / "config.json").write_text(text)
    with pytest.raises(ShuffleSearchError, match=message) as err:
        shufflesearch.register_models(tmp_path / "models")
    assert "\n" not in str(err.value) and str(folder / "config.json") in str(err.value)


def test_a_final_training_that_diverges_writes_nothing(tmp_path, capsys):
    fails(["train", "shufflenet_v1_g3_x0_25", "--epochs", "1", "--lr", "1e9", "--out", str(tmp_path / "out")],
          "shufflenet_v1_g3_x0_25: training diverged after 0 of 1 epochs (lr 1000000000.0); try a lower --lr",
          capsys, tmp_path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_every_command_that_reads_a_run_takes_runs_dir(started_run, capsys, tmp_path):
    runs = str(started_run.parent)
    assert main(["report", "demo", "--runs-dir", runs]) == 0
    assert (started_run / "report" / "report.html").is_file()
    for args, message in ((["export", "demo", "--trial", "7"], "trial 7: not recorded"),
                          (["baseline", "demo", "--models", "shufflenet_v9"], "shufflenet_v9"),
                          (["final", "demo", "--zoo", "shufflenet_v9"], "shufflenet_v9")):
        fails(args + ["--runs-dir", runs], message, capsys, started_run.parent)  # found the run, then failed
        fails(args, "run 'demo': no such run directory (looked for demo and runs/demo)", capsys, started_run.parent)
    _model_folder(started_run / "models", "ss_demo_best")
    assert main(["models", "--runs-dir", runs]) == 0
    assert "ss_demo_best" in capsys.readouterr().out
