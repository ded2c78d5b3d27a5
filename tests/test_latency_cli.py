"""What the user sees of latency (issue 32.4): `shufflesearch latency` and `latency-table`, the search's
latency flags, the budget in `space`, and the model card's latency line.

Measurements are real (torch and ONNX Runtime on this CPU) at small input sizes and few runs, so each
takes milliseconds; no test asserts a time, only that one was measured and reported.
"""

from __future__ import annotations

import json

import pytest
import yaml

from shufflesearch.cli import main
from shufflesearch.genome._zoo import ZOO
from shufflesearch.models._folder import model_card

MODEL = "shufflenet_v1_g3_x0_5"
FAST = ["--input-size", "64", "--runs", "3", "--warmup", "1"]


def tiny_latency_space(tmp_path, **budget):
    """One small v2 stage at 32 px: a latency table of it measures a few parts in seconds."""
    data = {"name": "tinylat", "description": "one v2 stage, for latency tables in tests",
            "budget": {"mflops": 5, "input_size": 32, "num_classes": 10,
                       "latency": {"input_size": 32, "runs": 3, "warmup": 1}, **budget},
            "width_multiplier": [0.2, 0.5], "stem": {"channels": 8, "stride": 2, "max_pool": False},
            "head": {"conv_channels": None},
            "stages": [{"unit": "v2", "base_channels": 48, "repeats": 1, "kernel_size": 3}]}
    path = tmp_path / "tinylat.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def one_line_error(capsys, argv, message):
    """`argv` exits 2 with one line on stderr naming `message`, and prints nothing on stdout."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"shufflesearch {argv[0]}: error: ") and message in err, err
    assert err.count("\n") == 1 and out == ""


# --- shufflesearch latency -----------------------------------------------------------------------------
def test_latency_of_a_zoo_model_prints_the_spread_node_and_fingerprint(tmp_path, capsys):
    out_json = tmp_path / "sub" / "m.json"
    assert main(["latency", MODEL, *FAST, "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{MODEL}: median ") and "IQR" in lines[0] and "p90" in lines[0]
    assert "over 3 runs (batch 1, 64x64, 1 thread, torch on cpu, CPU time of the thread)" in lines[0]
    assert lines[1].startswith("node: local (this machine, load average ")
    assert lines[2].startswith("fingerprint: ") and "cpu_model=" in lines[2] and "torch=" in lines[2]
    m = json.loads(out_json.read_text())
    assert m["model"] == MODEL and m["node"] == "local" and m["median_ms"] > 0 and m["runs"] == 3
    assert f"median {m['median_ms']:.3f} ms" in lines[0] and m["fingerprint"]["threads"] == 1


def test_latency_with_onnxruntime_and_of_a_runs_trial(tmp_path, capsys):
    assert main(["latency", "shufflenet_v2_x0_5", *FAST, "--backend", "onnxruntime", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 threads, onnxruntime on cpu" in out and "onnxruntime=" in out
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    arch = ZOO[MODEL]
    (run / "trials.jsonl").write_text(json.dumps({"number": 4, "arch": arch.to_dict(), "arch_hash": arch.hash,
                                                  "status": "complete", "search_acc": 0.5}) + "\n")
    assert main(["latency", "r", "--trial", "4", "--runs-dir", str(tmp_path / "runs"), *FAST]) == 0
    assert capsys.readouterr().out.startswith("trial 4 of run r: median ")


@pytest.mark.parametrize("argv, message", [
    ([MODEL, "--batch", "0"], "budget.latency.batch = 0: must be an integer >= 1"),
    ([MODEL, "--runs", "0"], "budget.latency.runs = 0: must be an integer >= 1"),
    ([MODEL, "--input-size", "4"], "budget.latency.input_size = 4: must be an integer >= 8"),
    ([MODEL, "--target", "my node"], "budget.latency.target = 'my node': must be local, cuda or a Ray custom"),
    (["shufflenet_v9"], "model 'shufflenet_v9': unknown shufflesearch model"),
    (["missing.yaml"], "missing.yaml: cannot read genome file"),
    (["nosuchrun", "--trial", "1"], "run 'nosuchrun': no such run directory"),
])
def test_latency_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["latency", *argv, "--json", "m.json"], message)
    assert list(tmp_path.iterdir()) == []


# --- shufflesearch latency-table -------------------------------------------------------------------------
def test_latency_table_of_a_tiny_space_is_written_and_predicts(tmp_path, capsys):
    from shufflesearch.space import SearchSpace
    from shufflesearch.train._latency_table import LatencyTable

    space = tiny_latency_space(tmp_path)
    out = tmp_path / "tables" / "t.json"
    assert main(["latency-table", str(space), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"latency table of tinylat on local: {out}" in printed
    table = LatencyTable.load(out)
    arch = SearchSpace.from_yaml(space).random_sample(1, seed=0)[0]
    assert table.predict(arch) > 0


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "budget.latency.batch = 0: must be an integer >= 1"),
    (["--threads", "0"], "budget.latency.threads = 0: must be an integer >= 1"),
    (["--input-size", "2"], "budget.latency.input_size = 2: must be an integer >= 8"),
    (["--target", "my node"], "budget.latency.target = 'my node'"),
])
def test_latency_table_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    space = tiny_latency_space(tmp_path)
    one_line_error(capsys, ["latency-table", str(space), "--out", str(tmp_path / "t.json"), *argv], message)
    assert not (tmp_path / "t.json").exists()


def test_latency_table_of_a_missing_space(tmp_path, capsys):
    one_line_error(capsys, ["latency-table", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "t.json")],
                   "nope.yaml: cannot read search space file")
    assert not (tmp_path / "t.json").exists()


# --- search's flags and the budget's words -----------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--budget-latency-ms", "-1"], "budget.latency_ms = -1.0: must be > 0"),
    (["--budget-latency-ms", "5", "--latency-target", "my node"], "budget.latency.target = 'my node'"),
    (["--budget-latency-ms", "5", "--latency-table", "missing.json"], "missing.json"),
])
def test_search_latency_flags_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["search", str(tiny_latency_space(tmp_path)), "--runs-dir", "runs", *argv], message)
    assert not (tmp_path / "runs").exists()


def test_space_and_spaces_state_the_budget_in_words(tmp_path, capsys):
    assert main(["space", str(tiny_latency_space(tmp_path, latency_ms=2.5)), "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "budget: 5 MFLOPs (multiply-adds) at 32px and 2.5 ms on local (torch, batch 1, 1 thread, 32px), " \
           "10 classes" in out
    assert "not checked against the latency budget" in out
    assert main(["spaces"]) == 0
    demo = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("demo "))
    assert "30 MFLOPs (multiply-adds) at 224px" in demo


# --- the model card ---------------------------------------------------------------------------------------
def test_model_card_states_latency_on_the_target_with_its_fingerprint():
    from shufflesearch.export import _latency_target

    arch = ZOO[MODEL]
    data = {"image_size": 32, "num_classes": 10, "in_chans": 1}
    base = {"run": "r", "trial": 3, "seed": 0, "mflops": 37.6, "params": 700000, "latency_ms": 4.1234,
            "budget_input_size": 224}
    assert "| latency | 4.12 ms (median, batch 1, 1 CPU thread, 224x224) |" in model_card("ss_r_t3", arch, data, base)
    config = {"budget": {"mflops": 40, "input_size": 224, "latency_ms": 5.0,
                         "latency": {"target": "rpi4", "backend": "onnxruntime", "batch": 1, "threads": 4,
                                     "input_size": None, "warmup": 5, "runs": 30, "table": None}},
              "latency_fingerprint": {"cpu_model": "Cortex-A72", "onnxruntime": "1.22.0"}, "latency_node": "n1"}
    target = _latency_target(config, {"latency_node": "n2"})
    card = model_card("ss_r_t3", arch, data, {**base, "latency_iqr_ms": 0.2, "latency_target": target})
    assert ("| latency | 4.12 ms (median of 30 timed runs, IQR 0.20 ms, on `rpi4` (node n2); onnxruntime, batch 1, "
            "4 threads, 224x224) |") in card
    assert "| latency target | cpu_model Cortex-A72, onnxruntime 1.22.0 |" in card
    predicted = _latency_target({**config, "budget": {**config["budget"], "latency": {
        **config["budget"]["latency"], "table": "t.json"}}}, {})
    assert "4.12 ms (predicted from a latency table built on `rpi4`;" in \
        model_card("ss_r_t3", arch, data, {**base, "latency_target": predicted})
    assert _latency_target({"budget": {"mflops": 40}}, {}) is None


# --- a real latency-budgeted search through the CLI: its report and model card --------------------------------
@pytest.mark.slow
def test_a_latency_budgeted_search_from_the_cli_reports_and_cards_it(tmp_path, capsys):
    from helpers import tiny_space
    from scipy.stats import kendalltau

    from shufflesearch.runs._run import load_run
    from shufflesearch.space import SearchSpace
    from shufflesearch.space._configs import LatencySettings
    from shufflesearch.train._latency import measure

    path = tiny_space(tmp_path, epochs=1)
    data = yaml.safe_load(path.read_text())
    data["budget"]["latency"] = {"input_size": 64, "runs": 5, "warmup": 1}
    path.write_text(yaml.safe_dump(data))
    settings = LatencySettings(input_size=64, runs=5, warmup=1)
    ms = sorted(measure(a, settings, 64).median_ms for a in SearchSpace.from_yaml(path).random_sample(12, seed=3))
    limit = round(ms[5], 3)  # about half the space's candidates over it, on any machine
    assert main(["search", str(path), "--name", "lat", "--trials", "5", "--scheduler", "none", "--runs-dir",
                 str(tmp_path / "runs"), "--budget-latency-ms", str(limit)]) == 0
    run = load_run(tmp_path / "runs" / "lat")
    assert run.trials and all(r["latency_ms"] <= limit for r in run.trials)
    md = (run.path / "report" / "report.md").read_text()
    assert f"{limit:g} ms on local (torch, batch 1, 1 thread, 64px)" in md
    assert f"## Candidates refused for latency, never trained ({len(run.rejected)}; rejected.jsonl)" in md
    assert all(r["reason"] in md for r in run.rejected[:50])
    distinct = list({r["arch_hash"]: r for r in reversed(run.trials)}.values()) + run.rejected
    if len(distinct) >= 3:
        tau = kendalltau([r["mflops"] for r in distinct], [r["latency_ms"] for r in distinct]).statistic
        assert f"over the {len(distinct)} distinct candidates" in md and f"{tau:.3f}" in md
        assert (run.path / "report" / "flops_latency.png").is_file()
    card = (run.path / "models" / "ss_lat_best" / "README.md").read_text()
    assert "median of 5 timed runs" in card and "on `local` (node local)" in card and "| latency target |" in card
