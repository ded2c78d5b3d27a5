"""A run's Optuna journal (`runs/<name>/optuna.journal`), written once per finished batch of trials.

Optuna's `JournalFileBackend` takes its file lock, appends and fsyncs once per storage operation: every
`ask`, every parameter a trial suggests, every user attribute and `tell`, about 20 a candidate. A proxy
trial takes a minute, so that is nothing; a supernet candidate takes 60 ms, and the driver spent 5 s of
a 1,000-candidate search's CPU in those appends, on a machine whose cores the scoring actors need.
`RunJournal` holds the operations in memory, where the study reads them at once, and appends them in
one locked, fsynced write at `flush()`. The search flushes before it records finished trials in
`trials.jsonl`, so every recorded trial is in the journal, with its parameters; what a kill -9 can
lose is what came after: tells (`search._reconcile` tells recorded trials again from their records on
resume) and trials not yet recorded (those would be told FAIL on resume anyway). The file stays
Optuna's journal format (`optuna-dashboard` opens it), at most one batch behind.

One process writes a run's journal: its driver.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from optuna.storages.journal import JournalFileBackend


class RunJournal(JournalFileBackend):
    """`JournalFileBackend` of one writer whose appends wait for `flush()`.

    A line an earlier driver's kill -9 cut short (no newline) is removed on opening: Optuna reads a
    file with one at its end, but not one with lines after it.

    Args:
        file_path: The journal file; created when missing.
    """

    def __init__(self, file_path: str):
        _drop_torn_tail(file_path)
        super().__init__(file_path)
        self._pending: list[dict[str, Any]] = []
        self._on_file = 0  # the file's logs the reader has gone past
        self._unread = True  # the file has logs the reader has not gone past

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        if self._unread:  # all of the file's logs at the first call, then the ones flushed since (read
            # again, and skipped, so that the reader knows where the file's next log starts)
            for number, log in enumerate(super().read_logs(self._on_file), start=self._on_file):
                self._on_file = number + 1
                if number >= log_number_from:
                    yield log
            self._unread = False
        yield from self._pending[max(0, log_number_from - self._on_file):]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._pending.extend(logs)

    def flush(self) -> None:
        """Append the operations held since the last flush to the file, in one fsynced write."""
        if self._pending:
            super().append_logs(self._pending)
            self._pending, self._unread = [], True


def _drop_torn_tail(path: str) -> None:
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.seek(0)
            f.truncate(f.read().rfind(b"\n") + 1)
