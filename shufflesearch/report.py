"""Reading a finished (or running) search: Pareto front, hypervolume, plots and one self-contained page.

Conventions, fixed here once:

* **Objectives** are pairs: accuracy (`val_acc`, top-1 of the last epoch trained, maximised) against
  one cost (minimised): `mflops` (multiply-adds at the budget input size), `latency` (`latency_ms`)
  or `params`.
* **Fidelity.** Only full-fidelity rows form a front: status `complete` with `epochs == max_epochs`;
  if a run holds rows of several `max_epochs`, the highest is the front's fidelity. Early-stopped
  trials are plotted greyed; failed and diverged trials are counted, not plotted.
* **Ties.** A row is on the front if no other row is at least as good in both objectives and better
  in one. Of identical points (same cost, same accuracy) only the lowest trial number is kept: the
  front has one row per point, credited to the trial that found it first. Equal cost with different
  accuracy keeps the more accurate; equal accuracy with different cost keeps the cheaper.
* **Hypervolume** is computed in a normalised minimisation space: x = cost / scale, y = 1 - accuracy,
  against the reference point (1.1, 1.0), i.e. 10% over the scale at accuracy 0. The scale is the
  run's budget for that cost (`budget.mflops`, `budget.max_params`) or, with no budget (latency), the
  largest value among the rows plotted; runs compared together share the largest of their scales.
  Our own 2-D sweep (Optuna's hypervolume is private API); tests hold it against inclusion-exclusion.

Plots use matplotlib's Agg backend; every file is written atomically through `_io`.
`compare_runs` writes `compare_<run>_vs_<run>.{png,md,html}` into `out_dir` (the CLI's `--out`,
by default the first run's `report/`).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ._io import write_bytes_atomic, write_text_atomic
from .errors import ShuffleSearchError
from .records import STATUSES, is_full_fidelity, read_rows

REFERENCE = (1.1, 1.0)  # normalised (cost / scale, 1 - accuracy)


@dataclass(frozen=True)
class CostAxis:
    """One cost objective: the trial-row field, the plot label, the display factor and the budget key."""

    name: str
    field: str
    label: str
    unit: str
    display: float = 1.0  # plotted value = row value / display
    budget_key: str | None = None


COSTS = {
    "mflops": CostAxis("mflops", "mflops", "MFLOPs (multiply-adds)", "MFLOPs", budget_key="mflops"),
    "latency": CostAxis("latency", "latency_ms", "latency (ms, batch 1, CPU)", "ms"),
    "params": CostAxis("params", "params", "params (millions, 1000-class head)", "M params", 1e6, "max_params"),
}
OBJECTIVE_CHOICES = " | ".join(f"acc,{name}" for name in COSTS)


def cost_axis(objectives: str | Sequence[str] | None) -> CostAxis:
    """The cost objective of `objectives` ('acc,mflops' or ['acc', 'mflops']); None means mflops."""
    if objectives is None:
        return COSTS["mflops"]
    names = [s.strip() for s in objectives.split(",")] if isinstance(objectives, str) else list(objectives)
    if len(names) == 1 and names[0] == "acc":  # a single-objective run is reported against MFLOPs
        return COSTS["mflops"]
    if len(names) != 2 or names[0] != "acc" or names[1] not in COSTS:
        raise ShuffleSearchError(f"objectives = {','.join(map(str, names))!r}: must be one of {OBJECTIVE_CHOICES}")
    return COSTS[names[1]]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(row: Mapping[str, Any]) -> float:
    return row["number"] if row.get("number") is not None else math.inf


def full_fidelity(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows trained to the run's full fidelity: complete, epochs == max_epochs, the highest max_epochs."""
    done = [r for r in rows if is_full_fidelity(r)]
    top = max((r["max_epochs"] for r in done), default=None)
    return [r for r in done if r["max_epochs"] == top]


def pareto_front(rows: Iterable[Mapping[str, Any]], objectives: str | Sequence[str] | None = None) -> list[dict]:
    """The non-dominated full-fidelity rows (max accuracy, min cost), cheapest first; ties: see module doc."""
    key = cost_axis(objectives).field
    candidates = [r for r in full_fidelity(rows) if _finite(r.get("val_acc")) and _finite(r.get(key))]
    candidates.sort(key=lambda r: (r[key], -r["val_acc"], _number(r)))
    front: list[dict] = []
    for r in candidates:
        if not front or r["val_acc"] > front[-1]["val_acc"]:
            front.append(dict(r))
    return front


def hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by 2-D minimisation `points` and bounded by `reference`; points beyond it add nothing."""
    rx, ry = reference
    inside = sorted((float(x), float(y)) for x, y in points if x < rx and y < ry)
    area, level = 0.0, ry
    for x, y in inside:
        if y < level:
            area += (rx - x) * (level - y)
            level = y
    return area


def budget_of(config: Mapping[str, Any], axis: CostAxis) -> float | None:
    """The run's budget for this cost (config.json "budget"), None where it has none."""
    value = (config.get("budget") or {}).get(axis.budget_key) if axis.budget_key else None
    return float(value) if _finite(value) and value > 0 else None


def cost_scale(config: Mapping[str, Any], axis: CostAxis, rows: Iterable[Mapping[str, Any]]) -> float:
    """The value that maps this cost to 1.0 in the normalised space: the budget, else the largest value."""
    budget = budget_of(config, axis)
    if budget is not None:
        return float(budget)
    return max((float(r[axis.field]) for r in rows if _finite(r.get(axis.field))), default=1.0) or 1.0


def front_hypervolume(front: Iterable[Mapping[str, Any]], axis: CostAxis, scale: float) -> float:
    return hypervolume(((r[axis.field] / scale, 1.0 - r["val_acc"]) for r in front), REFERENCE)


# --- reading a run directory ---------------------------------------------------------------------
@dataclass
class Run:
    """A run directory as the report reads it (format: notes RUN_FORMAT, written by search.py)."""

    path: Path
    config: dict
    trials: list[dict]
    baselines: list[dict]
    summary: dict | None
    models: dict[int, list[str]]  # trial number -> exported timm names

    @property
    def name(self) -> str:
        return self.config.get("name") or self.path.name


def resolve_run(run: str | Path) -> Path:
    """A run given as a path or as a name under runs/."""
    for path in (Path(run), Path("runs") / str(run)):
        if path.is_dir():
            return path
    raise ShuffleSearchError(f"run {str(run)!r}: no such run directory (looked for {run} and runs/{run})")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShuffleSearchError(f"{path}: unreadable JSON ({e})") from None


def _exported_models(run_dir: Path) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for cfg_path in sorted(run_dir.glob("models/*/config.json")):
        trial = (_read_json(cfg_path).get("shufflesearch") or {}).get("trial")
        if isinstance(trial, int):
            names.setdefault(trial, []).append(cfg_path.parent.name)
    return names


def load_run(run: str | Path) -> Run:
    """Read config.json, trials.jsonl, baselines.jsonl, summary.json and models/*/config.json."""
    path = resolve_run(run)
    trials_path = path / "trials.jsonl"
    if not trials_path.is_file():
        raise ShuffleSearchError(f"{trials_path}: missing (no trial of this run has finished yet?)")
    config_path = path / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    summary_path = path / "summary.json"
    return Run(
        path=path,
        config=config,
        trials=read_rows(trials_path),
        baselines=read_rows(path / "baselines.jsonl"),
        summary=_read_json(summary_path) if summary_path.is_file() else None,
        models=_exported_models(path),
    )


# --- plots -----------------------------------------------------------------------------------------
def _subplots(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure on the Agg backend; matplotlib is imported here so `import shufflesearch` stays light."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _xy(rows: Iterable[Mapping[str, Any]], axis: CostAxis) -> tuple[list[float], list[float]]:
    pts = [(r[axis.field] / axis.display, r["val_acc"]) for r in rows
           if _finite(r.get(axis.field)) and _finite(r.get("val_acc"))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _step_front(ax: Any, front: Sequence[Mapping[str, Any]], axis: CostAxis, **style: Any) -> None:
    """The front as the attainment staircase: accuracy holds from each point until a cheaper-better one."""
    xs, ys = _xy(front, axis)
    if xs:
        ax.step(xs, ys, where="post", **style)


def _budget_line(ax: Any, config: Mapping[str, Any], axis: CostAxis) -> None:
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


def _acc_label(config: Mapping[str, Any]) -> str:
    proxy = config.get("proxy") or {}
    what = ", ".join(str(v) for v in (proxy.get("dataset"), proxy.get("epochs") and f"{proxy['epochs']} epochs")
                     if v)
    return f"val top-1 accuracy (proxy{': ' + what if what else ''})"


def _pareto_png(run: Run, axis: CostAxis, front: list[dict]) -> bytes:
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
    bx, by = _xy(run.baselines, axis)
    if bx:
        ax.scatter(bx, by, marker="D", s=42, color="black", label="hand-designed (zoo, same protocol)")
        named = [r for r in run.baselines if _finite(r.get(axis.field)) and _finite(r.get("val_acc"))]
        _label_column(ax, bx, by, [r.get("model", "?") for r in named])
    _budget_line(ax, run.config, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(_acc_label(run.config))
    ax.set_title(f"{run.name}: accuracy against {axis.label}")
    _finish(ax)
    return _png(fig)


def _label_column(ax: Any, xs: Sequence[float], ys: Sequence[float], names: Sequence[str]) -> None:
    """Label points in a column right of the rightmost, in accuracy order, with leader lines: baselines
    of similar cost and accuracy would print over each other next to their points."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    column_x, gap = max(xs) + 0.06 * (x1 - x0), 0.05 * (y1 - y0)
    placed: list[float] = []
    for y, x, name in sorted(zip(ys, xs, names)):
        text_y = max(y, placed[-1] + gap) if placed else y
        placed.append(text_y)
        ax.annotate(name, (x, y), xytext=(column_x, text_y), textcoords="data", fontsize=8, va="center",
                    annotation_clip=False, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6},
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def progress(rows: Sequence[Mapping[str, Any]], axis: CostAxis, scale: float) -> list[tuple[int, float, float]]:
    """(trial number, best full-fidelity accuracy so far, hypervolume so far) after each finished trial."""
    ordered = sorted((r for r in rows if r.get("number") is not None), key=_number)
    out = []
    for i, r in enumerate(ordered):
        front = pareto_front(ordered[: i + 1], ("acc", axis.name))
        best = max((f["val_acc"] for f in front), default=math.nan)
        out.append((r["number"], best, front_hypervolume(front, axis, scale)))
    return out


def _progress_png(run: Run, axis: CostAxis, scale: float) -> bytes:
    points = progress(run.trials, axis, scale)
    fig, ax = _subplots((8.5, 4.2))
    n = [p[0] for p in points]
    ax.plot(n, [p[1] for p in points], color="tab:blue", drawstyle="steps-post", label="best accuracy (full fidelity)")
    ax.set_xlabel("trial number")
    ax.set_ylabel("best val top-1 accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(n, [p[2] for p in points], color="tab:orange", drawstyle="steps-post", label=f"hypervolume (acc, {axis.name})")
    ax2.set_ylabel(f"hypervolume (acc, {axis.name} / {scale:g})", color="tab:orange")
    ax.set_title(f"{run.name}: search progress")
    _finish(ax, ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0])
    return _png(fig)


# --- the page: one list of blocks, rendered as Markdown and as self-contained HTML ---------------
Block = tuple  # ("h", text) | ("p", text) | ("kv", [(k, v)]) | ("table", headers, rows) | ("img", file, alt) | ("code", text)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,d}"
    return str(value)


def _render_md(title: str, blocks: Sequence[Block]) -> str:
    out = [f"# {title}", ""]
    for b in blocks:
        if b[0] == "h":
            out += [f"## {b[1]}", ""]
        elif b[0] == "p":
            out += [b[1], ""]
        elif b[0] == "kv":
            out += [f"- **{k}**: {v}" for k, v in b[1]] + [""]
        elif b[0] == "table":
            cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
            out += ["| " + " | ".join(map(cell, b[1])) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b[2]] + [""]
        elif b[0] == "img":
            out += [f"![{b[2]}]({b[1]})", ""]
        elif b[0] == "code":
            out += ["```", b[1], "```", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{font-size:1.25em;
border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}table{border-collapse:collapse;
font-size:.88em;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;
vertical-align:top}th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}td.n{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.7em;
overflow-x:auto;white-space:pre-wrap}dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}
dt{font-weight:600}dd{margin:0}"""


def _render_html(title: str, blocks: Sequence[Block], images: Mapping[str, bytes]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for b in blocks:
        if b[0] == "h":
            out.append(f"<h2>{e(b[1])}</h2>")
        elif b[0] == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "kv":
            out.append("<dl>" + "".join(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>" for k, v in b[1]) + "</dl>")
        elif b[0] == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(
                f'<td class="n">{e(str(c))}</td>' if isinstance(c, (int, float)) or _numeric(c) else f"<td>{e(str(c))}</td>"
                for c in row) + "</tr>" for row in b[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b[0] == "img":
            data = base64.b64encode(images[b[1]]).decode()
            out.append(f'<p><img alt="{e(b[2])}" src="data:image/png;base64,{data}"></p>')
        elif b[0] == "code":
            out.append(f"<pre><code>{e(b[1])}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _numeric(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
        return True
    except ValueError:
        return False


def _write_page(out_dir: Path, stem: str, title: str, blocks: Sequence[Block], images: Mapping[str, bytes]) -> Path:
    for name, data in images.items():
        write_bytes_atomic(out_dir / name, data)
    write_text_atomic(out_dir / f"{stem}.md", _render_md(title, blocks))
    write_text_atomic(out_dir / f"{stem}.html", _render_html(title, blocks, images))
    return out_dir / f"{stem}.html"


# --- the report of one run -------------------------------------------------------------------------
CSV_FIELDS = ("number", "model", "arch_hash", "summary", "mflops", "params", "proxy_params", "latency_ms",
              "val_acc", "best_val_acc", "epochs", "max_epochs", "seconds", "arch")


def _pareto_csv(front: Sequence[Mapping[str, Any]], models: Mapping[int, list[str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in front:
        w.writerow({**r, "model": " ".join(models.get(r.get("number"), [])),
                    "arch": json.dumps(r.get("arch"), sort_keys=True, separators=(",", ":"))})
    return buf.getvalue()


def _duration(seconds: Any) -> str:
    if not _finite(seconds):
        return "unknown"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"


def _settings(run: Run) -> list[tuple[str, str]]:
    c = run.config
    budget = c.get("budget") or {}
    compact = lambda d: ", ".join(f"{k}={v}" for k, v in (d or {}).items() if k not in ("label_names", "mean", "std"))  # noqa: E731
    kv = [("run", run.name), ("directory", str(run.path)),
          ("search space", f"{c.get('space_name', '?')} ({c.get('space_file', '?')})"),
          ("budget", f"{budget.get('mflops', '?')} MFLOPs (multiply-adds) at {budget.get('input_size', '?')}px"
                     + (f", at most {budget['max_params']:,} params" if budget.get("max_params") else "")),
          ("objectives", ", ".join(c.get("objectives") or ["?"])),
          ("sampler / scheduler", f"{c.get('sampler', '?')} / {c.get('scheduler', '?')}"),
          ("trials planned / finished", f"{c.get('trials', '?')} / {len(run.trials)}"),
          ("seed", str(c.get("seed", "?"))),
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


def _front_table(front: Sequence[Mapping[str, Any]], axis: CostAxis, models: Mapping[int, list[str]]) -> Block:
    headers = ["trial", "timm name", "val acc", "MFLOPs", "params", "latency ms", "epochs", "genome", "hash"]
    rows = [[r.get("number"), ", ".join(models.get(r.get("number"), [])), _fmt(r.get("val_acc")),
             _fmt(r.get("mflops")), _fmt(r.get("params")), _fmt(r.get("latency_ms"), 3), r.get("epochs"),
             r.get("summary", ""), r.get("arch_hash", "")] for r in front]
    return ("table", headers, rows)


def _baseline_table(baselines: Sequence[Mapping[str, Any]]) -> Block:
    headers = ["zoo model", "val acc", "MFLOPs", "params", "latency ms", "epochs", "status"]
    rows = [[r.get("model", "?"), _fmt(r.get("val_acc")), _fmt(r.get("mflops")), _fmt(r.get("params")),
             _fmt(r.get("latency_ms"), 3), r.get("epochs"), r.get("status")] for r in baselines]
    return ("table", headers, rows)


def _reference_text(axis: CostAxis, scale: float) -> str:
    return (f"normalised space: x = {axis.name} / {scale:g}, y = 1 - accuracy; reference point "
            f"({REFERENCE[0]:g}, {REFERENCE[1]:g}) = ({REFERENCE[0] * scale / axis.display:g} {axis.unit}, "
            f"accuracy 0); the largest possible value is {REFERENCE[0] * REFERENCE[1]:g}")


def write_report(run_dir: str | Path, objectives: str | Sequence[str] | None = None) -> Path:
    """Write runs/<run>/report/ (pareto.csv, pareto.png, progress.png, report.html, report.md); return the HTML path.

    `objectives` defaults to the run's own (config.json) when it is a pair, else accuracy against MFLOPs.
    """
    run = load_run(run_dir)
    axis = cost_axis(objectives if objectives is not None else run.config.get("objectives"))
    out = run.path / "report"
    front = pareto_front(run.trials, ("acc", axis.name))
    scale = cost_scale(run.config, axis, run.trials + run.baselines)
    hv = front_hypervolume(front, axis, scale)
    write_text_atomic(out / "pareto.csv", _pareto_csv(front, run.models))
    images = {"pareto.png": _pareto_png(run, axis, front), "progress.png": _progress_png(run, axis, scale)}

    counts = _status_counts(run.trials)
    summary = run.summary or {}
    best = max(front, key=lambda r: r["val_acc"], default=None)
    blocks: list[Block] = [
        ("h", "Run settings"), ("kv", _settings(run)),
        ("h", "Outcome"),
        ("kv", [("trial status", ", ".join(f"{k}: {v}" for k, v in counts.items())),
                ("wall time", _duration(summary.get("wall_seconds"))
                 + (f" (training {_duration(summary.get('train_seconds'))})" if "train_seconds" in summary else "")),
                ("best full-fidelity accuracy", "none yet" if best is None else
                 f"{best['val_acc']:.4f} (trial {best.get('number')}, {_fmt(best[axis.field] / axis.display)} {axis.unit})"),
                (f"hypervolume (acc, {axis.name})", f"{hv:.4f}"),
                ("hypervolume reference", _reference_text(axis, scale))]),
        ("h", f"Accuracy against {axis.label}"), ("img", "pareto.png", f"Pareto front: accuracy against {axis.label}"),
        ("h", "Search progress"), ("img", "progress.png", "best accuracy and hypervolume against trial number"),
        ("h", f"Pareto front ({len(front)} trials, full fidelity; also in pareto.csv)"),
        _front_table(front, axis, run.models) if front else ("p", "No full-fidelity trial yet."),
    ]
    if run.baselines:
        blocks += [("h", "Hand-designed baselines (same proxy protocol)"), _baseline_table(run.baselines)]
    blocks += [("h", "Reproduce"), ("code", str(run.config.get("command", "(config.json has no command)")))]
    return _write_page(out, "report", f"shufflesearch report: {run.name}", blocks, images)


# --- several runs ----------------------------------------------------------------------------------
def _best_under_budget(rows: Sequence[Mapping[str, Any]], config: Mapping[str, Any], axis: CostAxis) -> float | None:
    budget = budget_of(config, axis)
    ok = [r["val_acc"] for r in full_fidelity(rows) if _finite(r.get("val_acc"))
          and (budget is None or (_finite(r.get(axis.field)) and r[axis.field] <= budget))]
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
    fig, ax = _subplots((8.5, 5.5))
    colors = [f"C{i}" for i in range(10)]
    table = []
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        front = pareto_front(run.trials, ("acc", axis.name))
        ax.scatter(*_xy(full_fidelity(run.trials), axis), s=12, color=color, alpha=0.3)
        _step_front(ax, front, axis, color=color, linewidth=1.8)
        ax.scatter(*_xy(front, axis), s=40, color=color, label=f"{run.name} ({run.config.get('sampler', '?')}): front")
        best = _best_under_budget(run.trials, run.config, axis)
        table.append([run.name, run.config.get("sampler", "?"), run.config.get("scheduler", "?"),
                      len(run.trials), len(front), f"{front_hypervolume(front, axis, scale):.4f}",
                      "" if best is None else f"{best:.4f}"])
    _budget_line(ax, runs[0].config, axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel(_acc_label(runs[0].config))
    ax.set_title("Pareto fronts: " + " vs ".join(r.name for r in runs))
    _finish(ax)
    stem = "compare_" + "_vs_".join(r.name for r in runs)
    out = Path(out_dir) if out_dir is not None else runs[0].path / "report"
    blocks: list[Block] = [
        ("img", f"{stem}.png", "overlaid Pareto fronts"),
        ("table", ["run", "sampler", "scheduler", "finished trials", "front size", f"hypervolume (acc, {axis.name})",
                   f"best acc under budget ({axis.unit})"], table),
        ("p", "Hypervolume " + _reference_text(axis, scale) + "; the same for every run here."),
    ]
    return _write_page(out, stem, "shufflesearch: " + " vs ".join(r.name for r in runs), blocks,
                       {f"{stem}.png": _png(fig)})
