"""Optuna's console output, quiet for a block: used wherever the library makes a study."""

from __future__ import annotations

import contextlib
from typing import Iterator

import optuna


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines (study created, trial told) off for the block, its verbosity as it was after:
    Optuna has no per-study switch, and the caller's process is not ours."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
