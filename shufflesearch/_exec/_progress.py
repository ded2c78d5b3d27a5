"""The progress line of every command that runs many trials or jobs (a search, a supernet search, the
baselines, a final evaluation), and the one way a duration is written.

One printer, so that every command tells the same facts in the same place: how many are done of how
many, which one, its cost, its accuracy named by its split, its epochs and status, how many are left
and when they should be done, and what went wrong. What differs is given: the label of a row (a trial
number, a model name and seed), the accuracy field it reports, and, for a search, how its best row is
chosen (`runs.best_row`, which `_exec` may not import: it sits below `runs`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from shufflesearch._exec._retries import attempts_note, retry_line

Row = Mapping[str, Any]


def duration(seconds: Any) -> str:
    """`seconds` as people read it: "7s", "4m 05s", "1h 02m 03s"; "unknown" where it is no finite number."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"


class Progress:
    """One line per finished trial or job: count, label, cost, accuracy, epochs, status, the best so far
    (with `best`), what is left and when it should be done, the genome's summary, attempts, the error.

    Args:
        total: How many the command runs in all, those done before included.
        emit: Where the lines go (None: nowhere).
        label: A row's name on its line ("trial   3", "t3 seed 1").
        acc: The row's accuracy field, shown under its own name ("search acc", "test acc").
        done: The rows finished before this call (a resumed command): counted, and the best taken of them.
        best: The best of some rows, or None (`runs.best_row`); without it no best is shown.
    """

    def __init__(self, total: int, emit: Callable[[str], None] | None, *, label: Callable[[Row], str],
                 acc: str = "search_acc", done: Sequence[Row] = (),
                 best: Callable[[Sequence[Row]], Row | None] | None = None):
        self.total, self.emit, self.label, self.acc, self.best_of = total, emit, label, acc, best
        self.done_before = self.done = len(done)
        self.best = best(done) if best and emit else None  # kept row by row: a supernet search has thousands
        self.started = time.monotonic()

    def __call__(self, row: Row) -> None:
        self.done += 1
        if self.emit is None:
            return
        if self.best_of:
            self.best = self.best_of([row, *([self.best] if self.best else [])])  # best_row's order is total
        left = self.total - self.done
        eta = (time.monotonic() - self.started) / (self.done - self.done_before) * left
        best = "" if not self.best_of else f"best {_acc(self.best, self.acc)}  "
        error = f"  {row['error']}" if row.get("error") else ""
        self.emit(f"[{self.done:>3}/{self.total}] {self.label(row):<12}  {row['mflops']:7.2f} MFLOPs  "
                  f"{self.acc.replace('_', ' ')} {_acc(row, self.acc)}  {row['epochs']}/{row['max_epochs']} ep  "
                  f"{row['status']:<13} {best}{left} left, ETA {duration(eta)}  {row['summary']}"
                  + attempts_note(row) + error)

    def retry(self, name: str, attempt: int, max_retries: int, reason: str, log: Path | None) -> None:
        """The line of a trial or job that Ray lost and that starts again."""
        if self.emit is not None:
            self.emit(retry_line(name, attempt, max_retries, reason, log))


def _acc(row: Row | None, key: str) -> str:
    return "-" if row is None or row.get(key) is None else f"{row[key]:.4f}"
