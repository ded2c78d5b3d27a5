"""Search winners as timm models: export, registry roots, pretrained loading, errors, ONNX, final training.

One real 3-trial search on digits (module-scoped) feeds every slow test; new processes check what a
user sees: `import shufflesearch, timm; timm.create_model('ss_demo_run_best', pretrained=True)`.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import timm_contract
import torch
from helpers import assert_self_contained, evaluate, run_cli, tiny_space

import shufflesearch
from shufflesearch import ShuffleSearchError, export_run, register_models, train_final
from shufflesearch.models._folder import model_name, sanitize
from shufflesearch.runs._records import read_rows
from shufflesearch.runs._run import load_run

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`code` in a new Python process started in `cwd`, with shufflesearch and tests/ importable."""
    path = os.pathsep.join([str(ROOT), str(TESTS)])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path, **env})


@pytest.mark.parametrize("run, expected", [("demo", "demo"), ("My Run-2", "my_run_2"), ("__A..b__", "a_b"),
                                           ("2024/06 cifar", "2024_06_cifar")])
def test_run_names_become_timm_identifiers(run, expected):
    assert sanitize(run) == expected
    assert model_name(run, "best") == f"ss_{expected}_best"
    assert model_name(run, "p2") == f"ss_{expected}_p2" and model_name(run, 7) == f"ss_{expected}_t7"


def test_a_run_name_without_letters_or_digits_is_refused():
    with pytest.raises(ShuffleSearchError, match="'-- '"):
        sanitize("-- ")


def test_missing_roots_named_by_the_user_are_errors_and_the_default_is_silent(tmp_path):
    with pytest.raises(ShuffleSearchError, match="nowhere: no such directory"):
        register_models(tmp_path / "nowhere")
    done = python("import shufflesearch, timm", tmp_path, SHUFFLESEARCH_MODELS=str(tmp_path / "nowhere"))
    assert done.returncode == 0
    # one warning for the named root; no runs/ here, and no word of that
    assert done.stderr.count("UserWarning") == 1 and "SHUFFLESEARCH_MODELS" in done.stderr and "nowhere" in done.stderr


# --- after a real search ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, ray_local):
    """`run_pipeline` of a 3-trial search named 'Demo-Run' (its models are ss_demo_run_*): the search, best
    and Pareto exported, the report; then the best exported again with ONNX."""
    tmp = tmp_path_factory.mktemp("export")
    done = shufflesearch.run_pipeline(tiny_space(tmp), name="Demo-Run", trials=3, scheduler="none",
                                      runs_dir=tmp / "runs", progress=None)
    export_run(done.search.run_dir, "best", onnx=True)
    return done


@pytest.fixture(scope="module")
def run(pipeline):
    """The pipeline's search result."""
    return pipeline.search


@pytest.mark.slow
def test_the_pipeline_exports_and_reports_what_the_search_found(pipeline):
    run = pipeline.search
    pareto = [r["number"] for r in run.pareto]
    assert [p.name for p in pipeline.pareto_models] == [f"ss_demo_run_p{k}" for k in range(1, len(pareto) + 1)]
    assert pipeline.best_model.name == "ss_demo_run_best" and pipeline.baselines == []
    assert pipeline.report == run.run_dir / "report" / "report.html"
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["best"] == run.best and summary["pareto"] == pareto
    assert [int(t["number"]) for t in csv.DictReader((run.run_dir / "report" / "pareto.csv").open())] == pareto


@pytest.mark.slow
def test_export_writes_whole_hub_format_folders(run):
    rows = {r["number"]: r for r in read_rows(run.run_dir / "trials.jsonl")}
    models = run.run_dir / "models"
    best = json.loads((models / "ss_demo_run_best" / "config.json").read_text())
    row = rows[best["shufflesearch"]["trial"]]
    assert row == run.best
    assert best["architecture"] == "shufflesearch_net" and best["model_args"]["arch"] == row["arch"]
    assert best["num_classes"] == 10 and best["label_names"] == [str(i) for i in range(10)]
    cfg = best["pretrained_cfg"]
    assert cfg["input_size"] == [1, 32, 32] and cfg["first_conv"] == "stem.conv" and cfg["classifier"] == "head.fc"
    assert len(cfg["mean"]) == len(cfg["std"]) == 1 and cfg["num_classes"] == 10
    for key in ("search_acc", "epochs", "mflops", "params", "latency_ms", "seed"):
        assert best["shufflesearch"][key] == row[key]
    assert best["shufflesearch"]["run"] == "Demo-Run" and best["shufflesearch"]["dataset"] == "digits"
    weights = models / "ss_demo_run_best" / "model.safetensors"
    assert weights.read_bytes() == (run.run_dir / "weights" / f"trial_{row['number']}.safetensors").read_bytes()
    assert shufflesearch.Arch.load(models / "ss_demo_run_best" / "arch.yaml").to_dict() == row["arch"]
    card = (models / "ss_demo_run_best" / "README.md").read_text()
    assert "timm.create_model('ss_demo_run_best', pretrained=True)" in card and f"trial {row['number']}" in card
    genome = next(line for line in card.splitlines() if line.startswith("| genome |"))
    assert genome.count("|") - genome.count("\\|") == 3  # one row of two cells: the genome's pipes escaped

    # Pareto points by increasing cost; the report shows their timm names; no temporary folder is left
    pareto = [json.loads((models / f"ss_demo_run_p{k}" / "config.json").read_text())["shufflesearch"]["trial"]
              for k in range(1, len(run.pareto) + 1)]
    assert pareto == [r["number"] for r in run.pareto]
    assert "ss_demo_run_best" in load_run(run.run_dir).models[row["number"]]
    assert not [p for p in models.iterdir() if p.name.startswith(".")]

    # the exported model's own cfg: pool size at the proxy input, its keys in the state_dict
    model = timm.create_model("ss_demo_run_best").eval()
    side = model.forward_features(torch.randn(1, 1, 32, 32)).shape[-1]
    assert model.pretrained_cfg["pool_size"] == (side, side) and model.num_classes == 10
    assert {"stem.conv.weight", "head.fc.weight"} <= set(model.state_dict())


@pytest.mark.slow
def test_a_pareto_export_removes_points_no_longer_on_the_front(run):
    models = run.run_dir / "models"
    shutil.copytree(models / "ss_demo_run_p1", models / "ss_demo_run_p99")  # a point of an earlier front
    shutil.copytree(models / "ss_demo_run_p1", models / "ss_demo_run_p1_e100")  # a final-trained sibling
    shufflesearch.register_models(models / "ss_demo_run_p99")
    try:
        export_run(run.run_dir, "pareto")
        assert not (models / "ss_demo_run_p99").exists() and (models / "ss_demo_run_p1_e100").exists()
        assert "ss_demo_run_p99" not in timm.list_models("ss_demo_run_*")  # nor registered any more
    finally:
        shutil.rmtree(models / "ss_demo_run_p1_e100")


@pytest.mark.slow
def test_a_new_process_loads_the_best_model_with_its_recorded_accuracy(run):
    code = ("import json, shufflesearch, timm; from helpers import evaluate; from pathlib import Path\n"
            "run = Path('runs/Demo-Run')\n"
            "print(json.dumps({'listed': timm.list_models('ss_*'),\n"
            "    'arch': shufflesearch.get_arch('ss_demo_run_best').to_dict(),\n"
            "    'name': evaluate(timm.create_model('ss_demo_run_best', pretrained=True), run),\n"
            "    'local': evaluate(timm.create_model('local-dir:runs/Demo-Run/models/ss_demo_run_best',\n"
            "                                        pretrained=True), run)}))")
    done = python(code, run.run_dir.parent.parent)  # runs/ is found in the working directory
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["name"] == out["local"] == run.best["search_acc"]  # exactly: same weights, same evaluation
    assert out["arch"] == run.best["arch"]
    assert {"ss_demo_run_best", "ss_demo_run_p1"} <= set(out["listed"])


@pytest.mark.slow
def test_two_roots_in_the_environment_and_a_name_claimed_twice(run, tmp_path):
    other = tmp_path / "shared_models"
    shutil.copytree(run.run_dir / "models" / "ss_demo_run_best", other / "ss_colleague_best")
    clash = tmp_path / "clash"
    shutil.copytree(run.run_dir / "models" / "ss_demo_run_p1", clash / "ss_demo_run_p1")
    code = ("import json, shufflesearch, timm, torch\n"
            "m = timm.create_model('ss_colleague_best', pretrained=True).eval()\n"
            "try:\n    timm.create_model('ss_demo_run_p1')\nexcept shufflesearch.ShuffleSearchError as e:\n"
            "    clash = str(e)\n"
            "print(json.dumps({'listed': timm.list_models('ss_*'), 'clash': clash,\n"
            "                  'out': m(torch.ones(1, 1, 32, 32)).tolist()}))")
    roots = os.pathsep.join([str(run.run_dir), str(other), str(clash)])  # a run dir, then two models dirs
    done = python(code, tmp_path, SHUFFLESEARCH_MODELS=roots)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"ss_demo_run_best", "ss_colleague_best"} <= set(out["listed"])
    first, second = run.run_dir / "models" / "ss_demo_run_p1", clash / "ss_demo_run_p1"
    assert str(first.resolve()) in out["clash"] and str(second.resolve()) in out["clash"]
    assert "claimed by two folders" in done.stderr  # warned at import, not silently overwritten
    ref = timm.create_model("ss_demo_run_best", pretrained=True).eval()
    torch.testing.assert_close(torch.tensor(out["out"]), ref(torch.ones(1, 1, 32, 32)).detach())

    register_models(run.run_dir)  # the same folders again: fine
    with pytest.raises(ShuffleSearchError) as e:
        register_models(clash)
    assert str(first.resolve()) in str(e.value) and str(second.resolve()) in str(e.value)
    assert len(str(e.value).splitlines()) == 1


@pytest.mark.slow
def test_missing_truncated_and_mismatched_weights_name_the_file(run, tmp_path):
    best = run.run_dir / "models" / "ss_demo_run_best"
    for name in ("ss_bad_missing", "ss_bad_truncated", "ss_bad_shapes"):
        shutil.copytree(best, tmp_path / name)
    (tmp_path / "ss_bad_missing" / "model.safetensors").unlink()
    truncated = tmp_path / "ss_bad_truncated" / "model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:-1000])
    other = next(r for r in run.rows if r["status"] == "complete" and r["arch"] != run.best["arch"])
    shapes = tmp_path / "ss_bad_shapes" / "model.safetensors"
    shutil.copyfile(run.run_dir / "weights" / f"trial_{other['number']}.safetensors", shapes)
    assert sorted(register_models(tmp_path)) == ["ss_bad_missing", "ss_bad_shapes", "ss_bad_truncated"]

    cases = {"ss_bad_missing": "weights file missing", "ss_bad_truncated": "not a readable safetensors file",
             "ss_bad_shapes": "has shape"}
    for name, why in cases.items():
        weights = tmp_path / name / "model.safetensors"
        for source in (name, f"local-dir:{tmp_path / name}"):
            with pytest.raises(ShuffleSearchError, match=why) as e:
                timm.create_model(source, pretrained=True)
            assert str(weights) in str(e.value) and len(str(e.value).splitlines()) == 1
        assert timm.create_model(name).num_classes == 10  # the architecture itself needs no weights


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ss_demo_run_best", "ss_demo_run_p1"])
@pytest.mark.parametrize("check", timm_contract.CHECKS, ids=lambda check: check.__name__)
def test_exported_models_meet_the_timm_contract(run, one_thread, name, check):
    check(name)


@pytest.mark.slow
def test_onnx_output_matches_pytorch(run):
    ort = pytest.importorskip("onnxruntime")
    folder = run.run_dir / "models" / "ss_demo_run_best"
    model = timm.create_model("ss_demo_run_best", pretrained=True).eval()
    x = torch.randn(3, 1, 32, 32)  # batch 3: the batch axis is dynamic
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"input": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), model(x).detach(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_final_training_writes_a_new_model_beside_the_proxy_one(run):
    proxy = run.run_dir / "models" / "ss_demo_run_best"
    before = {p.name: p.read_bytes() for p in proxy.iterdir()}
    folder = train_final("ss_demo_run_best", epochs=4, tag="long")
    assert folder == proxy.parent / "ss_demo_run_best_long"
    assert {p.name: p.read_bytes() for p in proxy.iterdir()} == before  # proxy weights and card untouched
    info = json.loads((folder / "config.json").read_text())["shufflesearch"]
    final = info["final"]
    assert final["epochs"] == 4 and final["from"] == "ss_demo_run_best" and final["dataset"] == "digits"
    assert info["search_acc"] == run.best["search_acc"] and info["trial"] == run.best["number"]
    card = (folder / "README.md").read_text()
    assert "search accuracy" in card and "test accuracy" in card and f"{100 * final['test_acc_mean']:.2f}%" in card
    model = timm.create_model("ss_demo_run_best_long", pretrained=True)
    assert evaluate(model, run.run_dir, "test") == final["test_acc_mean"] == final["test_accs"][0]
    with pytest.raises(ShuffleSearchError, match="ss_demo_run_best_long: exists already"):
        train_final("ss_demo_run_best", epochs=4, tag="long")


@pytest.mark.slow
def test_cli_export_train_models_and_their_errors(run):
    cwd = run.run_dir.parent.parent
    done = run_cli("export", "Demo-Run", "--trial", str(run.best["number"]), cwd=cwd,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert f"timm.create_model('ss_demo_run_t{run.best['number']}', pretrained=True)" in done.stdout
    listed = run_cli("models", cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "ss_demo_run_best " in listed.stdout and "shufflenet_v2_x1_0 " in listed.stdout
    for args, why in ((("export", "Demo-Run", "--trial", "99"), "trial 99: not recorded"),
                      (("export", "no_such_run"), "no_such_run"),
                      (("train", "ss_demo_run_bset", "--epochs", "1"), "did you mean ss_demo_run_best")):
        bad = run_cli(*args, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert why in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_report_of_a_real_search(run):
    page_path = shufflesearch.write_report(run.run_dir)
    out = run.run_dir / "report"
    for name in ("pareto.csv", "pareto.png", "progress.png", "report.html", "report.md"):
        assert (out / name).stat().st_size > 0, name
    page = page_path.read_text()
    assert_self_contained(page)
    assert "ss_demo_run_best" in page and "MFLOPs (multiply-adds)" in page
    assert f"complete: {run.counts['complete']}" in page
    assert html.escape(load_run(run.run_dir).config["command"]) in page
