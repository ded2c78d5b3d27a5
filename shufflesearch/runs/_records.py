"""Trial records of a run: `trials.jsonl` and `trials.csv`, one row per finished trial.

The rows are the search's memory: resume counts them, the report and export read them. A search appends
each finished trial's row to both files (`append_rows`: one write and an fsync each, so a run of
thousands of candidates does not rewrite its records after each), before it tells the study; a `kill -9`
during that write can leave an unterminated last line, which `read_rows` drops (the study was never told
of that trial, so resume asks it again) and the resumed search rewrites both files whole (`write_rows`,
temp + rename). Every command records its finished trials or jobs through a `RecordLog` (a search's
trials, a supernet search's chunks, the baselines and a final evaluation's retrainings), each row made by
`make_row`. The fields are documented in `runs/README.md`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from shufflesearch._io import write_text_atomic
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._cost import budget_cost

FIELDS = (
    "number", "model", "arch_hash", "summary", "mflops", "params", "latency_ms", "latency_iqr_ms", "latency_node",
    "epochs", "max_epochs",
    "search_acc", "best_search_acc", "search_loss", "status", "error", "seconds", "cpu_seconds", "train_seconds", "eval_seconds", "seed",
    "attempts", "faults", "finished", "arch",
)
STATUSES = ("complete", "early_stopped", "failed", "diverged")
# runs recorded before the three splits scored trials on the dataset's own validation (often test) split
LEGACY_FIELDS = {"val_acc": "search_acc", "best_val_acc": "best_search_acc", "val_loss": "search_loss"}


def upgrade_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of an old run under today's field names, marked `legacy_split: true` (its "val" split
    may be the dataset's test split); today's rows are returned as they are."""
    if not any(old in row for old in LEGACY_FIELDS):
        return row
    return {**{LEGACY_FIELDS.get(k, k): v for k, v in row.items()}, "legacy_split": True}


def package_versions() -> dict[str, str]:
    """Python's and the packages' versions, as every run and final evaluation records them."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for pkg in ("shufflesearch", "torch", "timm", "optuna", "ray", "numpy", "scikit-learn"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            found[pkg] = "not installed"
    return found


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl record file (old runs' rows upgraded, see `upgrade_row`); a missing file has none,
    and an unterminated last line (an append cut off by `kill -9`) is no row."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text().split("\n")[:-1], 1):
        if line.strip():
            try:
                rows.append(upgrade_row(json.loads(line)))
            except json.JSONDecodeError as e:
                raise ShuffleSearchError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
    return rows


def write_rows(jsonl_path: str | Path, rows: Iterable[dict[str, Any]], fields: Sequence[str] = FIELDS) -> None:
    """Rewrite `jsonl_path` and its .csv sibling (columns `fields`) atomically with `rows`."""
    rows = list(rows)
    jsonl_path = Path(jsonl_path)
    write_text_atomic(jsonl_path, _jsonl(rows))
    write_text_atomic(jsonl_path.with_suffix(".csv"), _csv(rows, fields, header=True))


def append_rows(jsonl_path: str | Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] = FIELDS) -> None:
    """Append `rows` to `jsonl_path` and its .csv sibling (the header first where the .csv is new), each
    file in one write, flushed to disk before this returns."""
    jsonl_path = Path(jsonl_path)
    csv_path = jsonl_path.with_suffix(".csv")
    new_csv = not csv_path.exists() or csv_path.stat().st_size == 0
    for path, text in ((jsonl_path, _jsonl(rows)), (csv_path, _csv(rows, fields, header=new_csv))):
        with open(path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


class RecordLog:
    """A record file's rows, in memory and on disk, each new one announced: how a search, a supernet
    search, the baselines and a final evaluation record every finished trial or job.

    `add(row)` keeps the row, writes it and calls `announce(row)` (the progress line). Rows with a
    `key` replace the row of the same key, so the files are rewritten whole (`write_rows`: temp +
    rename); without one, rows only accumulate and are appended (`append_rows`). A `batched` log
    writes only when `write()` is called, all the rows added since in one append (a supernet search
    writes each chunk's rows so, before its study hears of them).

    Args:
        path: The .jsonl file (its .csv sibling is written beside it).
        rows: The rows so far; the log keeps its new rows in this list.
        fields: The .csv's columns.
        key: What makes two rows the same record (a baseline's model, a final job's genome and seed).
        announce: Called with each new row, after it is written.
        batched: Write on `write()` only.
    """

    def __init__(self, path: str | Path, rows: list[dict[str, Any]], *, fields: Sequence[str] = FIELDS,
                 key: Callable[[Mapping[str, Any]], Hashable] | None = None,
                 announce: Callable[[dict[str, Any]], None] | None = None, batched: bool = False):
        self.path, self.rows, self.fields, self.key = Path(path), rows, fields, key
        self.announce, self.batched = announce, batched
        self._unwritten: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Keep `row` (in place of its key's row), write it unless batched, announce it; return it."""
        if self.key is not None:
            self.rows[:] = [r for r in self.rows if self.key(r) != self.key(row)]
        self.rows.append(row)
        self._unwritten.append(row)
        if not self.batched:
            self.write()
        if self.announce is not None:
            self.announce(row)
        return row

    def write(self) -> None:
        """Write the rows added since the last write."""
        if not self._unwritten:
            return
        if self.key is not None:
            write_rows(self.path, self.rows, self.fields)
        else:
            append_rows(self.path, self._unwritten, self.fields)
        self._unwritten = []


def _jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def _csv(rows: Iterable[dict[str, Any]], fields: Sequence[str], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    if header:
        writer.writeheader()
    for r in rows:
        writer.writerow({**r, "arch": json.dumps(r.get("arch"), sort_keys=True), "faults": "; ".join(r.get("faults") or [])})
    return buffer.getvalue()


def is_full_fidelity(row: dict[str, Any]) -> bool:
    """Trained for every planned epoch: only such rows are compared with each other."""
    return row.get("status") == "complete" and row.get("epochs") == row.get("max_epochs")


def make_row(arch: Arch, metrics: dict[str, Any], status: str, *, number: int | None,
             budget: Mapping[str, Any], max_epochs: int, seed: int, model: str | None = None) -> dict[str, Any]:
    """A record row for `arch` trained or scored to `metrics` (a trial's or job's last report, as the one
    trial body `train._trial.run_trial_body` gives it).

    `mflops` and `params` are the architecture's cost on the run's basis (`cost.budget_cost`: the
    budget's input size and classes, what the budget caps); the proxy model's own head may differ.
    """
    c = budget_cost(arch, budget)
    error = metrics.get("error") or None
    return {
        "number": number, "model": model, "arch_hash": arch.hash, "arch": arch.to_dict(),
        "summary": arch.summary(), "mflops": c.mflops, "params": c.params,
        "latency_ms": metrics.get("latency_ms"), "latency_iqr_ms": metrics.get("latency_iqr_ms"),
        "latency_node": metrics.get("latency_node"), "epochs": int(metrics.get("epoch", 0)),
        "max_epochs": max_epochs, "search_acc": float(metrics.get("search_acc", 0.0)),
        "best_search_acc": float(metrics.get("best_search_acc", metrics.get("search_acc", 0.0))),
        "search_loss": metrics.get("search_loss"), "status": status, "error": error,
        "seconds": metrics.get("time_total_s"), "cpu_seconds": metrics.get("cpu_seconds"),
        "train_seconds": metrics.get("train_seconds"),
        "eval_seconds": metrics.get("eval_seconds"),
        "seed": seed, "attempts": metrics.get("attempts", 1), "faults": list(metrics.get("faults", [])),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
