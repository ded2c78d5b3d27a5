"""One test per kind of bad space file: the message names file, YAML path and value; the CLI exits 2."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shufflesearch import SearchSpace, ShuffleSearchError
from shufflesearch.cli import main

ROOT = Path(__file__).parents[1]
DEMO = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())


def edit(path, value):
    """Set (or with value=KeyError, delete) the key at `path` (a tuple of keys / indices) of a demo copy."""
    data = copy.deepcopy(DEMO)
    *parents, last = path
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


def edit_search(**keys):
    """A demo copy with these `search:` keys set (None: removed)."""
    data = copy.deepcopy(DEMO)
    data["search"] = {**{k: v for k, v in data["search"].items() if keys.get(k, v) is not None},
                      **{k: v for k, v in keys.items() if v is not None}}
    return data


# (id, space data or raw text, substrings the one-line message must contain)
CASES = [
    ("unknown top-level key", edit(("colour",), "red"), ["colour: unknown key"]),
    ("unknown stage key", edit(("stages", 1, "grups"), 2), ["stages[1].grups: unknown key"]),
    ("wrong type", edit(("stages", 0, "repeats"), "two"), ["stages[0].repeats = 'two'", "integer"]),
    ("empty choice list", edit(("stages", 1, "repeats"), {"choices": []}), ["stages[1].repeats.choices = []", "non-empty"]),
    ("duplicate choice", edit(("shared", "groups"), {"choices": [1, 2, 2]}), ["shared.groups = 2", "twice"]),
    ("bad value in choices", edit(("shared", "kernel_size"), {"choices": [3, 4]}), ["shared.kernel_size = 4", "[3, 5, 7]"]),
    ("choice written wrongly", edit(("stages", 0, "repeats"), {"options": [1, 2]}), ["stages[0].repeats.options", "choices"]),
    ("v2 stage with groups", edit(("stages", 2), {"unit": "v2", "base_channels": 464, "repeats": 1, "groups": 2}),
     ["stages[2].groups = 2", "v1 option"]),
    ("shared v1 option with no v1 stage", edit(("shared", "unit"), "v2") | {
        "stages": [{k: v for k, v in s.items() if k != "grouped_first_conv"} for s in DEMO["stages"]]},
     ["shared.groups = {'choices': [1, 2, 4]}", "v1 option"]),
    ("shuffle of the other unit", edit(("stages", 0, "shuffle"), "after_concat"),
     ["stages[0].shuffle = 'after_concat'", "v1 unit"]),
    ("choices for a fixed key", edit(("stages", 0, "stride"), {"choices": [1, 2]}), ["stages[0].stride", "is fixed"]),
    ("stride-1 stage with a width", edit(("stages", 1, "stride"), 1), ["stages[1].base_channels = 232", "stride-1"]),
    ("required stage key missing", edit(("stages", 2, "base_channels"), KeyError), ["stages[2].base_channels: required"]),
    ("unused shared key", edit(("stages", 0, "kernel_size"), 3) | {
        "stages": [dict(s, kernel_size=3) for s in DEMO["stages"]]}, ["shared.kernel_size", "unused"]),
    ("smallest architecture over budget", edit(("budget", "mflops"), 5), ["budget.mflops = 5", "8.81 MFLOPs (multiply-adds)"]),
    ("params cap below smallest", edit(("budget", "max_params"), 1000), ["budget.max_params = 1000", "params"]),
    ("budget without mflops or latency", edit(("budget", "mflops"), KeyError), ["budget: give mflops", "latency_ms"]),
    ("negative latency budget", edit(("budget", "latency_ms"), -1), ["budget.latency_ms = -1", "> 0"]),
    ("unknown latency setting", edit(("budget", "latency"), {"devices": 2}), ["budget.latency.devices: unknown key"]),
    ("bad latency backend", edit(("budget", "latency"), {"backend": "tvm"}), ["budget.latency.backend = 'tvm'",
                                                                             "'onnxruntime'"]),
    ("zero latency threads", edit(("budget", "latency"), {"threads": 0}), ["budget.latency.threads = 0", ">= 1"]),
    ("negative budget", edit(("budget", "mflops"), -3), ["budget.mflops = -3", "> 0"]),
    ("bad fraction", edit(("budget", "min_fraction"), 1.5), ["budget.min_fraction = 1.5"]),
    ("inverted width range", edit(("width_multiplier",), [2.0, 1.0]), ["width_multiplier = [2.0, 1.0]"]),
    ("unknown sampler", edit(("search", "sampler"), "cmaes"), ["search.sampler = 'cmaes'", "tpe"]),
    ("negative retries", edit(("search", "max_retries"), -1), ["search.max_retries = -1", ">= 0"]),
    ("unsupported objectives", edit(("search", "objectives"), ["mflops"]), ["search.objectives = ['mflops']"]),
    ("moasha setting under asha", edit_search(scheduler="asha", grace_period=2),
     ["search.grace_period = 2: is ignored by scheduler asha", "set search.scheduler: moasha, or remove grace_period"]),
    ("moasha setting under none, at its default", edit_search(scheduler="none", reduction_factor=3),
     ["search.reduction_factor = 3: is ignored by scheduler none"]),
    ("moasha setting under one objective's default", edit_search(scheduler=None, objectives=["acc"], grace_period=1),
     ["search.grace_period = 1: is ignored by scheduler asha"]),
    ("proxy key unknown", edit(("proxy", "epohcs"), 3), ["proxy.epohcs: unknown key"]),
    ("empty stages", edit(("stages",), []), ["stages = []", "non-empty"]),
    ("not a mapping", "- just\n- a list\n", ["must be a YAML mapping"]),
    ("invalid YAML", "budget: {mflops: 30\nstages: [", ["not valid YAML"]),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_space_names_file_path_and_value_and_cli_exits_2(tmp_path, capsys, data, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ShuffleSearchError) as info:
        SearchSpace.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for part in expected:
        assert part in message
    assert main(["space", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"shufflesearch space: error: {message}\n" and captured.out == ""


@pytest.mark.parametrize("args", [["missing.yaml"], ["BAD"]], ids=["missing file", "bad value"])
def test_cli_subprocess_prints_one_line_without_traceback(tmp_path, args):
    if args == ["BAD"]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(edit(("shared", "groups"), {"choices": [1, 0]})))
        args = [str(bad)]
    proc = subprocess.run([sys.executable, "-m", "shufflesearch", "space", *args], cwd=ROOT,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert args[0] in lines[0] and ("no such search space file" in lines[0] or "shared.groups = 0" in lines[0])
