"""The report of one run (`write_report`) and the comparison of several (`compare_runs`).

A run's report is `runs/<run>/report/`: pareto.csv (the front), pareto.png, progress.png, and one
page as report.md and a self-contained report.html. The front, the best trial and the hypervolume are
`pareto.py`'s; the figures `_plots.py`'s; the page `_page.py`'s. Early-stopped trials are plotted
greyed; failed and diverged trials are counted, not plotted. Where the trials have latencies, the page
adds accuracy against latency (latency.png) and latency against MFLOPs of every candidate, trained or
refused for latency (flops_latency.png), with Kendall's tau between the two and the pairs FLOPs misorder. `compare_runs` writes
`compare_<run>_vs_<run>.{png,md,html}` into `out_dir` (the CLI's `--out`, by default the first run's
`report/`). Every file is written atomically through `_io`.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from shufflesearch._exec._progress import duration
from shufflesearch._io import write_text_atomic
from shufflesearch.errors import errors_from
from shufflesearch.report._page import Block, fmt, write_page
from shufflesearch.report._plots import (
    above_budget,
    compare_png,
    final_png,
    flops_latency_png,
    pareto_png,
    progress_png,
)
from shufflesearch.runs._pareto import (
    ACC,
    REFERENCE,
    best_row,
    budget_of,
    by_accuracy,
    cost_scale,
    finite,
    front_hypervolume,
    full_fidelity,
    full_fidelity_acc,
    greedy_pick,
    pareto_front,
)
from shufflesearch.runs._records import STATUSES
from shufflesearch.runs._run import Run, load_run
from shufflesearch.space._file import Budget
from shufflesearch.space._objectives import COSTS, Objective, cost_axis

LEGACY_NOTE = ("Old run, recorded before shufflesearch held out a search-validation split: its trials were "
               "scored on the dataset's own validation split, which for most datasets is the test split, so "
               "these accuracies are optimistic as estimates of test accuracy.")


# --- the report of one run -------------------------------------------------------------------------
CSV_FIELDS = ("number", "model", "arch_hash", "summary", "mflops", "params", "proxy_params", "latency_ms",
              "latency_iqr_ms", "search_acc", "best_search_acc", "epochs", "max_epochs", "seconds", "arch")


def _pareto_csv(front: Sequence[Mapping[str, Any]], models: Mapping[int, list[str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in front:
        w.writerow({**r, "model": " ".join(models.get(r.get("number"), [])),
                    "arch": json.dumps(r.get("arch"), sort_keys=True, separators=(",", ":"))})
    return buf.getvalue()


def run_budget(run: Run) -> Budget | None:
    """The run's budget (config.json "budget") as a `Budget`, for its words (`Budget.describe`); None: none recorded."""
    recorded = run.config.get("budget")
    if not recorded:
        return None
    with errors_from(f"{run.path / 'config.json'}: budget"):
        return Budget.from_record(recorded)


def _settings(run: Run, budget: Budget | None) -> list[tuple[str, str]]:
    c = run.config
    compact = lambda d: ", ".join(f"{k}={v}" for k, v in (d or {}).items() if k not in ("label_names", "mean", "std"))  # noqa: E731
    kv = [("run", run.name), ("directory", str(run.path)),
          ("search space", f"{c.get('space_name', '?')} ({c.get('space_file', '?')})"),
          ("budget", "? (config.json has none)" if budget is None else budget.describe()
                     + (f", at most {budget.max_params:,} params" if budget.max_params else "")),
          ("cost basis", f"every MFLOPs and params figure: at {budget.input_size if budget else '?'}px, 3 channels, "
                         f"{budget.num_classes if budget else 1000}-way classifier (what the budget caps)"),
          ("objectives", ", ".join(c.get("objectives") or ["?"])),
          ("sampler / scheduler", f"{c.get('sampler', '?')} / {c.get('scheduler', '?')}"),
          ("trials planned / finished", f"{c.get('trials', '?')} / {len(run.trials)}"),
          ("seed", str(c.get("seed", "?"))),
          ("evaluator", c.get("evaluator", "proxy") + (f" (weight-sharing supernet: {compact(c['supernet'])}; a trial's "
                                                       "search acc is its inherited path's, BN re-estimated)"
                                                       if c.get("supernet") else "")),
          ("proxy protocol", compact(c.get("proxy"))),
          ("proxy data", compact(c.get("data"))),
          ("started", str(c.get("started", "?"))),
          ("finished", str((run.summary or {}).get("finished", "not yet (no summary.json)")))]
    return kv


def _status_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for r in rows:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return counts


def _front_table(front: Sequence[Mapping[str, Any]], axis: Objective, models: Mapping[int, list[str]]) -> Block:
    headers = ["trial", "timm name", "search acc", "MFLOPs", "params", "latency ms", "epochs", "genome", "hash"]
    rows = [[r.get("number"), ", ".join(models.get(r.get("number"), [])), fmt(r.get("search_acc")),
             fmt(r.get("mflops")), fmt(r.get("params")), fmt(r.get("latency_ms"), 3), r.get("epochs"),
             r.get("summary", ""), r.get("arch_hash", "")] for r in front]
    return ("table", headers, rows)


def _baseline_blocks(baselines: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> list[Block]:
    """The zoo baselines' table, each marked within the budget or above it (an extra, not a like-for-like
    comparison); one line where none is within it."""
    headers = ["zoo model", "budget", "search acc", "MFLOPs", "params", "latency ms", "epochs", "status"]
    over = [above_budget(r, config) for r in baselines]
    rows = [[r.get("model", "?"), "above budget" if o else "within", fmt(r.get("search_acc")), fmt(r.get("mflops")),
             fmt(r.get("params")), fmt(r.get("latency_ms"), 3), r.get("epochs"), r.get("status")]
            for r, o in zip(baselines, over)]
    none_within = [("p", "No zoo model here fits the budget: every baseline is above it, so none compares with "
                         "the search's trials at equal cost.")] if all(over) else []
    return [("h", "Hand-designed baselines (same proxy protocol, search-validation split)"), *none_within,
            ("table", headers, rows)]


def _not_compared(row: Mapping[str, Any]) -> str:
    """Why a trial has no full-fidelity accuracy to compare: its status and the epochs it trained."""
    return (f"none: {row.get('status')} after {row.get('epochs')} of {row.get('max_epochs')} epochs, "
            "not trained to full fidelity in this run")


def _pick_row(label: str, row: Mapping[str, Any] | None, acc: float | None) -> list[Any]:
    """A row of the "what the search bought" table: the trial, its cost and its full-fidelity accuracy."""
    if row is None:
        return [label, "", "", "", "none: no full-fidelity trial yet"]
    return [label, row.get("number"), fmt(row.get("mflops")), fmt(row.get("params")),
            f"{acc:.4f}" if acc is not None else _not_compared(row)]


def _bought_blocks(rows: Sequence[Mapping[str, Any]], best: Mapping[str, Any] | None,
                   greedy: Mapping[str, Any] | None, budget: Mapping[str, Any]) -> list[Block]:
    """What the search bought: its top-1 (`best`) against the FLOPs-greedy pick (`runs.greedy_pick`), both
    on the search-validation split; the greedy pick's accuracy only where the run trained it to full fidelity."""
    head: Block = ("h", "What the search bought (search-validation split)")
    if greedy is None:
        return [head, ("p", f"No trial within the budget ({budget.get('mflops')} MFLOPs) that did not fail: "
                            "no FLOPs-greedy pick.")]
    greedy_acc = full_fidelity_acc(rows, greedy)
    picks = [("found top-1", best, None if best is None else best[ACC]), ("FLOPs-greedy pick", greedy, greedy_acc)]
    table = [_pick_row(label, r, acc) for label, r, acc in picks]
    diff = "found top-1 − FLOPs-greedy pick: "
    if best is None or greedy_acc is None:
        diff += "not measured (no full-fidelity accuracy for both)."
    else:
        same = " (the search's top-1 is the greedy pick itself)" if best.get("number") == greedy.get("number") else ""
        diff += f"{100 * (best[ACC] - greedy_acc):+.2f} points of search-validation accuracy{same}."
    return [head,
            ("p", "The FLOPs-greedy pick is the run's costliest candidate within the budget (most multiply-adds; "
                  "ties: fewest params, then the lowest trial number), trained or not: the choice a user makes "
                  "without training anything. Accuracies are top-1 on the search-validation split after the "
                  "run's proxy training, the split the search chose its top-1 by (so that one is biased upwards); "
                  "`shufflesearch final RUN --greedy` retrains both and compares them on the test split."),
            ("table", ["", "trial", "MFLOPs", "params", "search acc"], table), ("p", diff)]


def _rerank_blocks(run: Run) -> list[Block]:
    """The search's re-ranking of its near-ties (`driver._rerank`): both rankings of its candidates, on the
    search-validation split."""
    plan, results = run.rerank_plan, run.rerank_results
    head: Block = ("h", "Re-ranking (search-validation split)")
    chose = (f"Candidates: the trials within {100 * plan['margin']:.2f} points of the leader's search-validation "
             f"accuracy ({plan['margin_se']:g} binomial standard errors on {plan['n']} images), at most "
             f"{run.config.get('rerank', {}).get('candidates', len(plan['candidates']))}.")
    if len(plan["candidates"]) < 2:
        return [head, ("p", chose + " Only the leader was: nothing was re-ranked, the best is the proxy's top-1.")]
    if results is None:
        return [head, ("p", chose + " The re-ranking is unfinished (resume the search): the best is the proxy's "
                            "top-1.")]
    trials = {r["number"]: r for r in run.trials}
    objectives = run.config.get("objectives")
    proxy_rank = {n: i for i, n in enumerate(plan["candidates"], 1)}
    order = {r["number"]: i for i, r in enumerate(by_accuracy(run.trials, objectives, run.reranked), 1)}
    best = best_row(run.trials, objectives, run.reranked)
    images = "all the training images" if plan["subset_per_class"] is None else \
        f"{plan['subset_per_class']} training images a class"
    rows = [[r["number"], fmt(trials[r["number"]].get("mflops")), f"{trials[r['number']][ACC]:.4f}",
             proxy_rank[r["number"]], "none complete" if r["mean"] is None else
             f"{r['mean']:.4f}" + ("" if r["sd"] is None else f" ± {r['sd']:.4f}"),
             order.get(r["number"], "") if r["mean"] is not None else "", len(r["accs"]), f"{r['cpu_seconds']:.0f}",
             trials[r["number"]].get("summary", "")]
            for r in sorted(results, key=lambda r: proxy_rank[r["number"]])]
    return [head,
            ("p", chose + f" Each was trained again from scratch for {plan['max_epochs']} epochs on "
                  f"{images} (search-validation excluded), seeds {plan['seeds']}, and scored on the same "
                  "search-validation split; the best and the front's top come from the mean (sample sd over seeds). "
                  f"Best: trial {best['number'] if best else '-'}; the proxy's top-1 was trial "
                  f"{plan['candidates'][0]}. "
                  f"CPU time of the re-ranking: {sum(r['cpu_seconds'] for r in results):.0f} s."),
            ("table", ["trial", "MFLOPs", "proxy search acc", "proxy rank", "re-ranked search acc (mean ± sd)",
                       "re-ranked rank", "seeds", "CPU s", "genome"], rows)]


def _reference_text(axis: Objective, scale: float) -> str:
    return (f"normalised space: x = {axis.name} / {scale:g}, y = 1 - accuracy; reference point "
            f"({REFERENCE[0]:g}, {REFERENCE[1]:g}) = ({REFERENCE[0] * scale / axis.display:g} {axis.unit}, "
            f"accuracy 0); the largest possible value is {REFERENCE[0] * REFERENCE[1]:g}")


def _best_text(best: Mapping[str, Any], axis: Objective) -> str:
    cost = best.get(axis.field)
    where = f", {fmt(cost / axis.display)} {axis.unit}" if finite(cost) else ""
    return f"{best[ACC]:.4f} (trial {best.get('number')}{where})"


def _final_blocks(final: Mapping[str, Any]) -> list[Block]:
    """The final evaluation (`shufflesearch final`): test accuracy mean ± sd per architecture."""
    rows = [[c["kind"], c["name"], fmt(c.get("mflops")), fmt(c.get("params")), fmt(c.get("search_acc")),
             "" if c.get("test_acc_mean") is None else f"{c['test_acc_mean']:.4f}",
             "" if c.get("test_acc_sd") is None else f"{c['test_acc_sd']:.4f}", c["seeds"], c["summary"]]
            for c in sorted(final["candidates"], key=lambda c: c["mflops"])]
    return [("h", "Final evaluation (test split)"),
            ("p", f"Retrained from scratch on the whole training split for {final['epochs']} epochs, "
                  f"{len(final['protocol']['seeds'])} seeds each (seeds {final['protocol']['seeds']}), and scored once "
                  f"on the test split of {final['dataset']}, which no search trial read. Search accuracy is the "
                  "trial's short proxy on the search-validation split, the number it was chosen by."),
            ("img", "final.png", "test accuracy mean ± sd against MFLOPs, found, FLOPs-greedy pick and zoo"),
            ("table", ["kind", "name", "MFLOPs", "params", "search acc", "test acc mean", "test acc sd", "seeds",
                       "genome"], rows)]


# --- latency ----------------------------------------------------------------------------------------
def latency_axis(budget: Budget | None) -> Objective:
    """The latency cost as the run recorded it: with a latency budget, the median on its target (the label
    names the target and settings; the budget is drawn); else each trial's own measurement."""
    if budget is None or budget.latency_ms is None:
        return COSTS["latency"]
    lat = budget.latency
    how = "predicted from a table built there" if lat.table else "median"
    return replace(COSTS["latency"], budget_key="latency_ms",
                   label=f"latency on {lat.target} (ms, {how}; {lat.backend}, batch {lat.batch}, {lat.threads} "
                         f"thread{'s' if lat.threads > 1 else ''}, {budget.latency_size}px)")


@dataclass(frozen=True)
class Ordering:
    """How well MFLOPs order candidates by latency: Kendall's tau-b (`scipy.stats.kendalltau`) and its
    p-value, the discordant pairs (fewer MFLOPs yet slower) among all pairs, and the `misordered` ones with
    the largest latency gaps, each as (fewer MFLOPs but slower, more MFLOPs but faster)."""
    tau: float
    p_value: float
    discordant: int
    pairs: int
    misordered: list[tuple[dict, dict]]


def flops_latency_order(rows: Sequence[Mapping[str, Any]], field: str = "latency_ms", worst: int = 5) -> Ordering:
    """`Ordering` of `rows` (at least 2, each with finite `mflops` and `field`). Pairs are counted one row at a
    time against the rows after it: memory stays linear in the candidates, which may be thousands."""
    import numpy as np
    from scipy.stats import kendalltau

    m = np.array([r["mflops"] for r in rows], dtype=float)
    ms = np.array([r[field] for r in rows], dtype=float)
    result = kendalltau(m, ms)
    discordant, largest = 0, []  # (latency gap, i, j) of the `worst` largest discordant pairs so far
    for i in range(len(rows) - 1):
        wrong = np.sign(m[i + 1:] - m[i]) * np.sign(ms[i + 1:] - ms[i]) < 0
        discordant += int(wrong.sum())
        gaps = np.where(wrong, np.abs(ms[i + 1:] - ms[i]), -1.0)
        for j in np.argsort(gaps)[-worst:]:
            if gaps[j] >= 0:
                largest.append((float(gaps[j]), i, i + 1 + int(j)))
        largest = heapq.nlargest(worst, largest)
    misordered = [tuple(sorted((dict(rows[i]), dict(rows[j])), key=lambda r: r["mflops"])) for _, i, j in largest]
    n = len(rows)
    return Ordering(float(result.statistic), float(result.pvalue), discordant, n * (n - 1) // 2, misordered)


def _candidate(row: Mapping[str, Any]) -> str:
    """A candidate's name in a table: its trial number, else how it was drawn (an evolution's child)."""
    return f"trial {row['number']}" if row.get("number") is not None else str(row.get("origin") or "untried draw")


def _latency_text(run: Run, budget: Budget | None, lat: Objective) -> str:
    """What the latencies on this page are, where they were measured, and on what."""
    c = run.config
    if lat.budget_key is None:
        return ("Latency here is each trial's own measurement: the median of timed runs at batch 1, 1 thread, on the "
                "trial's device (proxy.latency_device), while other trials may share the machine; the run had no "
                "latency budget.")
    settings = budget.latency
    where = (f"predicted from the latency table {settings.table}" if settings.table else
             f"measured there before the candidate trained: the median of {settings.runs} timed runs after "
             f"{settings.warmup} untimed ones, on node {c.get('latency_node') or '?'}")
    fingerprint = ", ".join(f"{k} {v}" for k, v in (c.get("latency_fingerprint") or {}).items())
    return (f"Latency here is the budget's, {lat.label}: {where}. Target fingerprint: {fingerprint or 'not recorded'}. "
            "The zoo baselines are not plotted against latency: theirs was measured in their own trial, not on the "
            "target.")


def _latency_blocks(run: Run, budget: Budget | None, lat: Objective, plotted: bool) -> tuple[list[Block], dict]:
    """The latency sections and their images: accuracy against latency (unless the main plot is that,
    `plotted`), latency against MFLOPs of every candidate with Kendall's tau, and the refused candidates."""
    blocks: list[Block] = [("h", f"Accuracy against {lat.name} (search-validation split)"),
                           ("p", _latency_text(run, budget, lat))]
    images: dict[str, bytes] = {}
    if not plotted:
        images["latency.png"] = pareto_png(run, lat, pareto_front(run.trials, ("acc", "latency"), run.reranked),
                                           baselines=lat.budget_key is None)
        blocks.append(("img", "latency.png", f"accuracy against {lat.label}"))
    first = {}  # one point an architecture: its first trial
    for r in run.trials:
        if finite(r.get("mflops")) and finite(r.get(lat.field)):
            first.setdefault(r.get("arch_hash"), r)
    trained = list(first.values())
    rejected = [r for r in run.rejected if finite(r.get("mflops")) and finite(r.get(lat.field))]
    blocks.append(("h", "Does FLOPs order speed? Latency against MFLOPs of every candidate"))
    if len(trained) + len(rejected) < 3:
        blocks.append(("p", "Fewer than 3 candidates with a latency: no ranking to compare."))
    else:
        order = flops_latency_order(trained + rejected, lat.field)
        images["flops_latency.png"] = flops_latency_png(run, trained, rejected, lat, order.misordered, order.tau)
        blocks += [
            ("img", "flops_latency.png", "latency against MFLOPs of every candidate, trained and refused"),
            ("p", f"Kendall's tau-b between MFLOPs and latency over the {len(trained) + len(rejected)} distinct "
                  f"candidates ({len(trained)} trained, {len(rejected)} refused for latency): {order.tau:.3f} "
                  f"(p = {order.p_value:.2g}, scipy.stats.kendalltau). FLOPs misorder speed in {order.discordant:,d} "
                  f"of {order.pairs:,d} pairs ({100 * order.discordant / order.pairs:.1f}%): the one with fewer "
                  "MFLOPs is the slower. The largest latency gaps among them:")]
        blocks.append(("table", ["fewer MFLOPs", "MFLOPs", "ms", "more MFLOPs", "MFLOPs", "ms", "slower by ms",
                                 "genome of the slower"],
                       [[_candidate(a), fmt(a["mflops"]), fmt(a[lat.field], 3), _candidate(b), fmt(b["mflops"]),
                         fmt(b[lat.field], 3), fmt(a[lat.field] - b[lat.field], 3), a.get("summary", "")]
                        for a, b in order.misordered]))
    if lat.budget_key is not None:
        blocks += _rejected_blocks(run.rejected)
    return blocks, images


REJECTED_SHOWN = 50  # rows of the refused candidates' table; all are in rejected.jsonl


def _rejected_blocks(rejected: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The candidates the latency budget refused (rejected.jsonl), each with its reason."""
    head: Block = ("h", f"Candidates refused for latency, never trained ({len(rejected)}; rejected.jsonl)")
    if not rejected:
        return [head, ("p", "None: every candidate the study proposed was within the latency budget.")]
    rows = [[_candidate(r), fmt(r.get("mflops")), fmt(r.get("params")), fmt(r.get("latency_ms"), 3),
             fmt(r.get("latency_iqr_ms"), 3), fmt(r.get("budget_latency_ms")), r.get("reason", ""),
             r.get("summary", "")] for r in rejected[:REJECTED_SHOWN]]
    more = [("p", f"The first {REJECTED_SHOWN} of {len(rejected)}; rejected.jsonl holds them all.")] \
        if len(rejected) > REJECTED_SHOWN else []
    return [head, ("table", ["candidate", "MFLOPs", "params", "latency ms", "IQR ms", "budget ms", "reason",
                             "genome"], rows), *more]


def write_report(run_dir: str | Path, objectives: str | Sequence[str] | None = None) -> Path:
    """Write runs/<run>/report/ (pareto.csv, pareto.png, progress.png, report.html, report.md); return the HTML path.

    `objectives` defaults to the run's own (config.json) when it is a pair, else accuracy against MFLOPs.
    """
    run = load_run(run_dir)
    budget = run_budget(run)
    lat = latency_axis(budget)
    axis = cost_axis(objectives if objectives is not None else run.config.get("objectives"))
    axis = lat if axis.name == "latency" else axis
    out = run.path / "report"
    front = pareto_front(run.trials, ("acc", axis.name), run.reranked)  # as exported
    scale = cost_scale(run.config, axis, run.trials + run.baselines)
    hv = front_hypervolume(pareto_front(run.trials, ("acc", axis.name)), axis, scale)  # one fidelity: the proxy's
    write_text_atomic(out / "pareto.csv", _pareto_csv(front, run.models))
    greedy = greedy_pick(run.trials, run.config["budget"]) if "budget" in run.config else None
    images = {"pareto.png": pareto_png(run, axis, front, greedy), "progress.png": progress_png(run, axis, scale)}

    counts = _status_counts(run.trials)
    summary = run.summary or {}
    best = best_row(run.trials, run.config.get("objectives"), run.reranked)  # as exported, whatever cost is plotted
    blocks: list[Block] = [("p", LEGACY_NOTE)] if run.legacy else []
    blocks += [
        ("h", "Run settings"), ("kv", _settings(run, budget)),
        ("h", "Outcome"),
        ("kv", [("trial status", ", ".join(f"{k}: {v}" for k, v in counts.items())),
                ("wall time", duration(summary.get("wall_seconds"))
                 + (f" (training {duration(summary.get('train_seconds'))})" if "train_seconds" in summary else "")),
                ("best full-fidelity accuracy", "none yet" if best is None else _best_text(best, axis)),
                (f"hypervolume (acc, {axis.name})", f"{hv:.4f}"),
                ("hypervolume reference", _reference_text(axis, scale))]),
        ("h", f"Accuracy against {axis.label}"), ("img", "pareto.png", f"Pareto front: accuracy against {axis.label}"),
        *(_bought_blocks(run.trials, best, greedy, run.config["budget"]) if "budget" in run.config else []),
    ]
    if any(finite(r.get(lat.field)) for r in run.trials + run.rejected):
        more, pngs = _latency_blocks(run, budget, lat, plotted=axis.name == "latency")
        blocks += more
        images.update(pngs)
    blocks += [
        ("h", "Search progress"), ("img", "progress.png", "best accuracy and hypervolume against trial number"),
        ("h", f"Pareto front ({len(front)} trials, full fidelity; also in pareto.csv)"),
        _front_table(front, axis, run.models) if front else ("p", "No full-fidelity trial yet."),
    ]
    if run.rerank_plan is not None:
        blocks += _rerank_blocks(run)
    if run.baselines:
        blocks += _baseline_blocks(run.baselines, run.config)
    if run.final:
        images["final.png"] = final_png(run)
        blocks += _final_blocks(run.final)
    blocks += [("h", "Reproduce"), ("code", str(run.config.get("command", "(config.json has no command)")))]
    return write_page(out, "report", f"shufflesearch report: {run.name}", blocks, images)


# --- several runs ----------------------------------------------------------------------------------
def _best_under_budget(rows: Sequence[Mapping[str, Any]], config: Mapping[str, Any], axis: Objective) -> float | None:
    budget = budget_of(config, axis)
    ok = [r[ACC] for r in full_fidelity(rows) if finite(r.get(ACC))
          and (budget is None or (finite(r.get(axis.field)) and r[axis.field] <= budget))]
    return max(ok, default=None)


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                 objectives: str | Sequence[str] | None = None) -> Path:
    """Overlay the fronts of several runs and tabulate hypervolume and best accuracy under the budget.

    All runs share one normalisation (the largest of their scales) and the reference point. Writes
    compare_<a>_vs_<b>.{png,md,html} into `out_dir` (default: the first run's report/); returns the HTML.
    """
    runs = [load_run(r) for r in run_dirs]
    axis = cost_axis(objectives if objectives is not None else runs[0].config.get("objectives"))
    scale = max(cost_scale(r.config, axis, r.trials + r.baselines) for r in runs)
    fronts = [pareto_front(run.trials, ("acc", axis.name)) for run in runs]
    table = []
    for run, front in zip(runs, fronts):
        best = _best_under_budget(run.trials, run.config, axis)
        table.append([run.name, run.config.get("sampler", "?"), run.config.get("scheduler", "?"),
                      len(run.trials), len(front), f"{front_hypervolume(front, axis, scale):.4f}",
                      "" if best is None else f"{best:.4f}"])
    stem = "compare_" + "_vs_".join(r.name for r in runs)
    out = Path(out_dir) if out_dir is not None else runs[0].path / "report"
    blocks: list[Block] = [
        ("img", f"{stem}.png", "overlaid Pareto fronts"),
        ("table", ["run", "sampler", "scheduler", "finished trials", "front size", f"hypervolume (acc, {axis.name})",
                   f"best acc under budget ({axis.unit})"], table),
        ("p", "Hypervolume " + _reference_text(axis, scale) + "; the same for every run here."),
    ]
    return write_page(out, stem, "shufflesearch: " + " vs ".join(r.name for r in runs), blocks,
                      {f"{stem}.png": compare_png(runs, fronts, axis)})
