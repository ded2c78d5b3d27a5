"""Where training runs: the `proxy.device` setting resolved and checked, GPU shares checked against the
machine or the Ray cluster, the Ray resources a trial or job asks for, and torch's thread count for a
block (`TorchThreads`).

`device: auto` (the default) means, in a plain call (`train_proxy`, `shufflesearch train`), CUDA when
this process has it; for a Ray trial or job, the GPU share it is given (`--gpus-per-trial`), so a trial
without one trains on CPU even on a GPU node and never touches a GPU Ray handed to another trial.
`cuda` where there is none, a GPU share without a GPU, or a share a trial would leave idle is one
line naming the setting and the value.
"""

from __future__ import annotations

from typing import Any

from shufflesearch.errors import ShuffleSearchError

DEVICES = ("auto", "cpu", "cuda")


def gpu_share_problem(gpus: float) -> str | None:
    """Why `gpus` cannot be one trial's GPU share (Ray takes fractions below 1, whole numbers above)."""
    if gpus < 0:
        return "must be >= 0"
    if gpus > 1 and gpus != int(gpus):
        return "must be a fraction of one GPU (0.25: four trials a GPU) or a whole number of GPUs"
    return None


def check_gpu_share(gpus: float, flag: str = "--gpus-per-trial") -> None:
    why = gpu_share_problem(gpus)
    if why:
        raise ShuffleSearchError(f"{flag} {gpus:g}: {why}")


def _cuda_missing() -> str:
    import torch

    return (f"CUDA is not available here (torch {torch.__version__}"
            f"{'' if torch.version.cuda else ', built without CUDA'}, {torch.cuda.device_count()} GPUs visible)")


def local_device(device: str, setting: str = "proxy.device") -> str:
    """`device` in this process: 'auto' is CUDA if available; 'cuda' without CUDA is a one-line error."""
    import torch

    if device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if device == "auto":
        return "cpu"
    raise ShuffleSearchError(f"{setting} = {device!r}: {_cuda_missing()}; use auto or cpu")


def trial_device(device: str, gpus: float, setting: str = "proxy.device") -> str:
    """The device a Ray trial or job given `gpus` GPUs uses for `device` ('cpu' or 'cuda')."""
    check_gpu_share(gpus)
    if device == "auto":
        return "cuda" if gpus > 0 else "cpu"
    if device == "cuda" and gpus == 0:
        raise ShuffleSearchError(f"{setting} = 'cuda': a trial gets a GPU only with --gpus-per-trial > 0 "
                                 "(1: a GPU each, 0.25: four trials a GPU)")
    if device == "cpu" and gpus > 0:
        raise ShuffleSearchError(f"{setting} = 'cpu' with --gpus-per-trial {gpus:g}: the GPU share would sit idle; "
                                 "use auto or cuda, or no GPUs")
    return device


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster to use: `address`, else $RAY_ADDRESS as Ray's own tools read it (`ray job submit`
    sets it), else None: a local Ray."""
    import os

    return address or os.environ.get("RAY_ADDRESS") or None


def check_gpus_here(gpus: float, address: str | None) -> None:
    """Before a local Ray starts (nothing written yet): a GPU share needs a CUDA GPU on this machine."""
    import ray
    import torch

    if gpus > 0 and cluster_address(address) is None and not ray.is_initialized() and not torch.cuda.is_available():
        raise ShuffleSearchError(f"--gpus-per-trial {gpus:g}: {_cuda_missing()}; leave it out to train on CPU")


def check_cluster_gpus(gpus: float) -> None:
    """In a Ray session: the cluster must have at least one trial's GPU share."""
    import ray

    have = ray.cluster_resources().get("GPU", 0.0)
    if gpus > have:
        raise ShuffleSearchError(f"--gpus-per-trial {gpus:g}: the Ray cluster has {have:g} GPU(s)")


def ray_resources(cpus: int, gpus: float) -> dict[str, Any]:
    """What one trial or job asks Ray for: `cpus` CPUs and `gpus` (possibly a fraction of one) GPUs."""
    check_gpu_share(gpus)
    return {"cpu": cpus, "gpu": gpus}


def for_trials(cfg: Any, gpus: float, address: str | None) -> Any:
    """A `TrainConfig` as Ray trials or jobs given `gpus` GPUs each run it, its device resolved (above);
    every check a driver makes before it writes anything (`address`: the Ray cluster, None: a local one)."""
    import dataclasses

    if cfg.latency_device == "cuda":
        trial_device("cuda", gpus, "proxy.latency_device")
    resolved = dataclasses.replace(cfg, device=trial_device(cfg.device, gpus))
    check_gpus_here(gpus, address)
    return resolved


class TorchThreads:
    """torch's intra-op thread count set for a block and restored after."""
    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        import torch

        self.saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self.saved)
