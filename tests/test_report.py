"""The report files of a run and the run comparison (the front and hypervolume themselves: test_pareto.py).

The report tests read a run directory written here with real genomes and their real costs and
synthetic accuracies (a plausible accuracy-against-MFLOPs curve plus seeded noise): they test the
report's logic, not a search. The end-to-end report of a real short search lives with the search tests.
"""

from __future__ import annotations

import csv
import json
import random

import matplotlib.image
import pytest
from helpers import assert_self_contained

from shufflesearch import cli
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._cost import cost
from shufflesearch.genome._zoo import ZOO, shufflenet_v1, shufflenet_v2
from shufflesearch.report._report import compare_runs, write_report
from shufflesearch.runs._pareto import best_row, front_hypervolume, pareto_front, progress
from shufflesearch.runs._run import load_run
from shufflesearch.space._objectives import COSTS

# --- a run directory -----------------------------------------------------------------------------------
BUDGET = 40.0


def make_run(root, name, seed, sampler="tpe", n=36):
    """A run directory in the documented format: real genomes and costs, synthetic accuracies."""
    rng = random.Random(seed)
    run = root / name
    (run / "models").mkdir(parents=True)
    rows = []
    for number in range(n):
        if rng.random() < 0.5:
            arch = shufflenet_v1(rng.choice([1, 2, 3, 4, 8]), rng.choice([0.25, 0.3, 0.4, 0.5, 0.55]))
        else:
            w = rng.choice([24, 32, 40, 48])
            arch = shufflenet_v2((w, 2 * w, 4 * w), rng.choice([256, 512, 1024]))
        c = cost(arch, 224)
        acc = min(0.99, 0.55 + 0.09 * (c.mflops ** 0.5) / 2 + rng.gauss(0, 0.03))
        status = rng.choices(["complete", "early_stopped", "failed", "diverged"], [10, 4, 1, 1])[0]
        epochs = {"complete": 3, "early_stopped": 1, "failed": 0, "diverged": 2}[status]
        rows.append({
            "number": number, "arch_hash": arch.hash, "arch": arch.to_dict(), "summary": arch.summary(),
            "mflops": c.mflops, "params": c.params, "proxy_params": c.params // 3,
            "latency_ms": 1.0 + c.mflops / 20 + rng.random(), "epochs": epochs, "max_epochs": 3,
            "search_acc": None if status == "failed" else (0.1 if status == "diverged" else acc - 0.2 * (epochs < 3)),
            "search_loss": 0.5, "best_search_acc": acc, "status": status,
            "error": "RuntimeError: boom" if status == "failed" else None, "seconds": 20.0, "train_seconds": 18.0,
            "seed": seed, "started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:00:20"})
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    baselines = []
    for model in ("shufflenet_v1_g3_x0_5", "shufflenet_v1_g8_x0_5", "shufflenet_v2_x0_5"):
        c = cost(ZOO[model], 224)
        baselines.append({"number": None, "model": model, "mflops": c.mflops, "params": c.params,
                          "latency_ms": 2.5, "search_acc": round(0.5 + 0.045 * c.mflops ** 0.5, 3), "epochs": 3, "max_epochs": 3, "status": "complete"})
    (run / "baselines.jsonl").write_text("".join(json.dumps(r) + "\n" for r in baselines))
    (run / "config.json").write_text(json.dumps({
        "name": name, "space_file": "search_spaces/demo.yaml", "space_name": "demo",
        "budget": {"mflops": BUDGET, "input_size": 224, "max_params": None}, "objectives": ["acc", "mflops"],
        "sampler": sampler, "scheduler": "asha", "trials": n, "seed": seed, "cpus_per_trial": 1,
        "proxy": {"dataset": "digits", "image_size": 32, "epochs": 3, "batch_size": 64, "lr": 0.1},
        "data": {"num_classes": 10, "in_chans": 3, "image_size": 32, "label_names": list("0123456789")},
        "command": f"shufflesearch search search_spaces/demo.yaml --name {name} --sampler {sampler}",
        "started": "2025-01-01T00:00:00"}))
    (run / "summary.json").write_text(json.dumps({"wall_seconds": 3723.4, "train_seconds": 3000.0,
                                                  "finished": "2025-01-01T01:02:03"}))
    best = best_row(rows)
    (run / "models" / f"ss_{name}_best").mkdir()
    (run / "models" / f"ss_{name}_best" / "config.json").write_text(json.dumps(
        {"architecture": f"ss_{name}_best", "shufflesearch": {"trial": best["number"], "run": name}}))
    return run, rows, best


def test_report_files_from_a_run_directory(tmp_path):
    run, rows, best = make_run(tmp_path, "r1", seed=3)
    page_path = write_report(run)
    out = run / "report"
    assert page_path == out / "report.html"
    for name in ("pareto.csv", "pareto.png", "progress.png", "report.html", "report.md"):
        assert (out / name).stat().st_size > 0, name
    for png in ("pareto.png", "progress.png"):
        assert matplotlib.image.imread(out / png).shape[0] > 300

    front = pareto_front(rows)
    table = list(csv.DictReader((out / "pareto.csv").open()))
    assert [int(t["number"]) for t in table] == [r["number"] for r in front]
    assert all(t["summary"] and t["arch_hash"] and float(t["search_acc"]) > 0 for t in table)
    named = [t for t in table if t["model"]]
    assert [(int(t["number"]), t["model"]) for t in named] == [(best["number"], "ss_r1_best")]

    page = (out / "report.html").read_text()
    assert_self_contained(page)
    assert page.count("data:image/png;base64,") == 4  # pareto, latency, flops_latency, progress
    md = (out / "report.md").read_text()
    assert all(f"({png})" in md for png in ("pareto.png", "progress.png", "latency.png", "flops_latency.png"))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("complete", "early_stopped", "failed", "diverged")}
    status_line = ", ".join(f"{k}: {v}" for k, v in counts.items())
    hv = f"{front_hypervolume(front, COSTS['mflops'], BUDGET):.4f}"
    for text in (page, md):
        assert status_line in text
        assert "ss_r1_best" in text and "1h 02m 03s" in text and hv in text
        assert "--name r1 --sampler tpe" in text
        assert "MFLOPs (multiply-adds)" in text and "reference point (1.1, 1) = (44 MFLOPs, accuracy 0)" in text
        assert "shufflenet_v2_x0_5" in text  # the baselines table


def bought(md):
    """The "what the search bought" section of a report.md."""
    return md.split("## What the search bought (search-validation split)\n", 1)[1].split("\n## ", 1)[0]


def test_report_says_what_the_search_bought_against_the_flops_greedy_pick(tmp_path):
    run, rows, _ = make_run(tmp_path, "bought", seed=3, n=4)
    base = {**rows[0], "max_epochs": 3}
    hand = [{**base, "number": 0, "mflops": 20.0, "params": 100, "status": "complete", "epochs": 3, "search_acc": 0.8},
            {**base, "number": 1, "mflops": 39.0, "params": 100, "status": "early_stopped", "epochs": 1,
             "search_acc": 0.6},
            {**base, "number": 2, "mflops": 39.5, "params": 100, "status": "failed", "epochs": 0, "search_acc": None},
            {**base, "number": 3, "mflops": 45.0, "params": 100, "status": "complete", "epochs": 3, "search_acc": 0.7}]
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hand))
    write_report(run)
    section = bought((run / "report" / "report.md").read_text())
    assert "| found top-1 | 0 | 20 | 100 | 0.8000 |" in section
    # 3 is over the 40-MFLOPs budget, 2 failed: the greedy pick is 1, stopped early
    assert "| FLOPs-greedy pick | 1 | 39 | 100 | none: early_stopped after 1 of 3 epochs" in section
    assert "not measured" in section and "points" not in section  # no number invented
    assert "search-validation split" in section and "final RUN --greedy" in section

    hand[1].update(status="complete", epochs=3, search_acc=0.74)
    (run / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hand))
    write_report(run)
    section = bought((run / "report" / "report.md").read_text())
    assert "| FLOPs-greedy pick | 1 | 39 | 100 | 0.7400 |" in section
    assert "found top-1 − FLOPs-greedy pick: +6.00 points of search-validation accuracy." in section
    html = (run / "report" / "report.html").read_text()
    assert "What the search bought (search-validation split)" in html and "+6.00 points" in html


def test_baselines_above_the_budget_are_marked_as_extras(tmp_path):
    run, _, _ = make_run(tmp_path, "marked", seed=3, n=4)  # baselines at 36.6, 37.6 and 40.5 MFLOPs; budget 40
    write_report(run)
    md = (run / "report" / "report.md").read_text()
    assert "| shufflenet_v2_x0_5 | above budget |" in md and "| shufflenet_v1_g3_x0_5 | within |" in md
    assert "No zoo model here fits the budget" not in md
    config = json.loads((run / "config.json").read_text())
    config["budget"]["mflops"] = 30.0
    (run / "config.json").write_text(json.dumps(config))
    write_report(run)
    md = (run / "report" / "report.md").read_text()
    assert md.count("| above budget |") == 3 and "No zoo model here fits the budget" in md


def test_report_with_latency_objective_and_no_summary(tmp_path):
    run, rows, _ = make_run(tmp_path, "r2", seed=4)
    (run / "summary.json").unlink()
    write_report(run, "acc,latency")
    md = (run / "report" / "report.md").read_text()
    assert "latency (ms, batch 1, CPU)" in md and "wall time**: unknown" in md
    table = list(csv.DictReader((run / "report" / "pareto.csv").open()))
    assert [int(t["number"]) for t in table] == [r["number"] for r in pareto_front(rows, "acc,latency")]


def test_progress_is_monotone_and_ends_at_the_front(tmp_path):
    _, rows, _ = make_run(tmp_path, "r3", seed=5)
    steps = progress(rows, COSTS["mflops"], BUDGET)
    assert [s[0] for s in steps] == sorted(r["number"] for r in rows)
    hvs = [s[2] for s in steps]
    assert hvs == sorted(hvs) and hvs[-1] == pytest.approx(front_hypervolume(pareto_front(rows), COSTS["mflops"], BUDGET))
    accs = [s[1] for s in steps if s[1] == s[1]]
    assert accs == sorted(accs) and accs[-1] == max(r["search_acc"] for r in pareto_front(rows))


def test_compare_two_runs(tmp_path):
    a, rows_a, _ = make_run(tmp_path, "tpe_run", seed=6)
    b, rows_b, _ = make_run(tmp_path, "random_run", seed=7, sampler="random")
    page_path = compare_runs([a, b], tmp_path / "cmp", "acc,mflops")
    stem = "compare_tpe_run_vs_random_run"
    assert page_path == tmp_path / "cmp" / f"{stem}.html"
    assert matplotlib.image.imread(tmp_path / "cmp" / f"{stem}.png").shape[0] > 300
    assert_self_contained(page_path.read_text())
    md = (tmp_path / "cmp" / f"{stem}.md").read_text()
    for name, rows in (("tpe_run", rows_a), ("random_run", rows_b)):
        line = next(l for l in md.splitlines() if l.startswith(f"| {name} |"))
        hv = front_hypervolume(pareto_front(rows), COSTS["mflops"], BUDGET)
        best = max(r["search_acc"] for r in rows if r["status"] == "complete" and r["epochs"] == 3 and r["mflops"] <= BUDGET)
        assert f"| {hv:.4f} | {best:.4f} |" in line
    compare_runs([a, b])  # default place: the first run's report/
    assert (a / "report" / f"{stem}.md").is_file()


def test_load_run_errors(tmp_path):
    with pytest.raises(ShuffleSearchError, match="no such run directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShuffleSearchError, match="trials.jsonl: missing"):
        load_run(tmp_path / "empty")
    (tmp_path / "empty" / "trials.jsonl").write_text('{"number": 0}\n{not json\n')
    with pytest.raises(ShuffleSearchError, match="trials.jsonl: line 2"):
        load_run(tmp_path / "empty")


# --- the CLI ---------------------------------------------------------------------------------------------
def test_cli_report_and_compare(tmp_path, capsys, monkeypatch):
    make_run(tmp_path / "runs", "x", seed=8)
    make_run(tmp_path / "runs", "y", seed=9)
    monkeypatch.chdir(tmp_path)  # run names resolve under ./runs
    assert cli.main(["report", "x", "runs/y", "--objectives", "acc,params", "--out", "cmp"]) == 0
    printed = capsys.readouterr().out
    assert "runs/x/report/report.html" in printed and "cmp/compare_x_vs_y.html" in printed
    assert "params (millions, the budget's classifier)" in (tmp_path / "runs/x/report/report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["report", "missing_run"], "run 'missing_run': no such run directory"),
    (["report", "empty"], "trials.jsonl: missing"),
    (["report", "x", "--objectives", "acc,flops"], "objectives = 'acc,flops': must be one of"),
])
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    make_run(tmp_path / "runs", "x", seed=10)
    (tmp_path / "runs" / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- baselines: real proxy training on digits under the run's protocol -----------------------------------
def proxy_run(tmp_path, name="base"):
    from shufflesearch.space._configs import ProxyConfig

    run, _, _ = make_run(tmp_path / "runs", name, seed=11, n=8)
    config = json.loads((run / "config.json").read_text())
    config["proxy"] = {**ProxyConfig().to_dict(), "image_size": 16, "epochs": 2, "subset_per_class": 12,
                       "batch_size": 32, "seed": 99}
    config["cpus_per_trial"] = 1
    (run / "config.json").write_text(json.dumps(config))
    return run, config


def test_baselines_train_under_the_runs_protocol(tmp_path):
    from dataclasses import replace

    from shufflesearch.evaluation._baselines import run_baselines
    from shufflesearch.space._configs import proxy_config_from_dict
    from shufflesearch.train._proxy import train_proxy

    run, config = proxy_run(tmp_path)
    rows = run_baselines(run, ["shufflenet_v1_g3_x0_25", "shufflenet_v2_x0_5"])
    recorded = [json.loads(line) for line in (run / "baselines.jsonl").read_text().splitlines()]
    # the synthetic rows of other models are kept; shufflenet_v2_x0_5's is replaced by the trained one
    assert [r["model"] for r in recorded] == ["shufflenet_v1_g3_x0_5", "shufflenet_v1_g8_x0_5",
                                              "shufflenet_v1_g3_x0_25", "shufflenet_v2_x0_5"]
    assert recorded[-2:] == rows
    v1 = rows[0]
    assert v1["number"] is None and v1["epochs"] == v1["max_epochs"] == 2 and v1["status"] == "complete"
    assert v1["mflops"] == cost(ZOO["shufflenet_v1_g3_x0_25"], 224).mflops and v1["latency_ms"] > 0
    assert v1["seed"] == config["seed"]
    # the same protocol by hand (run seed, not the proxy section's) gives the same accuracy
    proxy = proxy_config_from_dict(config["proxy"], "config.json")
    by_hand = train_proxy(ZOO["shufflenet_v1_g3_x0_25"], load_data(proxy.data), replace(proxy.train, seed=config["seed"]))
    assert v1["search_acc"] == by_hand.final["search_acc"]
    write_report(run)
    assert "shufflenet_v1_g3_x0_25" in (run / "report" / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["baseline", "base", "--models", "shufflenet_v9"], "model 'shufflenet_v9': unknown shufflesearch model"),
    (["baseline", "nobody"], "run 'nobody': no such run directory"),
    (["baseline", "noproxy"], "config.json: proxy: missing"),
])
def test_cli_baseline_errors_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    proxy_run(tmp_path)
    noproxy, _, _ = make_run(tmp_path / "runs", "noproxy", seed=12, n=4)
    config = json.loads((noproxy / "config.json").read_text())
    del config["proxy"]
    (noproxy / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- latency: accuracy against it, FLOPs against it, the refused candidates ---------------------------------
def latency_run(tmp_path, name="lat"):
    """A run with a latency budget on a Ray custom resource, as the driver records it (config.json's budget,
    fingerprint and node; rejected.jsonl), its trials' latencies those of the target."""
    run, rows, _ = make_run(tmp_path, name, seed=13)
    config = json.loads((run / "config.json").read_text())
    config["budget"].update(latency_ms=3.0, flops_capped=True,
                            latency={"target": "rpi4", "backend": "onnxruntime", "batch": 1, "threads": 2,
                                     "input_size": None, "warmup": 5, "runs": 30, "table": None})
    config.update(latency_fingerprint={"cpu": "Cortex-A72", "threads": 2, "onnxruntime": "1.22.0"},
                  latency_node="a1b2c3")
    (run / "config.json").write_text(json.dumps(config))
    rejected = []
    for number, model in ((36, "shufflenet_v1_g3_x0_5"), (37, "shufflenet_v2_x0_5")):
        c = cost(ZOO[model], 224)
        rejected.append({"number": number, "origin": None, "arch_hash": ZOO[model].hash, "summary": ZOO[model].summary(),
                         "mflops": c.mflops, "params": c.params, "latency_ms": 3.5 + number / 100, "latency_iqr_ms": 0.1,
                         "latency_node": "a1b2c3", "budget_latency_ms": 3.0,
                         "reason": f"latency {3.5 + number / 100:.3f} ms > budget 3 ms on rpi4", "arch": ZOO[model].to_dict()})
    (run / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejected))
    return run, rows, rejected


def test_flops_latency_order_counts_the_pairs_flops_misorder():
    from itertools import combinations

    from scipy.stats import kendalltau

    from shufflesearch.report._report import flops_latency_order

    rows = [{"mflops": 10.0, "latency_ms": 1.0}, {"mflops": 20.0, "latency_ms": 3.0}, {"mflops": 30.0, "latency_ms": 2.0}]
    order = flops_latency_order(rows)
    assert (order.discordant, order.pairs) == (1, 3) and order.tau == pytest.approx(1 / 3)
    assert order.misordered == [(rows[1], rows[2])]  # 20 MFLOPs is slower than 30
    rng = random.Random(0)
    rows = [{"mflops": rng.uniform(1, 40), "latency_ms": rng.uniform(1, 5)} for _ in range(60)]
    order = flops_latency_order(rows, worst=4)
    wrong = [(a, b) for a, b in combinations(rows, 2)
             if (a["mflops"] - b["mflops"]) * (a["latency_ms"] - b["latency_ms"]) < 0]
    expected = kendalltau([r["mflops"] for r in rows], [r["latency_ms"] for r in rows])
    assert order.discordant == len(wrong) and order.pairs == 60 * 59 // 2
    assert (order.tau, order.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    gaps = sorted((abs(a["latency_ms"] - b["latency_ms"]) for a, b in wrong), reverse=True)[:4]
    assert [b["latency_ms"] - a["latency_ms"] for a, b in order.misordered] == pytest.approx([-g for g in gaps])
    assert all(a["mflops"] < b["mflops"] for a, b in order.misordered)


def test_report_of_a_latency_budgeted_run(tmp_path):
    from scipy.stats import kendalltau

    run, rows, rejected = latency_run(tmp_path)
    write_report(run)
    out = run / "report"
    for png in ("latency.png", "flops_latency.png"):
        assert matplotlib.image.imread(out / png).shape[0] > 300
    md = (out / "report.md").read_text()
    assert ("**budget**: 40 MFLOPs (multiply-adds) at 224px and 3 ms on rpi4 (onnxruntime, batch 1, 2 threads, "
            "224px)") in md
    assert "latency on rpi4 (ms, median; onnxruntime, batch 1, 2 threads, 224px)" in md
    assert "node a1b2c3" in md and "cpu Cortex-A72, threads 2, onnxruntime 1.22.0" in md
    distinct = list({r["arch_hash"]: r for r in reversed(rows)}.values()) + rejected  # first trial of each genome
    tau = kendalltau([r["mflops"] for r in distinct], [r["latency_ms"] for r in distinct]).statistic
    assert f"over the {len(distinct)} distinct candidates ({len(distinct) - 2} trained, 2 refused for latency): " \
           f"{tau:.3f}" in md
    section = md.split("## Candidates refused for latency, never trained (2; rejected.jsonl)\n", 1)[1]
    assert "| trial 36 |" in section and "latency 3.860 ms > budget 3 ms on rpi4" in section
    assert "| shufflenet_v2_x0_5 |" not in section.split("\n## ")[0]  # zoo names are baselines', not here
    html = (out / "report.html").read_text()
    assert_self_contained(html)
    assert html.count("data:image/png;base64,") == 4 and "Does FLOPs order speed?" in html


def test_report_of_a_latency_only_budget_with_latency_objective(tmp_path):
    run, _, _ = latency_run(tmp_path, "latonly")
    config = json.loads((run / "config.json").read_text())
    config["budget"].update(flops_capped=False, mflops=500.0)  # the space's dearest, not a cap
    config["objectives"] = ["acc", "latency"]
    (run / "config.json").write_text(json.dumps(config))
    (run / "rejected.jsonl").unlink()
    write_report(run)
    md = (run / "report" / "report.md").read_text()
    assert "**budget**: 3 ms on rpi4 (onnxruntime, batch 1, 2 threads, 224px)\n" in md
    assert "(latency.png)" not in md and "(pareto.png)" in md  # the front is accuracy against latency already
    assert "reference point (1.1, 1) = (3.3 ms, accuracy 0)" in md  # scaled by the latency budget
    assert "None: every candidate the study proposed was within the latency budget." in md
