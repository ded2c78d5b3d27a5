"""The package works outside the checkout: shipped spaces by name from any folder, `python -m
shufflesearch`, `--version` from the package metadata. (.ci/check_wheel.sh does the same from a wheel.)"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, run_cli

import shufflesearch
from shufflesearch.space._space import SearchSpace, shipped_spaces


def test_the_shipped_spaces_are_the_repository_files():
    shipped = shipped_spaces()
    assert sorted(shipped) == sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))
    for name, path in shipped.items():
        assert path.read_text() == (ROOT / "search_spaces" / f"{name}.yaml").read_text()


def test_a_bare_name_is_a_shipped_space_unless_a_file_of_that_name_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert SearchSpace.from_yaml("demo").source == str(shipped_spaces()["demo"])
    mine = yaml.safe_load(shipped_spaces()["demo"].read_text()) | {"name": "mine"}
    Path("demo").write_text(yaml.safe_dump(mine))
    assert SearchSpace.from_yaml("demo").name == "mine"  # a path always means the file
    with pytest.raises(shufflesearch.ShuffleSearchError, match=r"^demo2: no such search space file.*shipped: demo,"):
        SearchSpace.from_yaml("demo2")
    with pytest.raises(shufflesearch.ShuffleSearchError, match="sub/demo: cannot read search space file"):
        SearchSpace.from_yaml("sub/demo")  # a path with a folder is never a shipped name


def test_spaces_lists_each_shipped_space_with_its_budget_from_an_empty_folder(tmp_path):
    out = run_cli("spaces", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:-1]}
    assert rows == {name: f"{SearchSpace.from_yaml(p).budget.mflops:g}" for name, p in shipped_spaces().items()}
    assert "Three ShuffleNet stages" in out.stdout and list(tmp_path.iterdir()) == []


def test_version_is_the_package_metadata(tmp_path):
    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout == f"shufflesearch {importlib.metadata.version('shufflesearch')}\n"
    assert shufflesearch.__version__ == importlib.metadata.version("shufflesearch")


def test_an_unknown_space_name_is_one_line_and_exit_2(tmp_path):
    out = run_cli("search", "demo2", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "demo2: no such search space file" in out.stderr and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_search_demo_by_name_from_an_empty_folder(tmp_path):
    out = run_cli("search", "demo", "--trials", "2", "--scheduler", "none", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "runs" / "demo" / "config.json").read_text())
    assert config["space_file"] == str(shipped_spaces()["demo"]) and config["trials"] == 2
    assert "timm.create_model('ss_demo_best', pretrained=True)" in out.stdout
