"""File I/O: atomic writes (every file under runs/ goes to a temporary name, then is renamed), and reads
that turn unreadable files and invalid YAML into one-line user errors."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from shufflesearch.errors import ShuffleSearchError

_UMASK = os.umask(0)  # read the process umask (the only way) and put it back at once
os.umask(_UMASK)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_text(path: Path, what: str) -> str:
    """The text of `path`; a file that cannot be read is a one-line user error naming it."""
    try:
        return path.read_text()
    except OSError as e:
        raise ShuffleSearchError(f"{path}: cannot read {what} ({e.strerror})") from None


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON of `path`; a file that cannot be read or parsed is a one-line user error naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShuffleSearchError(f"{path}: cannot read {what} ({e})") from None


def parse_yaml(text: str, source: str) -> Any:
    """`yaml.safe_load` of `text`; invalid YAML is a one-line user error naming `source`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ShuffleSearchError(f"{source}: not valid YAML ({' '.join(str(e).split())})") from None
