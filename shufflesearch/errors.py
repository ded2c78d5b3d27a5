"""The one exception type for errors a user can cause (bad YAML, unknown names, missing data, ...), and
the two steps every reader of a user's file takes with it: naming the file, and refusing unknown keys."""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Mapping


class ShuffleSearchError(ValueError):
    """A user-facing error. Its message is one line naming the file, field and value at fault.

    The CLI prints the message alone and exits with code 2; library users catch it like a ValueError.
    """


@contextlib.contextmanager
def errors_from(source: str) -> Iterator[None]:
    """Put `source: ` (the file or setting at fault) in front of a `ShuffleSearchError` raised inside,
    unless its message starts with it already."""
    try:
        yield
    except ShuffleSearchError as e:
        if str(e).startswith(f"{source}:"):
            raise
        raise ShuffleSearchError(f"{source}: {e}") from None


def reject_unknown_keys(data: Mapping[str, Any], known: Iterable[str], where: str = "") -> None:
    """Raise for the first key of `data` (the mapping at YAML path `where`) that is not in `known`."""
    known = list(known)
    unknown = [key for key in data if key not in known]
    if unknown:
        raise ShuffleSearchError(f"{where + '.' if where else ''}{unknown[0]}: unknown key "
                                 f"(expected one of {known})")
