"""One driver a run: a lock in the run folder, held while a search or a final evaluation writes there.

Two drivers on one run would both append to its Optuna journal and records, and the study and
`trials.jsonl` would silently diverge. So each takes `runs/<run>/.lock`: an exclusive `flock` on the
file (the kernel drops it when its process dies, however it dies) and, inside the file, who holds it
(pid, host, what, since when, the command), so that the second driver's one line names the first.

A lock file whose process is gone is stale: on the same host the `flock` says so at once, and the
lock is taken over with a warning naming the dead pid. A lock left by another host cannot be checked
from here (a shared disk need not carry locks between hosts): it is refused, saying how to remove it
once the driver there is known to be gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shlex
import socket
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

from shufflesearch.errors import ShuffleSearchError

LOCK = ".lock"


def _holder(text: str) -> dict[str, Any]:
    try:
        held = json.loads(text)
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def _who(held: dict[str, Any]) -> str:
    return (f"pid {held.get('pid')} on host {held.get('host')}, {held.get('what')} since {held.get('since')}"
            f" (`{held.get('command')}`)")


@contextlib.contextmanager
def run_lock(run_dir: str | Path, what: str) -> Iterator[None]:
    """Hold the run folder's lock for the block; `what` names the job ("search", "final evaluation").

    Raises ShuffleSearchError, before anything is written, when another driver holds it or another
    host left it.
    """
    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with os.fdopen(fd, "r+", closefd=False) as f:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ShuffleSearchError(f"{Path(run_dir)}: in use by another driver ({_who(_holder(f.read()))}); "
                                         "wait for it to finish, or give this one another --name") from None
            held, host = _holder(f.read()), socket.gethostname()
            if held and held.get("host") != host:
                raise ShuffleSearchError(
                    f"{path}: left by a driver on another host ({_who(held)}), which cannot be checked from "
                    f"{host}; once it is known to be gone, delete {path}")
            if held:
                warnings.warn(f"{path}: taken over from pid {held.get('pid')} ({held.get('what')} since "
                              f"{held.get('since')}), which is no longer running", stacklevel=3)
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"pid": os.getpid(), "host": host, "what": what,
                                "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                "command": shlex.join(sys.argv)}) + "\n")
            f.flush()
            os.fsync(fd)
            try:
                yield
            finally:
                f.seek(0)
                f.truncate()  # the file stays (removing it would race a driver opening it); empty: free
                f.flush()
    finally:
        os.close(fd)  # releases the flock
