"""`LatencyTable`: built on the demo space at 32 px (seconds), saved and loaded, predicting within a
generous factor of what `measure` gives (a ratio, robust on a loaded machine: never a wall-clock
bound), without building a model; tables for other settings, other targets and broken files refused
with one line."""

import dataclasses
import json

import numpy as np
import pytest

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.models import _network
from shufflesearch.space._configs import LatencySettings
from shufflesearch.space._space import SearchSpace
from shufflesearch.train._latency import fingerprint, measure
from shufflesearch.train._latency_table import LatencyTable

SIZE = 32
SETTINGS = LatencySettings(warmup=2, runs=9)


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_yaml("demo").with_budget(latency={"input_size": SIZE})


@pytest.fixture(scope="module")
def table(space):
    lines = []
    table = LatencyTable.build(space, SETTINGS, lines.append, samples=60, points=3, networks=6)
    assert lines and "parts" in lines[-1]
    return table


def test_a_table_predicts_within_a_factor_of_measured_without_building_a_model(space, table, monkeypatch):
    archs = space.random_sample(6, seed=7)
    measured = [measure(a, SETTINGS, SIZE, num_classes=space.budget.num_classes).median_ms for a in archs]
    monkeypatch.setattr(_network, "build", lambda *a, **k: pytest.fail("predict built a model"))
    ratios = np.array([table.predict(a) for a in archs]) / measured
    assert 0.5 < np.median(ratios) < 2 and np.all((ratios > 0.25) & (ratios < 4)), ratios


def test_save_load_round_trip(table, tmp_path, space):
    path = tmp_path / "t.json"
    table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded.path == str(path) and loaded.to_dict() == json.loads(path.read_text()) == table.to_dict()
    assert loaded.settings == {**{k: v for k, v in SETTINGS.to_dict().items() if k != "table"},
                               "input_size": SIZE, "num_classes": 1000}
    for arch in space.random_sample(5, seed=3):
        assert loaded.predict(arch) == table.predict(arch) > 0


def test_check_refuses_other_settings_and_other_targets_in_one_line(table, tmp_path):
    table.save(tmp_path / "t.json")
    here = fingerprint(SETTINGS)
    table.check(dataclasses.replace(SETTINGS, runs=50, target="local"), SIZE, 1000, here, "space.yaml")
    cases = [(dataclasses.replace(SETTINGS, batch=4), SIZE, 1000, None, "batch = 1, not 4"),
             (dataclasses.replace(SETTINGS, backend="onnxruntime"), SIZE, 1000, None, "backend = 'torch', not 'onnx"),
             (dataclasses.replace(SETTINGS, threads=2), SIZE, 1000, None, "threads = 1, not 2"),
             (SETTINGS, 64, 1000, None, f"input_size = {SIZE}, not 64"),
             (SETTINGS, SIZE, 10, None, "num_classes = 1000, not 10"),
             (SETTINGS, SIZE, 1000, {**here, "cpu_model": "Cortex-A72"}, "cpu_model = .* there, 'Cortex-A72' here"),
             (SETTINGS, SIZE, 1000, {**here, "torch": "1.0"}, "torch = .* there, '1.0' here")]
    for settings, size, classes, fp, why in cases:
        with pytest.raises(ShuffleSearchError, match=why) as e:
            table.check(settings, size, classes, fp, "space.yaml")
        assert str(e.value).startswith(f"space.yaml: latency table {tmp_path / 't.json'}") and "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["{not json", json.dumps({"format": "something else"}), json.dumps([1, 2]),
                                  json.dumps({"format": "shufflesearch latency table", "version": 1, "points": {}})])
def test_a_corrupt_or_foreign_file_is_one_line_naming_it(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ShuffleSearchError) as e:
        LatencyTable.load(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    with pytest.raises(ShuffleSearchError, match="missing.json"):
        LatencyTable.load(tmp_path / "missing.json")


def test_an_onnxruntime_table_predicts_what_onnxruntime_measures(space):
    pytest.importorskip("onnxruntime")
    settings = dataclasses.replace(SETTINGS, backend="onnxruntime")
    table = LatencyTable.build(space, settings, None, samples=10, points=2, networks=2)
    assert table.formats == ["onnxruntime"] and "onnxruntime" in table.fingerprint
    arch = space.random_sample(1, seed=11)[0]
    ratio = table.predict(arch) / measure(arch, settings, SIZE, num_classes=1000).median_ms
    assert 0.25 < ratio < 4, ratio
