"""The one progress line of every command that runs many trials or jobs, and the one way a duration is
written (the report's wall time uses it too)."""

from __future__ import annotations

import math
from functools import partial

from shufflesearch._exec._progress import Progress, duration
from shufflesearch.runs._pareto import best_row


def _row(number: int, acc: float, **fields) -> dict:
    return {"number": number, "search_acc": acc, "mflops": 10.0 + number, "epochs": 3, "max_epochs": 3,
            "status": "complete", "summary": f"arch{number}", **fields}


def test_durations_read_as_people_write_them():
    assert [duration(s) for s in (7.4, 65, 3723, 0)] == ["7s", "1m 05s", "1h 02m 03s", "0s"]
    assert duration(None) == duration(math.nan) == duration(True) == "unknown"


def test_a_line_per_row_with_the_best_so_far_from_the_rows_done_before():
    lines: list[str] = []
    printer = Progress(5, lines.append, label=lambda r: f"trial {r['number']:>3}", done=[_row(0, 0.5)], best=best_row)
    printer(_row(1, 0.4))
    printer(_row(2, 0.9, status="failed", error="RuntimeError: no", attempts=2))  # a failed trial is no best
    printer(_row(3, 0.7))
    first, failed, last = lines
    assert first.startswith("[  2/5] trial   1") and "search acc 0.4000" in first and "best 0.5000  3 left" in first
    assert "arch1" in first and "ETA " in first
    assert failed.startswith("[  3/5] trial   2") and "best 0.5000  2 left" in failed
    assert failed.endswith("arch2  (2 attempts)  RuntimeError: no")
    assert last.startswith("[  4/5] trial   3") and "best 0.7000  1 left" in last


def test_a_job_line_names_its_split_and_tells_of_retries():
    lines: list[str] = []
    printer = Progress(1, lines.append, label=lambda r: f"{r['name']} seed {r['seed']}", acc="test_acc")
    printer.retry("t3 seed 0", 1, 2, "worker died", None)
    printer(_row(3, 0.0, name="t3", seed=0, test_acc=None, status="failed"))
    retry, line = lines
    assert retry.strip() == "t3 seed 0  retry 1/2 (worker died)"
    assert line.startswith("[  1/1] t3 seed 0") and "test acc -" in line and "best" not in line
    Progress(1, None, label=str)(_row(0, 0.1))  # silent: nothing to emit to


def test_the_best_so_far_is_the_best_of_the_runs_objectives():
    """As summary.json names it: with latency an objective, a trial whose latency is unknown is no best."""
    lines: list[str] = []
    printer = Progress(3, lines.append, label=lambda r: f"trial {r['number']:>3}",
                       best=partial(best_row, objectives=["acc", "latency"]))
    printer(_row(0, 0.9, latency_ms=None))
    printer(_row(1, 0.8, latency_ms=2.0))
    assert "best -  2 left" in lines[0] and "best 0.8000  1 left" in lines[1]
    assert best_row([_row(0, 0.9, latency_ms=None)])["number"] == 0  # the default objectives would show 0.9
