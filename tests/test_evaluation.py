"""Final evaluation (`shufflesearch final`): a real search on digits, then its top architectures, its
FLOPs-greedy pick and zoo models retrained with several seeds and scored on the test split, resumably,
through Ray."""

from __future__ import annotations

import json

import pytest
import timm
from helpers import evaluate, run_cli, tiny_space, too_wide

import shufflesearch
from shufflesearch import ShuffleSearchError
from shufflesearch.evaluation._final import Candidate, final_evaluation, select_candidates, zoo_within_budget
from shufflesearch.runs._pareto import greedy_pick
from shufflesearch.runs._records import read_rows

pytestmark = pytest.mark.slow
ZOO = ["shufflenet_v1_g3_x0_25"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("final")
    return shufflesearch.search(tiny_space(tmp, epochs=1), name="fin", trials=3, scheduler="none",
                                runs_dir=tmp / "runs", progress=None)


@pytest.fixture(scope="module")
def evaluated(searched):
    lines: list[str] = []
    result = final_evaluation(searched.run_dir, top=2, seeds=2, epochs=1, zoo=ZOO, greedy=True,
                              progress=lines.append)
    return result, lines


def test_final_retrains_top_greedy_and_zoo_with_each_seed_on_the_test_split(searched, evaluated):
    result, lines = evaluated
    assert len(result.rows) == 4 * 2 and {r["seed"] for r in result.rows} == {0, 1}
    assert all(r["status"] == "complete" and 0 <= r["test_acc"] <= 1 for r in result.rows)
    assert {r["kind"] for r in result.rows} == {"found", "greedy", "zoo"}
    found = [s for s in result.summary if s["kind"] == "found"]
    assert len(found) == 2 and all(s["seeds"] == 2 and s["test_acc_sd"] is not None for s in found)
    assert {s["number"] for s in found} <= {r["number"] for r in searched.rows}
    # the greedy pick: the run's costliest trial, retrained with the same seeds; its search acc is its trial's
    pick = greedy_pick(searched.rows, json.loads((searched.run_dir / "config.json").read_text())["budget"])
    (greedy,) = [s for s in result.summary if s["kind"] == "greedy"]
    assert (greedy["name"], greedy["number"], greedy["seeds"]) == (f"greedy_t{pick['number']}", pick["number"], 2)
    assert greedy["arch_hash"] == pick["arch_hash"] and greedy["search_acc"] == pick["search_acc"]
    summary = json.loads((result.final_dir / "summary.json").read_text())
    assert summary["protocol"]["greedy"] is True and summary["split"] == "test"
    assert "--greedy" in json.loads((result.final_dir / "config.json").read_text())["command"]
    # the test split is the digits split the search never saw: 360 images
    config = json.loads((result.final_dir / "config.json").read_text())
    assert config["data"]["subset_per_class"] is None and "search_acc" not in result.rows[0]["status"]
    assert sum(1 for line in lines if line.startswith("[")) == 8 and "test acc" in lines[-1]
    assert read_rows(result.final_dir / "results.jsonl") == result.rows


def test_retrained_weights_are_timm_models_whose_test_accuracy_is_recorded(searched, evaluated):
    result, _ = evaluated
    names = sorted(p.name for p in result.models)
    assert names == sorted([f"ss_fin_t{s['number']}_final" for s in result.summary if s["kind"] == "found"]
                           + [f"ss_fin_{s['name']}_final" for s in result.summary if s["kind"] == "greedy"]
                           + ["ss_fin_shufflenet_v1_g3_x0_25_final"])
    zoo = next(s for s in result.summary if s["kind"] == "zoo")
    model = timm.create_model("ss_fin_shufflenet_v1_g3_x0_25_final", pretrained=True)
    assert evaluate(model, searched.run_dir, "test") == zoo["test_accs"][0]
    card = (searched.run_dir / "models" / "ss_fin_shufflenet_v1_g3_x0_25_final" / "README.md").read_text()
    assert "test accuracy" in card and f"{100 * zoo['test_acc_mean']:.2f}%" in card


def test_a_second_call_resumes_and_a_changed_protocol_is_refused(searched, evaluated):
    result, _ = evaluated
    again = final_evaluation(searched.run_dir, top=2, seeds=2, epochs=1, zoo=ZOO, greedy=True, progress=None,
                             export=False)
    assert again.rows == result.rows  # nothing trained again
    with pytest.raises(ShuffleSearchError, match="another protocol"):
        final_evaluation(searched.run_dir, top=2, seeds=2, epochs=2, zoo=ZOO, progress=None)


def test_final_cli_reports_and_fails_with_one_line(searched, evaluated):
    out = run_cli("final", str(searched.run_dir), "--top", "2", "--seeds", "2", "--epochs", "1",
                  "--zoo", ",".join(ZOO), "--greedy")
    assert out.returncode == 0, out.stderr
    assert "0 retraining(s) to run" in out.stdout and "test accuracy, mean ± sd" in out.stdout
    assert "  greedy greedy_t" in out.stdout
    page = (searched.run_dir / "report" / "report.md").read_text()
    assert "## Final evaluation (test split)" in page and "final.png" in page
    assert "| greedy | greedy_t" in page and "## What the search bought (search-validation split)" in page
    zoo = next(s for s in evaluated[0].summary if s["kind"] == "zoo")
    assert f"{zoo['test_acc_mean']:.4f}" in page
    assert (searched.run_dir / "report" / "final.png").read_bytes().startswith(b"\x89PNG")
    bad = run_cli("final", str(searched.run_dir), "--zoo", "shufflenet_v9")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "shufflenet_v9" in bad.stderr


def test_a_baseline_whose_latency_measurement_raises_is_recorded_failed_and_the_others_train(searched):
    from shufflesearch.models._registry import register_arch

    register_arch("ss_too_wide", too_wide(shufflesearch.get_arch(ZOO[0])))
    lines: list[str] = []
    rows = shufflesearch.run_baselines(searched.run_dir, ["ss_too_wide", ZOO[0]], progress=lines.append)
    failed, trained = rows
    assert failed["model"] == "ss_too_wide" and failed["status"] == "failed" and failed["latency_ms"] is None
    assert "can't allocate memory" in failed["error"]
    assert failed["attempts"] == 1 and failed["faults"] == []  # the architecture's own error: never retried
    assert trained["model"] == ZOO[0] and trained["status"] == "complete" and trained["latency_ms"] > 0
    assert read_rows(searched.run_dir / "baselines.jsonl") == rows
    assert len(lines) == 2 and "can't allocate memory" in next(line for line in lines if "ss_too_wide" in line)


def test_selection_spreads_along_the_front_and_zoo_respects_the_budget():
    def row(n, acc, mflops):
        return {"number": n, "search_acc": acc, "mflops": mflops, "status": "complete", "epochs": 1,
                "max_epochs": 1, "arch_hash": f"h{n}", "arch": shufflesearch.get_arch(ZOO[0]).to_dict()}
    rows = [row(0, 0.5, 5), row(1, 0.6, 10), row(2, 0.7, 20), row(3, 0.8, 30), row(4, 0.55, 25)]
    spread = select_candidates(rows, ["acc", "mflops"], 3)
    assert [c.number for c in spread] == [0, 2, 3] and all(isinstance(c, Candidate) for c in spread)
    assert [c.number for c in select_candidates(rows, ["acc", "mflops"], 1)] == [3]  # the best, not the cheapest
    assert [c.number for c in select_candidates(rows, ["acc"], 2)] == [2, 3]
    within = zoo_within_budget({"mflops": 15, "input_size": 224})
    assert within and all(shufflesearch.cost(shufflesearch.get_arch(n)).mflops <= 15 for n in within)


def test_summary_lists_test_accuracies_in_seed_order_whichever_job_finished_first():
    from shufflesearch.evaluation._final import _summarise
    arch = shufflesearch.get_arch(ZOO[0])
    rows = [{"name": ZOO[0], "arch_hash": arch.hash, "status": "complete", "seed": s, "test_acc": a}
            for s, a in ((2, 0.3), (0, 0.1), (1, 0.2))]
    (entry,) = _summarise(rows, [Candidate("zoo", ZOO[0], arch)], {"input_size": 224})
    assert entry["test_accs"] == [0.1, 0.2, 0.3]


def test_a_found_genome_equal_to_a_zoo_one_keeps_its_own_seeds(searched, tmp_path):
    """Jobs and rows are matched by candidate, not genome: a trial whose genome is a zoo model's is two
    candidates, each with its seeds (they were once merged into one)."""
    import shutil

    from shufflesearch.models._registry import register_arch

    run_dir = tmp_path / "fin"
    shutil.copytree(searched.run_dir, run_dir, ignore=shutil.ignore_patterns("final", ".lock"))
    (best,) = select_candidates(read_rows(run_dir / "trials.jsonl"), ["acc", "mflops"], 1)
    register_arch("ss_same_as_found", best.arch)
    result = final_evaluation(run_dir, top=1, seeds=1, epochs=1, zoo=["ss_same_as_found"], progress=None,
                              export=False)
    assert sorted((r["name"], r["seed"]) for r in result.rows) == sorted([(best.name, 0), ("ss_same_as_found", 0)])
    assert [(s["name"], s["seeds"]) for s in result.summary] == [(best.name, 1), ("ss_same_as_found", 1)]


def test_two_names_for_one_genome_are_two_baselines_each_with_its_row(searched):
    from shufflesearch.models._registry import register_arch

    register_arch("ss_alias_of_zoo", shufflesearch.get_arch(ZOO[0]))
    rows = shufflesearch.run_baselines(searched.run_dir, [ZOO[0], "ss_alias_of_zoo"])
    assert [(r["model"], r["status"]) for r in rows] == [(ZOO[0], "complete"), ("ss_alias_of_zoo", "complete")]


def test_trials_asked_by_number_are_retrained_whatever_their_rank(searched, evaluated):
    result, _ = evaluated
    trained = {s["number"] for s in result.summary if s["kind"] == "found"}
    (other,) = [r["number"] for r in searched.rows if r["number"] not in trained and r["status"] != "failed"][:1]
    again = final_evaluation(searched.run_dir, top=0, trials=[other], seeds=2, epochs=1, zoo=[], progress=None,
                             export=False)
    (summary,) = again.summary
    assert (summary["kind"], summary["name"], summary["number"], summary["seeds"]) == ("found", f"t{other}", other, 2)
    assert "--trial" in json.loads((again.final_dir / "config.json").read_text())["command"]
    bad = run_cli("final", str(searched.run_dir), "--top", "0", "--trial", "99", "--zoo", "none")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--trial 99: no such trial" in bad.stderr
