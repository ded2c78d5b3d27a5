"""Final training: a found (or zoo) architecture trained longer, saved as a model of its own.

Training starts from scratch, the usual NAS protocol: the search chose the architecture, and its
proxy weights (a few epochs at proxy settings) stay untouched in their folder. The run's proxy
protocol (dataset, image size, optimizer, schedule, seed) is the starting point; the options given
override it. The result is a sibling folder `<name>_<tag>/` next to the source model (tag default
`e<epochs>`), written like an export, so it is a timm model too (`ss_<run>_best_e100`) and its card
records both the proxy and the final accuracy. Zoo models and genome files go to `runs/train/models/`
as `ss_<name>_<tag>` (before 0.2: `runs/final/models/`, which a run's final evaluation folder
`runs/<run>/final/` resembled; models there still load). An existing folder is never replaced: choose
another tag. Threads: `cpus_per_trial` (default: the source model's proxy setting, for an exported
trial the run's `cpus_per_trial`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from shufflesearch._config import renamed
from shufflesearch._exec._devices import local_device
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._catalog import FOUND, read_model_config, resolve_arch
from shufflesearch.genome._cost import cost
from shufflesearch.models._folder import PREFIX, model_folder, sanitize, write_model_dir
from shufflesearch.space._configs import ProxyConfig, proxy_config_from_dict
from shufflesearch.train._proxy import train_proxy
from shufflesearch.train._weights import weights_bytes

DEFAULT_OUT = Path("runs") / "train" / "models"
LEGACY_OUT = Path("runs") / "final" / "models"  # DEFAULT_OUT before 0.2


def train_final(model: str, *, epochs: int, data: str | None = None, image_size: int | None = None,
                lr: float | None = None, batch_size: int | None = None, seed: int | None = None,
                cpus_per_trial: int | None = None, tag: str | None = None, out: str | Path | None = None,
                onnx: bool = False, report: Callable[[int, dict[str, float]], Any] | None = None,
                threads: int | None = None) -> Path:
    """Train `model` (a found or zoo model name, or a genome file) from scratch; returns the new folder.

    `report(epoch, metrics)` sees every epoch, as in `train_proxy`. `threads` is the old name of
    `cpus_per_trial` (deprecated).
    """
    cpus_per_trial = renamed("cpus_per_trial", cpus_per_trial, "threads", threads)
    if model in FOUND:
        folder = model_folder(model)
        arch, config = read_model_config(folder)
        source = dict(config.get("shufflesearch") or {})
        protocol = proxy_config_from_dict(source["proxy"], str(folder / "config.json")) \
            if source.get("proxy") else ProxyConfig()
        parent, name = folder.parent, model
    else:
        arch = resolve_arch(model)
        c = cost(arch)
        source = {"source": model, "mflops": c.mflops, "params": c.params, "budget_input_size": 224}
        protocol, parent, name = ProxyConfig(), DEFAULT_OUT, PREFIX + sanitize(Path(model).stem)
    tag = sanitize(tag or f"e{epochs}")
    dest = Path(out) / f"{name}_{tag}" if out else parent / f"{name}_{tag}"
    if dest.exists():
        raise ShuffleSearchError(f"{dest}: exists already (final training never replaces a model); "
                                 "choose another --tag")

    data_cfg = replace(protocol.data, **_given(dataset=data, image_size=image_size))
    train_cfg = replace(protocol.train, **_given(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                                 threads=cpus_per_trial))
    local_device(train_cfg.device)  # the run's device setting; a missing GPU fails before the data are read
    loaded = load_data(data_cfg, "test")
    result = train_proxy(arch, loaded, train_cfg, report)
    if result.status != "complete":
        raise ShuffleSearchError(f"{model}: training {result.status} after {result.epochs} of {epochs} epochs "
                                 f"(lr {train_cfg.lr}); try a lower --lr")
    source["final"] = {
        "from": model, "dataset": loaded.spec, "epochs": result.epochs, "train_images": len(loaded.train_y),
        "test_images": len(loaded.eval_y), "test_acc_mean": result.final["test_acc"], "test_acc_sd": None,
        "seeds": 1, "test_accs": [result.final["test_acc"]], "seed": train_cfg.seed,
        "test_loss": result.final["test_loss"], "train": vars(train_cfg), "data": vars(data_cfg),
        "train_seconds": result.train_seconds,
    }
    return write_model_dir(dest, arch, weights_bytes(result.state_dict), loaded.info(), source, onnx=onnx)


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}
