"""The report's figures as PNG bytes: accuracy against a cost, search progress, overlaid fronts.

Each figure is a `matplotlib.figure.Figure` drawn to PNG without pyplot: no backend is selected and
no global figure is kept, so the caller's matplotlib is left as it was. matplotlib is imported when a
figure is made, so `import shufflesearch` stays light.
"""

from __future__ import annotations

import io
from typing import Any, Iterable, Mapping, Sequence

from shufflesearch.runs._pareto import ACC, budget_of, finite, full_fidelity, progress, within_budget
from shufflesearch.runs._run import Run
from shufflesearch.space._objectives import COSTS, Objective


def _subplots(figsize: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _png(fig: Any) -> bytes:
    """The figure as PNG bytes (savefig draws a PNG with matplotlib's Agg canvas, whatever the backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _xy(rows: Iterable[Mapping[str, Any]], axis: Objective) -> tuple[list[float], list[float]]:
    pts = [(r[axis.field] / axis.display, r[ACC]) for r in rows if finite(r.get(axis.field)) and finite(r.get(ACC))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _step_front(ax: Any, front: Sequence[Mapping[str, Any]], axis: Objective, **style: Any) -> None:
    """The front as the attainment staircase: accuracy holds from each point until a cheaper-better one."""
    xs, ys = _xy(front, axis)
    if xs:
        ax.step(xs, ys, where="post", **style)


def _budget_line(ax: Any, config: Mapping[str, Any], axis: Objective) -> None:
    budget = budget_of(config, axis)
    if budget is not None:
        ax.axvline(budget / axis.display, color="tab:red", linestyle="--", linewidth=1.2,
                   label=f"budget {budget / axis.display:g} {axis.unit}")


def _finish(ax: Any, handles: list | None = None) -> None:
    """Grid, and the legend below the axes where it never hides a point."""
    ax.grid(True, alpha=0.3)
    handles = handles or ax.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=3, fontsize=9, frameon=False)


def _acc_label(config: Mapping[str, Any], legacy: bool = False) -> str:
    proxy = config.get("proxy") or {}
    what = ", ".join(str(v) for v in (proxy.get("dataset"), proxy.get("epochs") and f"{proxy['epochs']} epochs")
                     if v)
    split = "old run: val split (may be test)" if legacy else "search-validation"
    return f"top-1 accuracy, {split} (proxy{': ' + what if what else ''})"


def _label_column(ax: Any, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
    """Label points in a column right of the rightmost, in accuracy order, with leader lines: baselines
    of similar cost and accuracy would print over each other next to their points. A column that would
    rise above the axes is moved down as a whole, to end at their top."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    column_x, gap = max(xs) + 0.06 * (x1 - x0), 0.05 * (y1 - y0)
    points = sorted(zip(ys, xs, names))
    placed: list[float] = []
    for y, _, _ in points:
        placed.append(max(y, placed[-1] + gap) if placed else y)
    shift = max(0.0, placed[-1] - y1) if placed else 0.0
    for (y, x, name), text_y in zip(points, placed):
        ax.annotate(name, (x, y), xytext=(column_x, text_y - shift), textcoords="data", fontsize=8, va="center",
                    annotation_clip=False, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6},
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def above_budget(row: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    """Whether a baseline's recorded cost is above its run's budget (`runs.within_budget`): an extra."""
    return "budget" in config and not within_budget(row, config["budget"])


def _baselines(ax: Any, run: Run, axis: Objective) -> None:
    """The zoo baselines, labelled: filled diamonds within the run's budget, hollow ones above it (extras)."""
    named = [r for r in run.baselines if finite(r.get(axis.field)) and finite(r.get(ACC))]
    over = [above_budget(r, run.config) for r in named]
    for is_over, style in ((False, {"color": "black", "label": "hand-designed (zoo, same protocol), within budget"}),
                           (True, {"facecolor": "none", "edgecolor": "black",
                                   "label": "hand-designed, above budget (extras)"})):
        group = [r for r, o in zip(named, over) if o == is_over]
        if group:
            ax.scatter(*_xy(group, axis), marker="D", s=42, **style)
    if named:
        _label_column(ax, *_xy(named, axis), [r.get("model", "?") + (" (above budget)" if o else "")
                                             for r, o in zip(named, over)])


def _greedy_mark(ax: Any, greedy: Mapping[str, Any] | None, axis: Objective) -> None:
    """The FLOPs-greedy pick: a star at its last search accuracy, whatever its fidelity."""
    xs, ys = _xy([greedy] if greedy else [], axis)
    if xs:
        ax.scatter(xs, ys, marker="*", s=190, color="tab:green", edgecolor="black", linewidth=0.6, zorder=5,
                   label=f"FLOPs-greedy pick (trial {greedy.get('number')}, {greedy.get('status')})")


def pareto_png(run: Run, axis: Objective, front: list[dict], greedy: Mapping[str, Any] | None = None,
               baselines: bool = True) -> bytes:
    """Every trial against `axis`, the front as a step line, the budget, the labelled baselines (hollow above
    the budget; `baselines` False: not drawn, their cost not measured as the trials' was) and the FLOPs-greedy
    pick `greedy` (a trial row; None: not marked)."""
    fig, ax = _subplots((8.5, 5.5))
    full = full_fidelity(run.trials)
    full_ids = {id(r) for r in full}
    others = [r for r in run.trials if r.get("status") in ("complete", "early_stopped") and id(r) not in full_ids]
    if others:
        ax.scatter(*_xy(others, axis), s=18, color="0.72", label=f"early-stopped / lower fidelity ({len(others)})")
    if full:
        epochs = full[0]["max_epochs"]
        ax.scatter(*_xy(full, axis), s=22, color="tab:blue", alpha=0.75, label=f"complete, {epochs} epochs ({len(full)})")
    _step_front(ax, front, axis, color="tab:orange", linewidth=1.8)
    ax.scatter(*_xy(front, axis), s=60, facecolor="none", edgecolor="tab:orange", linewidth=1.8,
               label=f"Pareto front ({len(front)})")
    _greedy_mark(ax, greedy, axis)
    if baselines:
        _baselines(ax, run, axis)
    _budget_line(ax, run.config, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(_acc_label(run.config, run.legacy))
    ax.set_title(f"{run.name}: accuracy against {axis.label}")
    _finish(ax)
    return _png(fig)


def progress_png(run: Run, axis: Objective, scale: float) -> bytes:
    """Best accuracy and hypervolume against trial number (`pareto.progress`)."""
    points = progress(run.trials, axis, scale)
    fig, ax = _subplots((8.5, 4.2))
    n = [p[0] for p in points]
    ax.plot(n, [p[1] for p in points], color="tab:blue", drawstyle="steps-post", label="best accuracy (full fidelity)")
    ax.set_xlabel("trial number")
    ax.set_ylabel("best search-validation top-1 accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(n, [p[2] for p in points], color="tab:orange", drawstyle="steps-post", label=f"hypervolume (acc, {axis.name})")
    ax2.set_ylabel(f"hypervolume (acc, {axis.name} / {scale:g})", color="tab:orange")
    ax.set_title(f"{run.name}: search progress")
    _finish(ax, ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0])
    return _png(fig)


def compare_png(runs: Sequence[Run], fronts: Sequence[list[dict]], axis: Objective) -> bytes:
    """The runs' full-fidelity trials and fronts overlaid, one colour a run; the first run's budget."""
    fig, ax = _subplots((8.5, 5.5))
    for i, (run, front) in enumerate(zip(runs, fronts)):
        color = f"C{i % 10}"
        ax.scatter(*_xy(full_fidelity(run.trials), axis), s=12, color=color, alpha=0.3)
        _step_front(ax, front, axis, color=color, linewidth=1.8)
        ax.scatter(*_xy(front, axis), s=40, color=color, label=f"{run.name} ({run.config.get('sampler', '?')}): front")
    _budget_line(ax, runs[0].config, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(_acc_label(runs[0].config, any(r.legacy for r in runs)))
    ax.set_title("Pareto fronts: " + " vs ".join(r.name for r in runs))
    _finish(ax)
    return _png(fig)


def final_png(run: Run) -> bytes:
    """Final evaluation: test accuracy mean ± sd over seeds against MFLOPs, found, greedy and zoo side by side."""
    fig, ax = _subplots((8.5, 5.5))
    final = run.final or {}
    done = [c for c in final.get("candidates", []) if c.get("test_acc_mean") is not None]
    for kind, style in (("found", {"color": "tab:orange", "marker": "o", "label": "found (this run)"}),
                        ("greedy", {"color": "tab:green", "marker": "*", "markersize": 12,
                                    "label": "FLOPs-greedy pick (this run)"}),
                        ("zoo", {"color": "black", "marker": "D", "label": "hand-designed (zoo)"})):
        group = [c for c in done if c["kind"] == kind]
        if group:
            ax.errorbar([c["mflops"] for c in group], [c["test_acc_mean"] for c in group],
                        yerr=[c["test_acc_sd"] or 0.0 for c in group], linestyle="none", capsize=4, **style)
    if done:
        _label_column(ax, [c["mflops"] for c in done], [c["test_acc_mean"] for c in done],
                      [c["name"] for c in done])
    axis = COSTS["mflops"]
    _budget_line(ax, run.config, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(f"test top-1 accuracy, mean ± sd over seeds ({final.get('epochs', '?')} epochs from scratch)")
    ax.set_title(f"{run.name}: final evaluation on the test split ({final.get('dataset', '?')})")
    _finish(ax)
    return _png(fig)


def flops_latency_png(run: Run, trained: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]],
                      latency: Objective, misordered: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
                      tau: float) -> bytes:
    """Latency against MFLOPs of every candidate: `trained` (trial rows) and `rejected` (refused for latency,
    never trained), the run's budgets as lines, and the `misordered` pairs (fewer MFLOPs, yet slower) joined."""
    fig, ax = _subplots((8.5, 5.5))
    mflops = COSTS["mflops"]
    for i, (a, b) in enumerate(misordered):
        ax.plot([a["mflops"], b["mflops"]], [a[latency.field], b[latency.field]], color="tab:purple", linewidth=1,
                alpha=0.7, zorder=1, label=f"misordered by FLOPs: the {len(misordered)} largest latency gaps"
                if i == 0 else None)
    for rows, style in ((trained, {"s": 22, "color": "tab:blue", "alpha": 0.75, "label": f"trained ({len(trained)})"}),
                        (rejected, {"s": 30, "marker": "x", "color": "tab:red",
                                    "label": f"refused for latency, not trained ({len(rejected)})"})):
        if rows:
            ax.scatter([r["mflops"] for r in rows], [r[latency.field] for r in rows], zorder=2, **style)
    _budget_line(ax, run.config, mflops)
    limit = budget_of(run.config, latency)
    if limit is not None:
        ax.axhline(limit, color="tab:red", linestyle=":", linewidth=1.2, label=f"budget {limit:g} ms")
    ax.set_xlabel(mflops.label)
    ax.set_ylabel(latency.label)
    ax.set_title(f"{run.name}: latency against MFLOPs, Kendall tau-b {tau:.2f}")
    _finish(ax)
    return _png(fig)
