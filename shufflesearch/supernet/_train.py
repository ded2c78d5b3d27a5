"""Training a `Supernet` (Single Path One-Shot): one uniformly sampled path per step, resumable, data-parallel.

Each step draws one architecture with the space's own sampler (`SearchSpace.sample`) under an Optuna
`RandomSampler` seeded by (seed, step): uniform over the structures, log-uniform over the budget
fraction, the widest width within it, so every path is within the budget; `flops_band` rejects
paths outside a band of the budget, as SPOS does. Every data-parallel worker draws the same path.
Gradients reach only the path's blocks; the others' are cleared before the optimiser step, so
momentum and weight decay do not move weights the step did not use.

The run folder's `supernet/` holds `supernet.safetensors` (weights, BatchNorm statistics, the
optimiser's momentum, and in its metadata the step and the settings) and `state.json` (progress),
both written atomically; a killed training (even `kill -9`) resumes from the last checkpoint with
the same data order, paths and augmentation as an uninterrupted one. A checkpoint of other settings
is refused.

With `workers > 1` the training runs under Ray Train's `TorchTrainer` (DistributedDataParallel, gloo
on CPU), each worker on its share of every batch, in a `ray_session` (local Ray, or the cluster at
`address`; the run folder must then be on storage every node shares).

Written here because SPOS training is a loop over sampled paths that no trainer library runs as such;
the optimiser, schedule, DDP and worker group are timm's, torch's and Ray's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.nn as nn

from shufflesearch._io import read_json, write_bytes_atomic, write_json_atomic
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.space._configs import SupernetConfig

if TYPE_CHECKING:
    from shufflesearch.data._data import ProxyData
    from shufflesearch.space._space import SearchSpace

CHECKPOINT = "supernet.safetensors"
STATE = "state.json"
_MAX_DRAWS = 1000  # paths drawn per step before a flops_band is declared unreachable
_STORAGE_DRAWS = 10_000


def _training(cfg: SupernetConfig, seed: int) -> dict[str, Any]:
    return {**cfg.training(), "seed": seed}


def _rng_seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


class PathSampler:
    """The path of each training step: `space.sample` under an Optuna `RandomSampler` seeded by (seed,
    step), drawn again until its cost lies in `flops_band` (fractions of the budget). Every step's path
    depends on (seed, step) alone, so a resumed training and every data-parallel worker draw the same."""

    def __init__(self, space: SearchSpace, seed: int, flops_band: tuple = (0.0, 1.0)):
        self.space, self.seed, self.flops_band = space, seed, flops_band
        self.low, self.high = (f * space.budget.macs for f in flops_band)
        self.draws = 0

    def _study(self, seed: int) -> Any:
        """A study over an in-memory storage renewed every `_STORAGE_DRAWS` draws (it keeps every trial)."""
        import optuna

        from shufflesearch._exec._optuna import quiet_optuna

        if self.draws % _STORAGE_DRAWS == 0:
            self.storage = optuna.storages.InMemoryStorage()  # created directly: create_study logs each time
            with quiet_optuna():  # and so does creating a study in it
                self.study_name = self.storage.get_study_name_from_id(
                    self.storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE]))
        self.draws += 1
        return optuna.Study(study_name=self.study_name, storage=self.storage,
                            sampler=optuna.samplers.RandomSampler(seed=seed))

    def __call__(self, step: int) -> Arch:
        for draw in range(_MAX_DRAWS):
            study = self._study(_rng_seed(self.seed, step, draw))
            arch = self.space.sample(study.ask())
            if arch is not None and self.low <= self.space.cost(arch).macs <= self.high:
                return arch
        raise ShuffleSearchError(f"{self.space.source}: supernet.flops_band = {list(self.flops_band)}: no path "
                                 f"of the space found in it after {_MAX_DRAWS} draws; widen the band")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "supernet"


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The supernet's `state.json` in `run_dir`, None if it has none."""
    path = checkpoint_dir(run_dir) / STATE
    return read_json(path, "the supernet's training state") if path.exists() else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a supernet checkpoint; unreadable or corrupt is a one-line error."""
    import safetensors
    import safetensors.torch

    try:
        with safetensors.safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        return safetensors.torch.load_file(str(path)), metadata
    except (OSError, safetensors.SafetensorError) as e:
        raise ShuffleSearchError(f"{path}: cannot read the supernet checkpoint ({e}); delete it to train anew") \
            from None


def _save(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    from shufflesearch.train._weights import weights_bytes

    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    names = {p: n for n, p in net.named_parameters()}
    for p, state in optimizer.state.items():
        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
            tensors[f"momentum.{names[p]}"] = state["momentum_buffer"]
    write_bytes_atomic(path, weights_bytes(tensors, {k: json.dumps(v) for k, v in meta.items()}))


def _restore(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, expected: dict[str, Any]) -> int:
    """Load a checkpoint into `net` and `optimizer`; the step it was taken after."""
    tensors, metadata = load_checkpoint(path)
    settings = json.loads(metadata.get("settings", "null"))
    if settings != expected:
        changed = sorted(k for k in set(expected) | set(settings or {})
                         if (settings or {}).get(k) != expected.get(k))
        raise ShuffleSearchError(f"{path}: trained with other settings ({', '.join(changed) or 'unknown'} "
                                 "differ); restore them or delete the supernet folder to train anew")
    net.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    params = dict(net.named_parameters())
    for k, v in tensors.items():
        if k.startswith("momentum."):
            p = params[k[len("momentum."):]]
            optimizer.state[p]["momentum_buffer"] = torch.empty_like(p).copy_(v)  # in the parameter's layout
    return int(json.loads(metadata["step"]))


@dataclass(frozen=True)
class _Training:
    """What every worker's training loop is given (through Ray Train, to a data-parallel one).

    Args:
        space: The space whose supernet trains.
        cfg: The `supernet:` settings.
        seed: The run's seed (paths, data order, augmentation).
        data: The proxy data (its training split).
        run_dir: The run folder (absolute: a Ray worker runs elsewhere), whose `supernet/` is written.
        progress: Where the training's lines go (a data-parallel training prints none).
    """

    space: SearchSpace
    cfg: SupernetConfig
    seed: int
    data: ProxyData
    run_dir: str
    progress: Callable[[str], None] | None = None


def _train_loop(training: _Training) -> None:
    """One worker's training (all of it when there is one)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from shufflesearch.data._data import augment_batch
    from shufflesearch.supernet._network import Supernet

    space, cfg, seed, data = training.space, training.cfg, training.seed, training.data
    folder = checkpoint_dir(training.run_dir)
    progress = training.progress or (lambda line: None)
    rank, world = 0, 1
    if cfg.workers > 1:
        import ray.train

        context = ray.train.get_context()
        rank, world = context.get_world_rank(), context.get_world_size()
        torch.set_num_threads(cfg.threads)  # a Ray Train worker's process is ours
    torch.manual_seed(seed)
    net = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans)
    if space.proxy.train.channels_last:  # as the proxy trains: ~1.35x the steps/s of NCHW here
        net = net.to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(net, opt="sgd", lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)
    n = len(data.train_y)
    batch = cfg.batch_size // world
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch < 1:
        raise ShuffleSearchError(f"dataset {data.spec!r}: {n} training images, fewer than "
                                 f"supernet.batch_size = {cfg.batch_size}")
    total = steps_per_epoch * cfg.epochs
    scheduler, _ = create_scheduler_v2(optimizer, sched="poly", decay_rate=1.0, num_epochs=cfg.epochs,
                                       warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr / 100,
                                       step_on_epochs=False, updates_per_epoch=steps_per_epoch)
    settings = {**_training(cfg, seed), "space": space.to_yaml(), "data": data.info()}
    step, spent = 0, 0.0  # spent: the training's seconds in earlier calls
    if (folder / CHECKPOINT).exists():
        step = _restore(folder / CHECKPOINT, net, optimizer, settings)
        spent = (read_state(training.run_dir) or {}).get("seconds", 0.0)
        scheduler.step_update(step)  # the lr of the step after the checkpoint's
    model = net
    if cfg.workers > 1:
        import ray.train.torch

        model = ray.train.torch.prepare_model(net, parallel_strategy_kwargs={"find_unused_parameters": True})
    params = dict(net.named_parameters())
    sample_path = PathSampler(space, seed, cfg.flops_band)
    loss_fn = nn.CrossEntropyLoss()
    started, window, losses = time.monotonic(), time.monotonic(), []

    def checkpoint(done_step: int, loss: float) -> None:
        if rank == 0:
            _save(folder / CHECKPOINT, net, optimizer, {"step": done_step, "settings": settings})
            state = {"step": done_step, "total_steps": total, "epoch": done_step / steps_per_epoch,
                     "train_loss": loss, "done": done_step >= total, "training": _training(cfg, seed),
                     "workers": world, "seconds": spent + time.monotonic() - started}
            write_json_atomic(folder / STATE, state)

    net.train()
    while step < total:
        epoch = step // steps_per_epoch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_rng_seed(seed, epoch)))
        arch = sample_path(step)
        start = (step % steps_per_epoch) * cfg.batch_size + rank * batch
        idx = order[start:start + batch]
        x = data.train_x[idx]
        if data.augment:
            x = augment_batch(x, torch.Generator().manual_seed(_rng_seed(seed, step, rank)), data.hflip)
        loss = loss_fn(model(x, arch), data.train_y[idx])
        if not torch.isfinite(loss):
            raise ShuffleSearchError(f"supernet training diverged at step {step} (loss {loss.item()}); "
                                     "lower supernet.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        used = net.path_blocks(arch)
        for name, p in params.items():
            if name not in used:
                p.grad = None
        optimizer.step()
        step += 1
        scheduler.step_update(step)
        losses.append(loss.item())
        if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0 or step == total:
            mean = float(np.mean(losses))
            checkpoint(step, mean)
            seconds = time.monotonic() - window
            progress(f"supernet step {step:>5}/{total}  epoch {step / steps_per_epoch:5.2f}/{cfg.epochs}  "
                     f"loss {mean:.4f}  lr {optimizer.param_groups[0]['lr']:.4f}  "
                     f"{len(losses) * cfg.batch_size / seconds:.0f} img/s  {time.monotonic() - started:.0f}s")
            window, losses = time.monotonic(), []


def train_supernet(space: SearchSpace, run_dir: str | Path, cfg: SupernetConfig | None = None, *,
                   seed: int = 0, address: str | None = None, data: ProxyData | None = None,
                   progress: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train the supernet of `space` into `run_dir/supernet/`, resuming a checkpoint there; its state.

    Returns `state.json`'s contents (step, total_steps, train_loss, done, seconds: the wall time of the
    training so far, over every call that resumed it, ...). A finished training is
    not repeated. `cfg` defaults to the space's `supernet:` section; `data` to the space's proxy data
    (`load_data(space.proxy.data, "search")`: pass it when already loaded).
    """
    from shufflesearch._exec._devices import TorchThreads

    cfg = cfg or space.supernet
    state = read_state(run_dir)
    if state is not None and state.get("done") and state.get("training") == _training(cfg, seed):
        return state
    if data is None:
        data = load_data(space.proxy.data, "search")
    training = _Training(space, cfg, seed, data, str(Path(run_dir).resolve()))
    t0 = time.monotonic()
    if cfg.workers == 1:
        with TorchThreads(cfg.threads):
            _train_loop(replace(training, progress=progress))
    else:
        _fit_data_parallel(training, address)
    state = read_state(run_dir)
    if progress:
        progress(f"supernet trained: {state['step']} steps, {cfg.workers} worker(s), "
                 f"{time.monotonic() - t0:.0f}s in this call -> {checkpoint_dir(run_dir)}")
    return state


def _fit_data_parallel(training: _Training, address: str | None) -> None:
    """`training` on `cfg.workers` Ray Train workers (DistributedDataParallel over gloo)."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from shufflesearch._exec._ray import ray_session

    cfg = training.cfg
    with ray_session(address):
        trainer = TorchTrainer(
            partial(_train_loop, training), torch_config=TorchConfig(backend="gloo"),
            scaling_config=ray.train.ScalingConfig(num_workers=cfg.workers, use_gpu=False,
                                                   resources_per_worker={"CPU": cfg.threads}),
            run_config=ray.train.RunConfig(name="train", storage_path=str(checkpoint_dir(training.run_dir) / "ray"),
                                           failure_config=ray.train.FailureConfig(max_failures=0)))
        try:
            trainer.fit()
        except Exception as e:  # a worker's ShuffleSearchError arrives wrapped in Ray's error
            cause = e
            while cause is not None and not isinstance(cause, ShuffleSearchError):
                cause = cause.__cause__
            if cause is not None:
                raise ShuffleSearchError(str(cause)) from None
            raise
