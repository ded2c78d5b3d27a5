"""Trial records: appended rows read back as written, the .csv beside them is the one a rewrite gives,
an append cut off by `kill -9` (an unterminated last line) is no row, and a `RecordLog` (how every
command records a finished trial or job) appends, batches or replaces rows by key."""

from __future__ import annotations

from shufflesearch.runs._records import RecordLog, append_rows, read_rows, write_rows


def _rows(first: int, n: int) -> list[dict]:
    return [{"number": i, "arch": {"stages": [i]}, "search_acc": i / 10, "status": "complete",
             "faults": ["oom"] if i % 2 else []} for i in range(first, first + n)]


def test_appended_rows_read_back_and_match_a_rewrite(tmp_path):
    appended, rewritten = tmp_path / "a" / "trials.jsonl", tmp_path / "w" / "trials.jsonl"
    appended.parent.mkdir(), rewritten.parent.mkdir()
    rows = _rows(0, 5)
    append_rows(appended, rows[:1])
    append_rows(appended, rows[1:])
    write_rows(rewritten, rows)
    assert read_rows(appended) == rows
    assert appended.read_text() == rewritten.read_text()
    assert appended.with_suffix(".csv").read_text() == rewritten.with_suffix(".csv").read_text()
    assert appended.with_suffix(".csv").read_text().count("number,") == 1  # one header


def test_an_unterminated_last_line_is_no_row(tmp_path):
    path = tmp_path / "trials.jsonl"
    rows = _rows(0, 3)
    append_rows(path, rows)
    with open(path, "a") as f:
        f.write('{"number": 3, "arch": {"sta')  # the write a kill -9 cut short
    assert read_rows(path) == rows
    write_rows(path, read_rows(path))  # what a resumed search does before it appends again
    append_rows(path, _rows(3, 1))
    assert read_rows(path) == _rows(0, 4)


def test_a_record_log_appends_or_batches_and_announces_each_row(tmp_path):
    path, announced = tmp_path / "trials.jsonl", []
    rows = _rows(0, 2)
    append_rows(path, rows)
    log = RecordLog(path, rows, announce=announced.append)
    log.add(_rows(2, 1)[0])
    assert read_rows(path) == rows == _rows(0, 3) and announced == _rows(2, 1)
    batched = RecordLog(path, rows, batched=True)
    for row in _rows(3, 2):
        batched.add(row)
    assert read_rows(path) == _rows(0, 3)  # nothing written before `write`
    batched.write()
    assert read_rows(path) == rows == _rows(0, 5)


def test_a_record_log_with_a_key_replaces_that_keys_row_and_rewrites_the_files(tmp_path):
    path = tmp_path / "baselines.jsonl"
    write_rows(path, [{"model": "a", "search_acc": 0.1}, {"model": "b", "search_acc": 0.2}])
    log = RecordLog(path, read_rows(path), key=lambda r: r["model"])
    log.add({"model": "a", "search_acc": 0.3})
    expected = [{"model": "b", "search_acc": 0.2}, {"model": "a", "search_acc": 0.3}]
    assert log.rows == read_rows(path) == expected
    assert path.with_suffix(".csv").read_text().count("\n") == 3  # the header and one line a row
