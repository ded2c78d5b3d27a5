"""Training a `Supernet` (Single Path One-Shot): one uniformly sampled path per step, resumable, data-parallel.

Each step draws one architecture with the space's own sampler (`SearchSpace.sample`) under an Optuna
`RandomSampler` seeded by (seed, step): uniform over the structures, log-uniform over the budget
fraction, the widest width within it, so every path is within the budget; `flops_band` rejects
paths outside a band of the budget, as SPOS does. Every data-parallel worker draws the same path.
Gradients reach only the path's blocks; the others' are cleared before the optimiser step, so
momentum and weight decay do not move weights the step did not use.

The run folder's `supernet/` holds `supernet.safetensors` (weights, BatchNorm statistics, the
optimiser's momentum, and in its metadata the step, the training settings, the hash of the space it
was built from and the identity of the data it was trained on) and `state.json` (progress), both
written atomically by the driver; a killed training (even `kill -9`) resumes from the last
checkpoint with the same data order, paths and augmentation as an uninterrupted one. A checkpoint of
other settings, another space or other data is refused, when resumed, reused or loaded.

With `workers > 1`, or a GPU share (`gpus`), the training runs under Ray Train's `TorchTrainer`
(DistributedDataParallel: gloo on CPU, nccl on GPUs), each worker on its share of every batch, in a
`ray_session` (local Ray, or the cluster at `address`). Its workers never write the run folder: rank 0
reports each checkpoint to Ray Train, which keeps it in `storage` (a path or URI every node reaches,
which a cluster whose nodes may run the workers needs; Ray's default `~/ray_results` on one machine).
A worker or node that dies restarts the worker group from the latest checkpoint (Ray Train's
`FailureConfig(max_failures=max_retries)`, `ray.train.get_checkpoint()`), without the user running
anything again; a driver killed meanwhile resumes from it too (the run's name in the storage is
fixed). At the end the driver copies the last checkpoint into the run folder and removes the run
from the storage.

Written here because SPOS training is a loop over sampled paths that no trainer library runs as such;
the optimiser, schedule, DDP and worker group are timm's, torch's and Ray's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from shufflesearch._exec._retries import DEFAULT_MAX_RETRIES
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


def space_hash(space: SearchSpace) -> str:
    """What a supernet is built and its paths sampled from, hashed: the budget, the width range, the stem,
    the head and every stage's choices, as validated (not the space's name, search or proxy settings)."""
    built_from = (space.budget, space.width_multiplier, space.stem, space.stem_channels, space.head_conv,
                  space.shared, space.stages)
    return hashlib.sha256(repr(built_from).encode()).hexdigest()[:16]


def data_identity(data: ProxyData, split_seed: int) -> dict[str, Any]:
    """What a supernet was trained on: the dataset, its image size and channels, the split seed, the sizes
    of the training and scored splits, augmentation, and a digest of the training labels (which the
    split and subset choose and order)."""
    return {"spec": data.spec, "image_size": data.image_size, "in_chans": data.in_chans,
            "num_classes": data.num_classes, "split_seed": split_seed, "train_images": len(data.train_y),
            f"{data.eval_split}_images": len(data.eval_y), "augment": data.augment,
            "labels": hashlib.sha256(data.train_y.numpy().tobytes()).hexdigest()[:16]}


def identity(space: SearchSpace, data: ProxyData, cfg: SupernetConfig, seed: int) -> dict[str, Any]:
    """A supernet checkpoint's identity, kept in its metadata: the training settings (and seed), the
    space's hash and the data's identity. A checkpoint is resumed, reused or loaded only by its own."""
    return {"settings": _training(cfg, seed), "space": space_hash(space),
            "data": data_identity(data, space.proxy.data.split_seed)}


def check_identity(path: Path, metadata: dict[str, str], expected: dict[str, Any], advice: str) -> None:
    """A one-line error unless the checkpoint at `path` (its `metadata`) has the `expected` identity."""
    if "space" not in metadata or "data" not in metadata:
        raise ShuffleSearchError(f"{path}: written by an older shufflesearch, which did not record the space "
                                 f"and data it was trained on; {advice}")
    recorded = {k: json.loads(metadata.get(k, "null")) for k in expected}
    settings = recorded["settings"] or {}
    differ = sorted(k for k in set(expected["settings"]) | set(settings)
                    if settings.get(k) != expected["settings"].get(k))
    if recorded["space"] != expected["space"]:
        differ.append("the search space")
    data = recorded["data"] or {}
    differ += [f"the data's {k}" for k in expected["data"] if data.get(k) != expected["data"][k]]
    if differ:
        raise ShuffleSearchError(f"{path}: trained with other settings ({', '.join(differ)} differ); {advice}")


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


def check_learned(state: dict[str, Any], cfg: SupernetConfig, num_classes: int, folder: Path) -> None:
    """A one-line error unless the supernet whose training `state` is (its `state.json`, in `folder`) learned.

    It learned if its last epoch's mean training loss (over that epoch's sampled paths, in train mode)
    is below `cfg.learned_loss` x ln(`num_classes`), the loss of a uniform guess; `learned_loss` None:
    no check. A supernet that did not learn scores every path near chance, and a best picked from those
    scores is noise.
    """
    if cfg.learned_loss is None:
        return
    chance = math.log(num_classes)
    # a training of before epoch_losses were recorded: its last checkpoint's window of steps
    losses = state.get("epoch_losses") or [state.get("train_loss", math.inf)]
    if not losses[-1] < cfg.learned_loss * chance:
        raise ShuffleSearchError(
            f"{folder}: the supernet did not learn: its last epoch's mean training loss {losses[-1]:.3f} is not "
            f"below supernet.learned_loss = {cfg.learned_loss:g} x ln({num_classes}) = "
            f"{cfg.learned_loss * chance:.3f} (a uniform guess scores {chance:.3f}), so its paths' scores would be "
            f"noise and none is scored; delete {folder} and train it longer or with other supernet: settings "
            "(search_spaces/README.md, supernet)")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "supernet"


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The supernet's `state.json` in `run_dir`, None if it has none."""
    path = checkpoint_dir(run_dir) / STATE
    return read_json(path, "the supernet's training state") if path.exists() else None


def read_metadata(path: Path) -> dict[str, str]:
    """A supernet checkpoint's metadata alone (its header); unreadable or corrupt is a one-line error."""
    return load_checkpoint(path, tensors=False)[1]


def load_checkpoint(path: Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (none unless `tensors`) and metadata of a supernet checkpoint; unreadable or corrupt
    is a one-line error."""
    import safetensors
    import safetensors.torch

    try:
        with safetensors.safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        return safetensors.torch.load_file(str(path)) if tensors else {}, metadata
    except (OSError, safetensors.SafetensorError) as e:
        raise ShuffleSearchError(f"{path}: cannot read the supernet checkpoint ({e}); delete it to train anew") \
            from None


def _save(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    from shufflesearch.train._weights import weights_bytes

    tensors = {f"model.{k}": v.cpu() for k, v in net.state_dict().items()}
    names = {p: n for n, p in net.named_parameters()}
    for p, state in optimizer.state.items():
        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
            tensors[f"momentum.{names[p]}"] = state["momentum_buffer"].cpu()
    write_bytes_atomic(path, weights_bytes(tensors, {k: json.dumps(v) for k, v in meta.items()}))


_RETRAIN = "restore them or delete the supernet folder to train anew"


def _restore(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, expected: dict[str, Any]) -> int:
    """Load a checkpoint of the `expected` identity into `net` and `optimizer`; the step it was taken after."""
    tensors, metadata = load_checkpoint(path)
    check_identity(path, metadata, expected, _RETRAIN)
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
        identity: What a checkpoint records and a resumed one must match (`identity`).
        run_dir: The run folder (absolute) whose `supernet/` a training in the driver writes; None under
            Ray Train, whose rank 0 reports its checkpoints to Ray Train instead.
        device: 'cuda' (a Ray Train worker's GPU) or 'cpu'.
        initial: Under Ray Train: the run folder's checkpoint (bytes) and state, which the driver sends,
            to start from where Ray Train has no checkpoint further on.
        progress: Where the training's lines go (a Ray Train training prints none).
    """

    space: SearchSpace
    cfg: SupernetConfig
    seed: int
    data: ProxyData
    identity: dict[str, Any]
    run_dir: str | None = None
    device: str = "cpu"
    initial: tuple[bytes, dict[str, Any]] | None = None
    progress: Callable[[str], None] | None = None


def _steps_per_epoch(cfg: SupernetConfig, data: ProxyData) -> int:
    n = len(data.train_y)
    if n < cfg.batch_size:
        raise ShuffleSearchError(f"dataset {data.spec!r}: {n} training images, fewer than "
                                 f"supernet.batch_size = {cfg.batch_size}")
    return n // cfg.batch_size


def _step_of(folder: Path) -> int:
    return int(json.loads(read_metadata(folder / CHECKPOINT)["step"]))


@contextlib.contextmanager
def _resume_point(training: _Training) -> Iterator[Path | None]:
    """The folder of the checkpoint (and state) to resume from, None to start anew: in the driver, the run
    folder's; under Ray Train, the latest Ray Train has (`ray.train.get_checkpoint()`: after a worker or
    node died, or a driver was killed meanwhile) or the run folder's the driver sent, the further on."""
    if training.run_dir is not None:
        folder = checkpoint_dir(training.run_dir)
        yield folder if (folder / CHECKPOINT).exists() else None
        return
    import ray.train

    latest = ray.train.get_checkpoint()
    with tempfile.TemporaryDirectory() as tmp, (latest.as_directory() if latest else contextlib.nullcontext()) as got:
        found = [Path(got)] if got else []
        if training.initial is not None:
            blob, state = training.initial
            (Path(tmp) / CHECKPOINT).write_bytes(blob)
            (Path(tmp) / STATE).write_text(json.dumps(state))
            found.append(Path(tmp))
        yield max(found, key=_step_of, default=None)


def _report(rank: int, state: dict[str, Any], save: Callable[[Path], None]) -> None:
    """Every Ray Train worker reports (a barrier); rank 0 with the checkpoint `save` writes and the state."""
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            save(Path(tmp) / CHECKPOINT)
            (Path(tmp) / STATE).write_text(json.dumps(state))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({"step": state["step"], "train_loss": state["train_loss"]}, checkpoint=checkpoint)


def _train_loop(training: _Training) -> None:
    """One worker's training (all of it when there is one)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from shufflesearch.data._data import augment_batch
    from shufflesearch.supernet._network import Supernet

    space, cfg, seed, data = training.space, training.cfg, training.seed, training.data
    progress = training.progress or (lambda line: None)
    rank, world, device = 0, 1, torch.device("cpu")
    if training.run_dir is None:  # a Ray Train worker
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        rank, world = context.get_world_rank(), context.get_world_size()
        torch.set_num_threads(cfg.threads)  # a Ray Train worker's process is ours
        if training.device == "cuda":
            device = ray.train.torch.get_device()  # the GPU Ray gave this worker
    torch.manual_seed(seed)
    net = Supernet(space, num_classes=data.num_classes, in_chans=data.in_chans).to(device)
    if space.proxy.train.channels_last:  # as the proxy trains: ~1.35x the steps/s of NCHW here
        net = net.to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(net, opt="sgd", lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=0.9)
    n = len(data.train_y)
    batch = cfg.batch_size // world
    steps_per_epoch = _steps_per_epoch(cfg, data)
    total = steps_per_epoch * cfg.epochs
    scheduler, _ = create_scheduler_v2(optimizer, sched="poly", decay_rate=1.0, num_epochs=cfg.epochs,
                                       warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr / 100,
                                       step_on_epochs=False, updates_per_epoch=steps_per_epoch)
    step, spent, resumed, last_loss = 0, 0.0, [], None  # spent: the training's seconds in earlier calls
    epoch_losses, this_epoch = [], [0.0, 0]  # each finished epoch's mean loss; this epoch's sum and steps so far
    with _resume_point(training) as folder:
        if folder is not None:
            step = _restore(folder / CHECKPOINT, net, optimizer, training.identity)
            prior = read_json(folder / STATE, "the supernet's training state") if (folder / STATE).exists() else {}
            spent, last_loss = prior.get("seconds", 0.0), prior.get("train_loss")
            resumed = [*prior.get("resumed_from", []), step]
            epoch_losses, this_epoch = prior.get("epoch_losses", []), prior.get("this_epoch", [0.0, 0])
            scheduler.step_update(step)  # the lr of the step after the checkpoint's
    model = net
    if training.run_dir is None:
        model = ray.train.torch.prepare_model(net, parallel_strategy_kwargs={"find_unused_parameters": True})
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)  # once, not per batch
    params = dict(net.named_parameters())
    sample_path = PathSampler(space, seed, cfg.flops_band)
    loss_fn = nn.CrossEntropyLoss()
    started, window, losses, written = time.monotonic(), time.monotonic(), [], False

    def checkpoint(done_step: int, loss: float | None) -> None:
        nonlocal written
        written = True
        state = {"step": done_step, "total_steps": total, "epoch": done_step / steps_per_epoch,
                 "train_loss": loss, "done": done_step >= total, "training": _training(cfg, seed),
                 "epoch_losses": epoch_losses, "this_epoch": this_epoch,
                 "workers": world, "device": device.type, "resumed_from": resumed,
                 "seconds": spent + time.monotonic() - started}
        save = partial(_save, net=net, optimizer=optimizer,
                       meta={**training.identity, "step": done_step, "total_steps": total,
                             "epoch_losses": epoch_losses})
        if training.run_dir is None:
            _report(rank, state, save)
            return
        folder = checkpoint_dir(training.run_dir)
        save(folder / CHECKPOINT)
        write_json_atomic(folder / STATE, state)

    net.train()
    while step < total:
        epoch = step // steps_per_epoch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_rng_seed(seed, epoch))).to(device)
        arch = sample_path(step)
        start = (step % steps_per_epoch) * cfg.batch_size + rank * batch
        idx = order[start:start + batch]
        x = train_x[idx]
        if data.augment:
            x = augment_batch(x, torch.Generator().manual_seed(_rng_seed(seed, step, rank)), data.hflip)
        loss = loss_fn(model(x, arch), train_y[idx])
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
        this_epoch = [this_epoch[0] + losses[-1], this_epoch[1] + 1]
        if step % steps_per_epoch == 0:
            epoch_losses, this_epoch = [*epoch_losses, this_epoch[0] / this_epoch[1]], [0.0, 0]
        if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0 or step == total:
            last_loss = float(np.mean(losses))
            checkpoint(step, last_loss)
            seconds = time.monotonic() - window
            progress(f"supernet step {step:>5}/{total}  epoch {step / steps_per_epoch:5.2f}/{cfg.epochs}  "
                     f"loss {last_loss:.4f}  lr {optimizer.param_groups[0]['lr']:.4f}  "
                     f"{len(losses) * cfg.batch_size / seconds:.0f} img/s  {time.monotonic() - started:.0f}s")
            window, losses = time.monotonic(), []
    if not written:  # resumed at the end (a state or a report lost): the finished checkpoint once more
        checkpoint(step, last_loss)


def train_supernet(space: SearchSpace, run_dir: str | Path, cfg: SupernetConfig | None = None, *,
                   seed: int = 0, address: str | None = None, data: ProxyData | None = None,
                   progress: Callable[[str], None] | None = print, storage: str | None = None,
                   gpus: float = 0.0, max_retries: int = DEFAULT_MAX_RETRIES) -> dict[str, Any]:
    """Train the supernet of `space` into `run_dir/supernet/`, resuming a checkpoint there; its state.

    Returns `state.json`'s contents (step, total_steps, train_loss, done, resumed_from: the steps it
    resumed at, seconds: the wall time of the training so far, over every call that resumed it, ...).
    A finished training is not repeated; a checkpoint of other settings, space or data is refused; a
    supernet that did not learn (`check_learned`) is a one-line error, after training or when reused.
    `cfg` defaults to the space's `supernet:` section; `data` to the space's proxy data
    (`load_data(space.proxy.data, "search")`: pass it when already loaded).

    One worker on CPU trains in this process. `cfg.workers > 1`, or `gpus` (each worker's GPU share,
    `--gpus-per-trial`; `proxy.device` resolved as for trials) trains under Ray Train at `address`:
    `storage` (overriding `cfg.storage`) is where it keeps the checkpoints, a path or URI every node
    reaches, which a cluster whose other nodes may run the workers needs; a worker or node that dies
    restarts the workers from the latest checkpoint, up to `max_retries` times.
    """
    from shufflesearch._exec._devices import TorchThreads, trial_device

    cfg = cfg or space.supernet
    if storage is not None:
        cfg = replace(cfg, storage=storage)
    device = trial_device(space.proxy.train.device, gpus)
    if cfg.workers > 1 and 0 < gpus < 1:
        raise ShuffleSearchError(f"--gpus-per-trial {gpus:g} with supernet.workers = {cfg.workers}: each "
                                 "data-parallel worker needs a GPU of its own (nccl); use a whole GPU or one worker")
    if data is None:
        data = load_data(space.proxy.data, "search")
    expected = identity(space, data, cfg, seed)
    path = checkpoint_dir(run_dir) / CHECKPOINT
    if path.exists():
        check_identity(path, read_metadata(path), expected, _RETRAIN)
        state = read_state(run_dir)
        if state is not None and state.get("done"):
            check_learned(state, cfg, data.num_classes, path.parent)
            return state
    _steps_per_epoch(cfg, data)  # a dataset too small, or a band without paths, fails here, not in a worker
    PathSampler(space, seed, cfg.flops_band)(0)
    training = _Training(space, cfg, seed, data, expected, device=device)
    t0 = time.monotonic()
    if cfg.workers == 1 and device == "cpu":
        with TorchThreads(cfg.threads):
            _train_loop(replace(training, run_dir=str(Path(run_dir).resolve()), progress=progress))
    else:
        _fit_data_parallel(training, Path(run_dir), address, gpus, max_retries, progress)
    state = read_state(run_dir)
    if progress:
        progress(f"supernet trained: {state['step']} steps, {cfg.workers} worker(s) on {device}, "
                 f"{time.monotonic() - t0:.0f}s in this call -> {checkpoint_dir(run_dir)}")
    check_learned(state, cfg, data.num_classes, path.parent)
    return state


def storage_path(storage: str) -> str:
    """`storage` as Ray Train takes it: a URI as it is, a local path absolute (workers have other cwds)."""
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def _storage(cfg: SupernetConfig, gpus: float) -> str | None:
    """Where Ray Train keeps the checkpoints (in a Ray session): `cfg.storage`; else, where no node but
    this one could run a worker, Ray's default (None); else a one-line error naming --storage."""
    import ray

    if cfg.storage is not None:
        return storage_path(cfg.storage)
    here = ray.get_runtime_context().get_node_id()
    need = {"CPU": cfg.threads, **({"GPU": gpus} if gpus else {})}
    elsewhere = sorted(node["NodeManagerAddress"] for node in ray.nodes()
                       if node["Alive"] and node["NodeID"] != here
                       and all(node["Resources"].get(k, 0) >= v for k, v in need.items()))
    if elsewhere:
        raise ShuffleSearchError(
            f"--storage: the supernet's Ray Train workers may run on other nodes than this one "
            f"({', '.join(elsewhere)}), which share no disk with it: name storage every node reaches for its "
            "checkpoints, a shared path (NFS) or a URI (s3://...), with --storage PATH|URI")
    return None


def _fit_data_parallel(training: _Training, run_dir: Path, address: str | None, gpus: float, max_retries: int,
                       progress: Callable[[str], None] | None) -> None:
    """`training` on `cfg.workers` Ray Train workers (DistributedDataParallel over nccl on GPUs, gloo on
    CPU), restarted from the latest checkpoint when a worker or node dies (up to `max_retries` times);
    its last checkpoint is then copied into the run folder here, by the driver."""
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from shufflesearch._exec._devices import check_cluster_gpus
    from shufflesearch._exec._ray import ray_session
    from shufflesearch._exec._retries import failure_reason

    cfg, folder = training.cfg, checkpoint_dir(run_dir)
    initial = None
    if (folder / CHECKPOINT).exists():  # of this identity (checked): the workers start from it
        initial = ((folder / CHECKPOINT).read_bytes(), read_state(run_dir) or {})
    # one name a run and identity: a driver killed meanwhile resumes from the checkpoints in the storage
    key = json.dumps([str(run_dir.resolve()), training.identity], sort_keys=True)
    name = f"{run_dir.name}-supernet-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    with ray_session(address, None if ray.is_initialized() else run_dir / "ray.log"):  # a search's: its log already
        check_cluster_gpus(gpus)
        storage = _storage(cfg, gpus)
        per_worker = {"CPU": cfg.threads, **({"GPU": gpus} if gpus else {})}
        if progress:
            progress(f"supernet: training on {cfg.workers} Ray Train worker(s) of "
                     f"{', '.join(f'{v:g} {k}' for k, v in per_worker.items())}; checkpoints in "
                     f"{storage or ray.train.RunConfig().storage_path}/{name}")
        trainer = TorchTrainer(
            partial(_train_loop, replace(training, initial=initial)),
            torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
            scaling_config=ray.train.ScalingConfig(num_workers=cfg.workers, use_gpu=gpus > 0,
                                                   resources_per_worker=per_worker),
            run_config=ray.train.RunConfig(name=name, storage_path=storage,
                                           failure_config=ray.train.FailureConfig(max_failures=max_retries),
                                           checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1)))
        try:
            result = trainer.fit()
        except ray.train.TrainingFailedError as e:
            failures = list((getattr(e, "worker_failures", None) or {}).values())
            ours = next((f for f in failures if isinstance(f, ShuffleSearchError)), None)
            if ours is not None:  # the training's own error, the same on every attempt
                raise ShuffleSearchError(str(ours)) from None
            raise ShuffleSearchError(
                f"supernet training: its Ray Train workers failed {max_retries + 1} time(s), the last "
                f"({failure_reason(str(e))}); Ray's messages: {run_dir / 'ray.log'}; run the command again to "
                f"continue from the last checkpoint") from None
        with result.checkpoint.as_directory() as reported:  # the storage, read here: the driver writes the run folder
            write_bytes_atomic(folder / CHECKPOINT, (Path(reported) / CHECKPOINT).read_bytes())
            write_json_atomic(folder / STATE, read_json(Path(reported) / STATE, "the supernet's training state"))
        with contextlib.suppress(OSError):  # the run folder has it all now
            result.filesystem.delete_dir(result.path)
