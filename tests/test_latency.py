"""`measure` on a latency budget's target: torch and ONNX Runtime backends, spread, fingerprint, threads
restored; the one-line errors a user can cause. Values are checked for sanity, never for speed."""

import json
import sys

import pytest
import torch

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._zoo import ZOO
from shufflesearch.models._network import build
from shufflesearch.space._configs import LatencySettings
from shufflesearch.train._latency import FINGERPRINT_KEYS, Measurement, fingerprint, latency_device, measure

SMALL = ZOO["shufflenet_v1_g3_x0_25"]
QUICK = {"warmup": 1, "runs": 5}


def _sane(m: Measurement, settings: LatencySettings, size: int) -> None:
    assert m.median_ms > 0 and m.iqr_ms >= 0 and m.p90_ms >= m.median_ms
    assert (m.runs, m.backend, m.batch, m.threads, m.input_size, m.device) == (
        settings.runs, settings.backend, settings.batch, settings.threads, size, "cpu")
    assert m.fingerprint == fingerprint(settings) and m.clock == ("thread_cpu" if settings.threads == 1 else "wall")
    assert json.loads(json.dumps(m.to_dict())) == m.to_dict()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_measure_on_each_backend_gives_a_sane_spread_and_restores_torch_threads(backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    before = torch.get_num_threads()
    settings = LatencySettings(backend=backend, batch=2, threads=1 if before > 1 else 2, **QUICK)
    m = measure(SMALL, settings, 32, num_classes=10)
    _sane(m, settings, 32)
    assert torch.get_num_threads() == before
    assert ("onnxruntime" in m.fingerprint) == (backend == "onnxruntime")


def test_fingerprint_names_what_the_numbers_depend_on_and_is_stable():
    settings = LatencySettings(threads=2, batch=4)
    fp = fingerprint(settings)
    assert {"cpu_model", "machine", "os", "logical_cpus", "python", "torch", "backend", "threads", "batch"} <= set(fp)
    assert set(FINGERPRINT_KEYS) - {"onnxruntime", "gpu"} <= set(fp) and (fp["threads"], fp["batch"]) == (2, 4)
    assert fp["cpu_model"] and fp == fingerprint(settings) and json.loads(json.dumps(fp)) == fp
    assert latency_device(settings) == "cpu" and latency_device(LatencySettings(target="cuda")) == "cuda"
    assert latency_device(LatencySettings(target="rpi4")) == "cpu"


def test_a_measured_module_is_left_as_it_was():
    model = build(SMALL, num_classes=10).train()
    measure(model, LatencySettings(**QUICK), 16, num_classes=10)
    assert model.training and next(model.parameters()).is_contiguous()


def test_onnxruntime_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with pytest.raises(ShuffleSearchError, match=r'pip install "shufflesearch\[onnx\]"') as e:
        measure(SMALL, LatencySettings(backend="onnxruntime", **QUICK), 16, num_classes=10)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where there is no CUDA")
def test_a_cuda_target_without_cuda_is_one_line():
    with pytest.raises(ShuffleSearchError, match="budget.latency.target") as e:
        measure(SMALL, LatencySettings(target="cuda", **QUICK), 16)
    assert "\n" not in str(e.value)
