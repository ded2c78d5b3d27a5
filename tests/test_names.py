"""Names a user can guess (issue 31.4): one name per idea across the CLI, the library and the folders.

Each renamed option still works under its old spelling for one release, with one deprecation line on
stderr (a DeprecationWarning in Python); the settings a scheduler would ignore are refused in one line
naming file, field and value; the default scheduler follows the objectives; threads per job default to
the run's; `export --best`, `baseline --address` and the folder `train` writes to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import timm
import yaml
from helpers import ROOT
from test_errors import ARCH, started_run  # noqa: F401  (a fixture: a run folder after one trial)

import shufflesearch
from shufflesearch import SearchSettings, SearchSpace, ShuffleSearchError
from shufflesearch.cli import build_parser, main
from shufflesearch.driver._search import _resolve
from shufflesearch.evaluation._final import final_evaluation
from shufflesearch.models import unregister_model
from shufflesearch.train._final import train_final

MODEL = "shufflenet_v1_g3_x0_25"


# --- renamed options: the old spelling works, with one notice ------------------------------------
RENAMED = [  # (old command line, new command line, dest, value)
    (["cost", MODEL, "--input-size", "160"], ["cost", MODEL, "--cost-input-size", "160"], "input_size", 160),
    (["models", "--input-size", "160"], ["models", "--cost-input-size", "160"], "input_size", 160),
    (["train-proxy", MODEL, "--threads", "2"], ["train-proxy", MODEL, "--cpus-per-trial", "2"], "threads", 2),
    (["train", MODEL, "--epochs", "1", "--threads", "2"], ["train", MODEL, "--epochs", "1", "--cpus-per-trial", "2"],
     "cpus_per_trial", 2),
    (["final", "run", "--cpus-per-job", "2"], ["final", "run", "--cpus-per-trial", "2"], "cpus_per_trial", 2),
]


@pytest.mark.parametrize("old, new, dest, value", RENAMED, ids=[" ".join(r[0][:1] + r[0][-2:-1]) for r in RENAMED])
def test_an_old_spelling_parses_as_the_new_one_and_warns_once(old, new, dest, value, capsys):
    assert getattr(build_parser().parse_args(new), dest) == value
    assert capsys.readouterr().err == ""
    args = build_parser().parse_args(old)
    assert getattr(args, dest) == value and vars(args) == vars(build_parser().parse_args(new))
    err = capsys.readouterr().err
    assert err == (f"shufflesearch {old[0]}: warning: {old[-2]} is deprecated, use {new[-2]} "
                   "(the old spelling goes in the next release)\n")


@pytest.mark.parametrize("command, old, new", [("cost", "--input-size", "--cost-input-size"),
                                               ("final", "--cpus-per-job", "--cpus-per-trial"),
                                               ("train", "--threads", "--cpus-per-trial"),
                                               ("train-proxy", "--threads", "--cpus-per-trial")])
def test_help_shows_only_the_new_spelling(command, old, new, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    shown = capsys.readouterr().out
    assert new in shown and old not in shown


def test_cost_under_the_old_spelling_prints_what_the_new_one_does(capsys):
    assert main(["cost", MODEL, "--cost-input-size", "160"]) == 0
    new = capsys.readouterr()
    assert main(["cost", MODEL, "--input-size", "160"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and "160x160" in new.out
    assert new.err == "" and old.err.count("\n") == 1 and "--input-size is deprecated" in old.err


def test_the_library_takes_the_old_keywords_with_a_deprecation_warning(started_run):  # noqa: F811
    with pytest.warns(DeprecationWarning, match="threads is deprecated, use cpus_per_trial"), \
            pytest.raises(ShuffleSearchError, match="shufflenet_v9"):
        train_final("shufflenet_v9", epochs=1, threads=2)
    with pytest.warns(DeprecationWarning, match="cpus_per_job is deprecated, use cpus_per_trial"), \
            pytest.raises(ShuffleSearchError, match="shufflenet_v9"):
        final_evaluation(started_run, top=0, zoo=["shufflenet_v9"], cpus_per_job=2, progress=None)
    with pytest.raises(ShuffleSearchError, match="threads=2 and cpus_per_trial=1: threads is the old name"):
        train_final(MODEL, epochs=1, threads=2, cpus_per_trial=1)


# --- threads per job: the run's, unless given ------------------------------------------------------
@pytest.mark.parametrize("given, expected", [(None, 2), (3, 3)])
def test_final_evaluation_threads_default_to_the_runs_cpus_per_trial(started_run, monkeypatch, given,  # noqa: F811
                                                                        expected):
    config = json.loads((started_run / "config.json").read_text())
    (started_run / "config.json").write_text(json.dumps({**config, "cpus_per_trial": 2}))
    calls = []
    # the module that hands the retrainings to Ray (`driver._jobs`, where the search's re-ranking uses it too)
    monkeypatch.setattr("shufflesearch.driver._jobs.run_jobs", lambda *a, **kw: calls.append(kw))
    final_evaluation(started_run, top=0, zoo=[MODEL], epochs=1, cpus_per_trial=given, progress=None)
    assert calls[0]["cpus_per_job"] == expected and calls[0]["shared"]["train_cfg"].threads == expected
    assert build_parser().parse_args(["final", "run"]).cpus_per_trial is None  # the CLI leaves it to the run


def test_export_best_records_the_threads_the_trials_ran_with(started_run, capsys):  # noqa: F811
    config = json.loads((started_run / "config.json").read_text())
    (started_run / "config.json").write_text(json.dumps({**config, "cpus_per_trial": 2}))
    model = timm.create_model("shufflesearch_net", arch=ARCH, num_classes=10, in_chans=1)
    (started_run / "weights").mkdir()
    safetensors.torch.save_file(model.state_dict(), started_run / "weights" / "trial_0.safetensors")
    try:
        assert main(["export", "demo", "--best", "--runs-dir", str(started_run.parent)]) == 0
        card = json.loads((started_run / "models" / "ss_demo_best" / "config.json").read_text())
        assert card["shufflesearch"]["proxy"]["threads"] == 2  # what `train ss_demo_best` starts from
        assert card["shufflesearch"]["proxy"]["epochs"] == config["proxy"]["epochs"]
    finally:
        unregister_model("ss_demo_best")
    assert "ss_demo_best" in capsys.readouterr().out


@pytest.mark.parametrize("flags, which", [([], "best"), (["--best"], "best"), (["--pareto"], "pareto"),
                                          (["--trial", "1", "2"], [1, 2])])
def test_export_selects_one_of_best_pareto_or_trials_best_by_default(flags, which):
    args = build_parser().parse_args(["export", "run", *flags])
    assert (args.trial or args.which) == which


def test_export_best_and_pareto_together_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["export", "run", "--best", "--pareto"])
    assert exit_.value.code == 2 and "not allowed with argument --best" in capsys.readouterr().err


# --- baseline --address --------------------------------------------------------------------------
def test_baseline_passes_address_to_run_baselines(started_run, monkeypatch, capsys):  # noqa: F811
    calls = []
    monkeypatch.setattr("shufflesearch.evaluation._baselines.run_baselines",
                        lambda *a, **kw: calls.append(kw) or [])
    assert main(["baseline", "demo", "--address", "10.0.0.1:6379", "--runs-dir", str(started_run.parent)]) == 0
    assert main(["baseline", "demo", "--runs-dir", str(started_run.parent)]) == 0
    assert [c["address"] for c in calls] == ["10.0.0.1:6379", None]


# --- the scheduler: its default follows the objectives; settings it would ignore are refused -------
def space_file(tmp_path: Path, **search) -> Path:
    """demo.yaml with `search` keys set (None: removed)."""
    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    for key, value in search.items():
        if value is None:
            data["search"].pop(key, None)
        else:
            data["search"][key] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_default_scheduler_is_moasha_for_two_objectives_and_asha_for_one(tmp_path):
    assert SearchSettings().scheduler == "moasha" and SearchSettings(objectives=["acc"]).scheduler == "asha"
    assert SearchSettings(objectives=["acc"], scheduler="none").scheduler == "none"
    two = SearchSpace.from_yaml(space_file(tmp_path, scheduler=None))
    assert two.search.scheduler == "moasha"
    assert _resolve(two, None, objectives="acc").scheduler == "asha"  # follows the objectives given
    assert _resolve(two, None, objectives="acc", scheduler="none").scheduler == "none"
    assert _resolve(two, {**vars(two.search), "scheduler": "asha"}).scheduler == "asha"  # a resumed run's own
    named = SearchSpace.from_yaml(space_file(tmp_path, scheduler="moasha"))
    assert _resolve(named, None, objectives="acc").scheduler == "moasha"  # the file's choice stays
    one = SearchSpace.from_yaml(space_file(tmp_path, scheduler=None, objectives=["acc"]))
    assert one.search.scheduler == "asha"


def test_moasha_settings_under_another_scheduler_from_python(tmp_path):
    with pytest.raises(ShuffleSearchError, match="search.reduction_factor = 4: is ignored by scheduler none"):
        SearchSettings(scheduler="none", reduction_factor=4)
    path = space_file(tmp_path, grace_period=2)
    with pytest.raises(ShuffleSearchError) as err:
        shufflesearch.search(path, scheduler="asha", runs_dir=tmp_path / "runs", progress=None)
    assert str(err.value).startswith(f"{path}: search.grace_period = 2: is ignored by scheduler asha; only moasha")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("search, flags, message", [
    ({"grace_period": 2}, ["--scheduler", "asha"],
     ("--scheduler asha: {path}: search.grace_period = 2: is ignored by scheduler asha; only moasha reads it "
      "(set search.scheduler: moasha, or remove grace_period)")),
    ({"reduction_factor": 3}, ["--scheduler", "none"],
     "--scheduler none: {path}: search.reduction_factor = 3: is ignored by scheduler none"),
    ({"grace_period": 2, "scheduler": None}, ["--objectives", "acc"],
     "{path}: search.grace_period = 2: is ignored by scheduler asha"),
], ids=["--scheduler asha", "--scheduler none", "--objectives acc"])
def test_a_flag_that_makes_the_file_s_moasha_settings_ignored_is_refused(tmp_path, capsys, search, flags, message):
    path = space_file(tmp_path, **search)
    assert main(["search", str(path), *flags, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shufflesearch search: error: " + message.format(path=path)) and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


# --- the folder `train` writes a zoo model to -------------------------------------------------------
def test_train_puts_a_zoo_model_in_runs_train_models_and_points_at_the_old_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "runs" / "final" / "models" / "ss_old_e1"
    old.mkdir(parents=True)
    (old / "config.json").write_text("{}")
    try:
        assert main(["train", MODEL, "--epochs", "1", "--cpus-per-trial", "1"]) == 0
    finally:
        unregister_model(f"ss_{MODEL}_e1")
    assert (tmp_path / "runs" / "train" / "models" / f"ss_{MODEL}_e1" / "model.safetensors").is_file()
    err = capsys.readouterr().err
    assert err == ("shufflesearch train: note: runs/final/models/ is where `train` put models before 0.2 (1 there, "
                   "still loaded); new ones go to runs/train/models/: move the old ones there too\n")
