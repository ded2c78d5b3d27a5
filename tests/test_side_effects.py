"""A library call leaves the caller's process as it found it.

`search()` and `write_report()` switch no matplotlib backend, leave Optuna's and Ray's
loggers (levels and handlers: Ray's messages go to the run's ray.log meanwhile) and Ray's printer of
raylet messages, the environment and torch's thread count as they were (even where the search started and
stopped its own Ray, whose `ray.init` writes into the environment), and `import shufflesearch` selects
no matplotlib backend and imports no pyplot.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import matplotlib
import optuna
import pytest
import ray._private.worker as ray_worker
import torch
from helpers import tiny_space

import shufflesearch

LOGGERS = ("optuna", "ray", "ray.tune", "ray.train", "ray.air")
# printed by a new process started with MPLBACKEND=pdf: ["pdf", false] if nothing touched matplotlib
MATPLOTLIB_STATE = "print(json.dumps([matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules]))"


def process_state() -> dict:
    """What a library call could change in its caller's process and must not, flat, so that a failed
    comparison names what changed ($NAME: an environment variable)."""
    return {"matplotlib.get_backend()": matplotlib.get_backend(), "rcParams['backend']": matplotlib.rcParams["backend"],
            **{f"{name} logger level": logging.getLogger(name).level for name in LOGGERS},
            **{f"{name} logger handlers": logging.getLogger(name).handlers[:] for name in LOGGERS},
            "Ray's printer of raylet messages": ray_worker.print_to_stdstream,
            "optuna verbosity": optuna.logging.get_verbosity(), "torch threads": torch.get_num_threads(),
            **{f"${key}": value for key, value in os.environ.items()}}


def new_process(code: str, *args: str) -> object:
    """The JSON `code` prints in a new Python process whose matplotlib backend is `pdf`."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "pdf"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_selects_no_matplotlib_backend():
    assert new_process("import json, sys, matplotlib, shufflesearch\n" + MATPLOTLIB_STATE) == ["pdf", False]


@pytest.fixture
def pdf_backend():
    """matplotlib on a backend other than the Agg the report draws with, so a switch to Agg would show."""
    previous = matplotlib.get_backend()
    matplotlib.use("pdf")
    yield
    matplotlib.use(previous)


@pytest.mark.slow
def test_search_and_report_leave_the_process_as_they_found_it(tmp_path, pdf_backend):
    # importing these sets loggers and environment variables (KMP_* for scikit-learn, whose digits the
    # space trains on): the libraries' doing, once, at import, not the call's
    import ray
    import ray.tune  # noqa: F401
    import sklearn  # noqa: F401

    assert not ray.is_initialized()  # search() starts (and stops) its own Ray here
    before = process_state()
    result = shufflesearch.search(tiny_space(tmp_path, epochs=1), trials=2, scheduler="none",
                                  runs_dir=tmp_path / "runs", progress=None)
    assert len(result.rows) == 2
    shufflesearch.write_report(result.run_dir)
    assert process_state() == before

    code = "import json, sys, matplotlib, shufflesearch\nshufflesearch.write_report(sys.argv[1])\n"
    assert new_process(code + MATPLOTLIB_STATE, str(result.run_dir)) == ["pdf", False]
