"""Helpers shared by test modules and by the Python processes some tests start.

A helper module, not a test module: pytest puts tests/ on sys.path, and a test that starts a new
process puts it on that process's PYTHONPATH.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from shufflesearch._exec._devices import TorchThreads
from shufflesearch.data import load_data
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import proxy_config_from_dict
from shufflesearch.train._proxy import _evaluate

ROOT = Path(__file__).resolve().parents[1]


def tiny_space(tmp_path: Path, epochs: int = 3, **search: object) -> Path:
    """demo.yaml with an `epochs`-epoch proxy (3: a trial takes a few seconds); `search` overrides its
    search section."""
    data = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    data["name"] = "tiny"
    data["proxy"].update(epochs=epochs)
    data["search"].update(trials=4, **search)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def too_wide(arch: Arch) -> Arch:
    """`arch` with a head conv of 10^13 channels: a valid genome whose weights (9.6e15 bytes) cannot be
    allocated, so building it, the first thing its latency measurement does, raises at once (the
    allocation is refused: nothing is allocated)."""
    return Arch.from_dict({**arch.to_dict(), "head": {"conv_channels": 10 ** 13}})


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """`shufflesearch ARGS` in a new process (`kwargs` go to subprocess.run: cwd, env)."""
    return subprocess.run([sys.executable, "-m", "shufflesearch", *args], capture_output=True,
                          text=True, timeout=600, **kwargs)


def evaluate(model: torch.nn.Module, run_dir: Path, split: str = "search") -> float:
    """Top-1 on `split` of the run's data ("search": what its trials were scored on), evaluated exactly
    as the trainer does (proxy.py's eval)."""
    config = json.loads((run_dir / "config.json").read_text())
    data = load_data(proxy_config_from_dict(config["proxy"], "config.json").data, split)
    with TorchThreads(config["cpus_per_trial"]):
        model = model.to(memory_format=torch.channels_last)
        return _evaluate(model, data.eval_x.contiguous(memory_format=torch.channels_last), data.eval_y)[1]


def assert_self_contained(page: str) -> None:
    """An HTML page that loads nothing from outside itself: no links, imports or URLs; images inline."""
    assert "http:" not in page and "https:" not in page and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    for src in re.findall(r'src="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,")
