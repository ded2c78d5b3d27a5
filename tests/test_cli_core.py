"""`shufflesearch models` and `shufflesearch cost`: output, and one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from shufflesearch import cost
from shufflesearch.cli import main
from shufflesearch.genome._zoo import ZOO


def test_models_lists_every_zoo_model_with_its_cost(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "MMACs", "params"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(ZOO)
    c = cost(ZOO["shufflenet_v2_x1_0"])
    assert f"{c.macs / 1e6:.2f}" in rows["shufflenet_v2_x1_0"] and f"{c.params:,d}" in rows["shufflenet_v2_x1_0"]
    assert ZOO["shufflenet_v2_x1_0"].summary() in rows["shufflenet_v2_x1_0"]


def test_cost_of_a_name_and_of_a_genome_file(capsys, tmp_path):
    assert main(["cost", "shufflenet_v1_g3_x1_0", "--cost-input-size", "160"]) == 0
    out = capsys.readouterr().out
    c = cost(ZOO["shufflenet_v1_g3_x1_0"], 160)
    assert f"{c.macs / 1e6:.2f} MMACs" in out and "160x160" in out and ZOO["shufflenet_v1_g3_x1_0"].hash in out
    path = tmp_path / "g.yaml"
    ZOO["shufflenet_v2_x0_5"].save(path)
    assert main(["cost", str(path), "--num-classes", "10"]) == 0
    assert f"{cost(ZOO['shufflenet_v2_x0_5'], 224, 10).params:,d} params" in capsys.readouterr().out


@pytest.mark.parametrize("arg, message", [
    ("shufflenet_v2_x1", "model 'shufflenet_v2_x1': unknown shufflesearch model; did you mean shufflenet_v2_x1_"),
    ("missing.yaml", "missing.yaml: cannot read genome file"),
])
def test_cost_errors_in_process(arg, message, capsys):
    assert main(["cost", arg]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cost_errors_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {unit: v1, out_channels: 241, repeats: 2, groups: 3}\n")
    for arg, message in [("nope", "unknown shufflesearch model"),
                         (str(bad), "stages[0].out_channels = 241: must be divisible by groups=3")]:
        proc = subprocess.run([sys.executable, "-m", "shufflesearch", "cost", arg], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith("shufflesearch cost: error: ") and message in proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
