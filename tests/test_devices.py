"""Devices on a CPU-only machine: the device, amp and GPU settings are checked with one-line errors,
fractional GPU shares reach Ray's resources, and mixed precision trains (bf16, fp16 with a GradScaler)."""

import dataclasses
import functools
import json
import math
import sys

import pytest
import ray
import torch
import yaml
from helpers import run_cli, tiny_space

from shufflesearch import ShuffleSearchError, load_data, train_proxy
from shufflesearch._exec._devices import for_trials, local_device, ray_resources, trial_device
from shufflesearch._exec._ray import run_jobs
from shufflesearch.genome._zoo import ZOO
from shufflesearch.space._configs import TrainConfig, proxy_config_from_dict
from shufflesearch.space._space import SearchSettings
from shufflesearch.train._latency import trial_latency_ms

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")
SMALL = ZOO["shufflenet_v1_g3_x0_25"]


@pytest.mark.parametrize("proxy, message", [
    ({"device": "gpu"}, "proxy.device = 'gpu': must be one of 'auto', 'cpu', 'cuda'"),
    ({"amp": "fp8"}, "proxy.amp = 'fp8': must be one of 'none', 'bf16', 'fp16'"),
    ({"latency_device": "tpu"}, "proxy.latency_device = 'tpu': must be one of 'trial', 'cpu', 'cuda'"),
])
def test_device_and_amp_settings_are_checked(proxy, message):
    with pytest.raises(ShuffleSearchError) as err:
        proxy_config_from_dict(proxy, "space.yaml")
    assert str(err.value) == f"space.yaml: {message}"


@pytest.mark.parametrize("gpus, message", [
    (-1, "must be >= 0"), (1.5, "must be a fraction of one GPU"), ("half", "must be a number")])
def test_gpu_shares_are_checked(gpus, message):
    with pytest.raises(ShuffleSearchError, match=f"search.gpus_per_trial = .*: {message}"):
        SearchSettings(gpus_per_trial=gpus)
    assert SearchSettings(gpus_per_trial=0.25).gpus_per_trial == 0.25
    assert SearchSettings(gpus_per_trial=2).gpus_per_trial == 2


def test_trial_device_follows_the_gpu_share():
    assert trial_device("auto", 0) == "cpu" and trial_device("auto", 0.25) == "cuda"
    assert trial_device("cuda", 1) == "cuda" and trial_device("cpu", 0) == "cpu"
    with pytest.raises(ShuffleSearchError, match=r"proxy.device = 'cuda': a trial gets a GPU only with --gpus-per"):
        trial_device("cuda", 0)
    with pytest.raises(ShuffleSearchError, match=r"proxy.device = 'cpu' with --gpus-per-trial 0.5: .* idle"):
        trial_device("cpu", 0.5)
    with pytest.raises(ShuffleSearchError, match=r"proxy.latency_device = 'cuda': a trial gets a GPU only"):
        for_trials(TrainConfig(latency_device="cuda"), 0, None)
    # a GPU share on a cluster elsewhere: this machine's lack of CUDA does not matter
    assert for_trials(TrainConfig(latency_device="cpu"), 0.5, "head:6379").device == "cuda"


def test_ray_resources_carry_fractions():
    assert ray_resources(2, 0.25) == {"cpu": 2, "gpu": 0.25}
    assert ray_resources(1, 0) == {"cpu": 1, "gpu": 0}
    with pytest.raises(ShuffleSearchError, match=r"--gpus-per-trial 1.5: must be a fraction"):
        ray_resources(1, 1.5)


@no_cuda
def test_cuda_asked_for_without_cuda_is_one_line():
    assert local_device("auto") == "cpu" and local_device("cpu") == "cpu"
    with pytest.raises(ShuffleSearchError, match=r"^proxy.device = 'cuda': CUDA is not available here"):
        local_device("cuda")
    with pytest.raises(ShuffleSearchError, match=r"^proxy.latency_device = 'cuda': CUDA is not available"):
        trial_latency_ms(SMALL, 32, TrainConfig(latency_device="cuda"))
    assert trial_latency_ms(SMALL, 32, TrainConfig(device="cpu")) > 0
    with pytest.raises(ShuffleSearchError, match=r"^--gpus-per-trial 0.5: CUDA is not available here"):
        run_jobs(len, [{"obj": []}], cpus_per_job=1, on_result=print, gpus_per_job=0.5)
    assert not ray.is_initialized()  # refused before Ray started


@no_cuda
def test_cli_refuses_cuda_without_cuda_exit_2(tmp_path):
    done = run_cli("train-proxy", "shufflenet_v2_x0_5", "--device", "cuda", "--epochs", "1", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "error: proxy.device = 'cuda': CUDA is not available here" in done.stderr

    space = tiny_space(tmp_path)
    data = yaml.safe_load(space.read_text())
    data["proxy"]["device"] = "cuda"
    space.write_text(yaml.safe_dump(data))
    done = run_cli("search", str(space), "--name", "gpu", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert f"{space}: proxy.device = 'cuda': a trial gets a GPU only with --gpus-per-trial > 0" in done.stderr

    done = run_cli("search", str(tiny_space(tmp_path)), "--name", "gpu", "--gpus-per-trial", "0.25", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "tiny.yaml: --gpus-per-trial 0.25: CUDA is not available here" in done.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_and_repeats(amp, one_thread):
    data = load_data("digits", subset_per_class=20, search_per_class=10)
    cfg = TrainConfig(epochs=1, device="cpu", amp=amp, bn_recalibration=64)
    a, b = train_proxy(SMALL, data, cfg), train_proxy(SMALL, data, cfg)
    full = train_proxy(SMALL, data, dataclasses.replace(cfg, amp="none"))
    assert a.status == "complete" and math.isfinite(a.final["search_loss"]) and a.final["search_acc"] > 0
    assert a.final["search_acc"] == b.final["search_acc"] and a.final["train_loss"] == b.final["train_loss"]
    assert a.final["train_loss"] != full.final["train_loss"]  # trained in reduced precision
    assert all(v.dtype == torch.float32 and v.device.type == "cpu"
               for k, v in a.state_dict.items() if "num_batches" not in k)


@no_cuda
@pytest.mark.slow
def test_final_and_baseline_refuse_a_gpu_share_without_cuda_before_writing(tmp_path):
    from shufflesearch import search
    from shufflesearch.evaluation._baselines import run_baselines
    from shufflesearch.evaluation._final import final_evaluation

    run = search(tiny_space(tmp_path, epochs=1), trials=1, runs_dir=tmp_path / "runs", progress=None).run_dir
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for call in (lambda: final_evaluation(run, top=1, seeds=1, zoo=[], gpus_per_trial=0.5, progress=None),
                 lambda: run_baselines(run, ["shufflenet_v1_g3_x0_25"], gpus_per_trial=0.5)):
        with pytest.raises(ShuffleSearchError, match=r"--gpus-per-trial 0.5: CUDA is not available here"):
            call()
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # no final/, no baselines.jsonl


# --- fractional GPU shares through a real Ray that declares one GPU (no CUDA needed to schedule) ---
@pytest.fixture
def ray_one_gpu():
    """Per test, so the tests above (which need no Ray running) pass in any order."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _assigned(tag: str) -> dict:
    return ray.get_runtime_context().get_assigned_resources()


def test_fractional_gpu_jobs_reach_ray(ray_one_gpu):
    got = []
    run_jobs(_assigned, [{"tag": str(i)} for i in range(3)], cpus_per_job=1, gpus_per_job=0.25,
             on_result=lambda job, res: got.append({k: res[k] for k in ("CPU", "GPU")}))
    assert got == [{"CPU": 1.0, "GPU": 0.25}] * 3
    with pytest.raises(ShuffleSearchError, match=r"^--gpus-per-trial 2: the Ray cluster has 1 GPU"):
        run_jobs(_assigned, [{"tag": "x"}], cpus_per_job=1, gpus_per_job=2, on_result=print)


def _train_recording_resources(arch, data, cfg, report, out):
    """The trial's device and Ray resources written down; then the real trainer, on CPU (no CUDA here)."""
    with open(out / f"trial_{arch.hash}.json", "w") as f:
        json.dump({"device": cfg.device, "resources": ray.get_runtime_context().get_assigned_resources()}, f)
    return train_proxy(arch, data, dataclasses.replace(cfg, device="cpu"), report)


@pytest.mark.slow
def test_fractional_gpu_trials_reach_tune(tmp_path, ray_one_gpu):
    from shufflesearch import search

    space = tiny_space(tmp_path, epochs=1)
    data = yaml.safe_load(space.read_text())
    data["proxy"]["latency_device"] = "cpu"
    space.write_text(yaml.safe_dump(data))
    result = search(space, trials=2, runs_dir=tmp_path / "runs", gpus_per_trial=0.5, progress=None,
                    train_fn=functools.partial(_train_recording_resources, out=tmp_path))
    assert result.counts["complete"] == 2
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("trial_*.json")]
    assert seen and all(s == {"device": "cuda", "resources": {"CPU": 1.0, "GPU": 0.5}} for s in seen)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["gpus_per_trial"] == 0.5 and "--gpus-per-trial 0.5" in config["command"]


def test_augmentation_is_a_crop_of_each_padded_image_or_its_mirror():
    """augment_batch crops all images in one gather (no per-image loop, for the GPU); check it crops."""
    import torch.nn.functional as F

    from shufflesearch.data._data import augment_batch

    x = torch.randn(16, 3, 16, 12)
    out = augment_batch(x, torch.Generator().manual_seed(0), hflip=True)
    padded = F.pad(x, (2, 2, 2, 2))
    windows = [[padded[i, :, dy:dy + 16, dx:dx + 12] for dy in range(5) for dx in range(5)] for i in range(16)]
    assert all(any(torch.equal(out[i], v) or torch.equal(out[i], v.flip(-1)) for v in windows[i]) for i in range(16))


@no_cuda
def test_train_retrains_with_the_models_recorded_device(tmp_path):
    import safetensors.torch

    from shufflesearch import build, cost
    from shufflesearch.models._folder import write_model_dir
    from shufflesearch.train._final import train_final

    data = load_data("digits", subset_per_class=5)
    weights = safetensors.torch.save(build(SMALL, num_classes=10, in_chans=1).state_dict())
    c = cost(SMALL)
    write_model_dir(tmp_path / "models" / "ss_gpu_best", SMALL, weights, data.info(),
                    {"source": "test", "mflops": c.mflops, "params": c.params,
                     "proxy": {"device": "cuda", "amp": "bf16"}})  # searched on a GPU
    with pytest.raises(ShuffleSearchError, match=r"^proxy.device = 'cuda': CUDA is not available here"):
        train_final("ss_gpu_best", epochs=1)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["ss_gpu_best"]  # nothing written


def test_a_final_evaluation_recorded_before_devices_resumes_as_cpu(tmp_path):
    """Its config.json lacks device/amp/latency_device/cache: they count as what it ran with (CPU)."""
    from shufflesearch.evaluation._final import _check_same_protocol
    from shufflesearch.space._configs import DataConfig

    train, data = dataclasses.asdict(TrainConfig(device="cpu")), dataclasses.asdict(DataConfig())
    old = {"data": {k: v for k, v in data.items() if not k.startswith("cache")},
           "train": {k: v for k, v in train.items() if k not in ("device", "amp", "latency_device")}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    _check_same_protocol(tmp_path / "config.json", {"data": data, "train": train})
    with pytest.raises(ShuffleSearchError, match="another protocol"):  # on a GPU it is another protocol
        _check_same_protocol(tmp_path / "config.json", {"data": data, "train": {**train, "device": "cuda"}})
