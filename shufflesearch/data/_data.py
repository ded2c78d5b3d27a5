"""Proxy datasets: small image sets held in memory as normalised tensors, resolved from a short spec.

Specs (`load_data(spec, ...)`, or `dataset:` in a space's `proxy:` section):

- `digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, 16 grey levels,
  no download); it has no test split of its own, so one is carved out (below).
- `mnist:DIR`, `fashion_mnist:DIR`: the original IDX files (`train-images-idx3-ubyte[.gz]`,
  `train-labels-idx1-ubyte[.gz]`, `t10k-...`) read from DIR; t10k is the test split. Debian's
  `dataset-fashion-mnist` puts Fashion-MNIST in /usr/share/datasets/fashion-mnist.
- `cifar10:DIR`, `cifar100:DIR`: torchvision's CIFAR in DIR (fetched only with `download=True`);
  its test set is the test split.
- `folder:DIR`: an ImageFolder tree, `DIR/train/<class>/*` with `DIR/val/<class>/*` as the test split,
  or `DIR/<class>/*` (or `train/` alone) with the test split carved out like `digits`.
- `timm:NAME:DIR`: `timm.data.create_dataset(NAME, root=DIR)` splits 'train' and 'validation' (the
  test split), e.g. `timm:torch/cifar10:DIR`, or `timm::DIR` for timm's image-folder reader. Any
  map-style timm dataset whose labels can be listed without reading the images (timm's folder and
  tar readers, Hugging Face datasets, torchvision's); streamed ones (tfds, wds, hfids) cannot be subset.

**Big image sets.** `folder:` and `timm:` list every sample and its label first, choose the
per-class subsets, and decode only the chosen images, on a pool of threads (Pillow releases the GIL
while decoding and resizing; JPEGs are decoded at the smallest DCT scale at least `image_size`). The
resized images are cached on disk (`_data_cache.py`: the `cache_dir` setting, else
$SHUFFLESEARCH_CACHE, else ~/.cache/shufflesearch; `cache: false` turns it off), so the next load of
the same selection reads one file. Before anything is decoded, the memory the selection needs is
estimated, and a selection that would not fit in the memory available stops with one line.

**Three splits.** Every dataset has a training split and a test split: its own, or, where it has none,
a stratified `test_fraction` of each class carved from the training images with `split_seed`. A
search-validation split is carved from the training split the same way (`search_fraction`). The two
views (`load_data(config, split)`):

- `"search"` (what every search trial, baseline and supernet score sees): train on the training split
  minus the search-validation split, score on the search-validation split. The test split is never
  read, not even listed: its files may be missing or unreadable.
- `"test"` (read only by final evaluation): train on the whole training split (search-validation
  included), score on the test split.

A metric is named by the split it was measured on (`search_acc`, `test_acc`): `ProxyData.eval_split`.

Images are resized once, up front, to `image_size` (bilinear, antialiased), and normalised by the
training images' per-channel mean and std. `channels=None` (the default) keeps the source's channels:
grey sets give 1-channel tensors and the model's stem takes `in_chans=1`, which costs a third of a
3-channel stem; `channels=3` repeats grey, `channels=1` converts colour to luma. `subset_per_class`
(of the training images), `search_per_class` and `test_per_class` (of the scored split) keep a seeded
subset of each class. `augment` is applied per batch by the trainer
(`augment_batch`): random crop after zero padding (the channel mean) of `image_size // 8`, plus a
horizontal flip only where the data allow it (not for digits or MNIST, where flips change meaning).

IDX reading is written by hand (a dozen lines): torchvision's reader takes neither gzip nor gives
errors a user can act on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.space._configs import SPLITS, DataConfig, Split, parse_spec


@dataclass(frozen=True)
class ProxyData:
    """A dataset in memory: (N, C, H, W) float32 images, normalised, and int64 labels.

    The model trains on `train_x`/`train_y` and is scored on `eval_x`/`eval_y`, which hold the split
    named by `eval_split`: "search" (search-validation) or "test".
    """
    spec: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_split: Split
    num_classes: int
    label_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False
    hflip: bool = False

    @property
    def in_chans(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]

    @property
    def acc_key(self) -> str:
        """The name of an accuracy on this data's scored split: `search_acc` or `test_acc`."""
        return f"{self.eval_split}_acc"

    def info(self) -> dict[str, Any]:
        """What a model trained on this data needs to know of it (recorded in runs and model configs)."""
        return {"spec": self.spec, "num_classes": self.num_classes, "in_chans": self.in_chans,
                "image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "label_names": list(self.label_names)}

    def summary(self) -> str:
        aug = ("crop+flip" if self.hflip else "crop") if self.augment else "none"
        return (f"{self.spec}: {len(self.train_y)} train / {len(self.eval_y)} {self.eval_split} images, "
                f"{self.num_classes} classes, {self.in_chans}x{self.image_size}x{self.image_size}, "
                f"augment {aug}")


def load_data(spec: str | DataConfig, split: Split = "search", *, image_size: int = 32, seed: int = 0,
              **options: Any) -> ProxyData:
    """Load a dataset into memory, resized and normalised, scored on `split` ("search" or "test").

    `spec` is a dataset spec (then `image_size`, `seed` and `options`, the other `DataConfig` fields,
    complete it) or a whole `DataConfig` (a space's `proxy.data`). Raises ShuffleSearchError before any
    training.
    """
    if split not in SPLITS:
        raise ValueError(f"split = {split!r}: must be one of {SPLITS}")
    cfg = spec if isinstance(spec, DataConfig) else DataConfig(spec, image_size=image_size, split_seed=seed, **options)
    return _load(cfg, split)


def augment_batch(x: torch.Tensor, generator: torch.Generator, hflip: bool) -> torch.Tensor:
    """Random crop of each image after zero padding by size // 8, and a coin-flip mirror if `hflip`."""
    n, c, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).to(x.device)
    at = ((offsets[:, 0, None, None] + torch.arange(h, device=x.device)[:, None]) * (w + 2 * pad)
          + offsets[:, 1, None, None] + torch.arange(w, device=x.device))  # (n, h, w) flat positions in `padded`
    out = padded.flatten(2).gather(2, at.flatten(1)[:, None, :].expand(n, c, h * w)).view(n, c, h, w)  # one op
    if hflip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out[flip] = out[flip].flip(-1)
    return out


# --- sources: each gives its splits as labels plus a loader of the selected images ---------------
@dataclass(frozen=True)
class _Split:
    labels: np.ndarray  # int64, (N,)
    images: Callable[[np.ndarray], torch.Tensor]  # indices -> (n, C, H, W), uint8 or float in [0, 1]
    channels: int = 1  # C of what `images` gives
    identity: Callable[[int], str] | None = None  # what sample i is, for the cache key; None: not cached


@dataclass(frozen=True)
class _Source:
    train: _Split
    test: Callable[[], _Split] | None  # read only when the test split is asked for; None: carve from train
    label_names: tuple[str, ...]
    hflip: bool


def _in_memory(images: torch.Tensor, labels: np.ndarray) -> _Split:
    return _Split(labels.astype(np.int64), lambda idx: images[torch.from_numpy(idx)], images.shape[1])


def _digits(spec: str, arg: str, cfg: DataConfig) -> _Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy(d.images).float().unsqueeze(1) / 16.0
    return _Source(_in_memory(images, d.target), None, tuple(str(n) for n in d.target_names), False)


def read_idx(path: Path, spec: str) -> np.ndarray:
    """An unsigned-byte IDX array (the MNIST file format), gzip-compressed or not."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ShuffleSearchError(f"dataset {spec!r}: cannot read {path} ({e})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ShuffleSearchError(f"dataset {spec!r}: {path} is not an unsigned-byte IDX file (bad magic)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header]) if len(raw) >= header else ()
    if len(dims) != ndim or len(raw) - header != int(np.prod(dims)):
        raise ShuffleSearchError(f"dataset {spec!r}: {path} is truncated or corrupt "
                                 f"({len(raw) - header} data bytes for shape {dims})")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _idx_file(root: Path, base: str, spec: str) -> Path:
    for path in (root / f"{base}.gz", root / base):
        if path.is_file():
            return path
    raise ShuffleSearchError(f"dataset {spec!r}: {base}[.gz] not found in {root}")


def _idx_split(root: Path, prefix: str, spec: str) -> _Split:
    images = read_idx(_idx_file(root, f"{prefix}-images-idx3-ubyte", spec), spec)
    labels = read_idx(_idx_file(root, f"{prefix}-labels-idx1-ubyte", spec), spec)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ShuffleSearchError(f"dataset {spec!r}: {prefix} images {images.shape} and labels "
                                 f"{labels.shape} in {root} do not match")
    return _in_memory(torch.from_numpy(images.copy()).unsqueeze(1), labels)


def _mnist(spec: str, arg: str, cfg: DataConfig) -> _Source:
    import torchvision.datasets as tvd

    root = _existing_dir(arg, spec)
    fashion = spec.startswith("fashion")
    classes = (tvd.FashionMNIST if fashion else tvd.MNIST).classes
    return _Source(_idx_split(root, "train", spec), lambda: _idx_split(root, "t10k", spec), tuple(classes), fashion)


def _cifar(spec: str, arg: str, cfg: DataConfig) -> _Source:
    import torchvision.datasets as tvd

    root = _existing_dir(arg, spec) if not cfg.download else Path(arg)
    cls = tvd.CIFAR100 if spec.startswith("cifar100") else tvd.CIFAR10

    def split(train: bool):
        try:
            ds = cls(str(root), train=train, download=cfg.download)
        except (RuntimeError, OSError) as e:
            hint = "" if cfg.download else " (set download to fetch it)"
            raise ShuffleSearchError(f"dataset {spec!r}: {' '.join(str(e).split())}{hint}") from None
        return _in_memory(torch.from_numpy(ds.data).permute(0, 3, 1, 2), np.asarray(ds.targets)), ds.classes
    train, classes = split(True)
    return _Source(train, lambda: split(False)[0], tuple(classes), True)


_DECODE_CHUNK = 1024  # images fetched, then decoded in parallel, at a time


def _decode_threads() -> int:
    return min(32, os.cpu_count() or 1)


def _decode_image(item: Any, size: int, spec: str) -> np.ndarray:
    """One image (a path, its bytes or a PIL image) as (size, size, 3) uint8 RGB, resized bilinear
    (antialiased); a JPEG is decoded at the smallest DCT scale at least `size` (PIL's `draft`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(item) if isinstance(item, bytes) else item) \
            if isinstance(item, (str, Path, bytes)) else item
        img.draft("RGB", (size, size))
        img = img.convert("RGB").resize((size, size), Image.BILINEAR)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        name = item if isinstance(item, (str, Path)) else type(item).__name__
        raise ShuffleSearchError(f"dataset {spec!r}: cannot read image {name} ({e})") from None
    return np.array(img)  # a writable copy


def _decoded(labels: Any, item: Callable[[int], Any], identity: Callable[[int], str], size: int,
             spec: str) -> _Split:
    """A split of encoded images: `item(i)` gives sample i's path, bytes or PIL image. Only the indices
    asked for are fetched (in order, in this thread: some readers share one file handle) and decoded
    (in parallel threads)."""
    def images(idx: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(idx), 3, size, size, dtype=torch.uint8)

        def decode(row_item: tuple[int, Any]) -> None:
            row, it = row_item
            out[row] = torch.from_numpy(_decode_image(it, size, spec)).permute(2, 0, 1)
        with ThreadPoolExecutor(_decode_threads()) as pool:
            for start in range(0, len(idx), _DECODE_CHUNK):
                chunk = idx[start:start + _DECODE_CHUNK].tolist()
                list(pool.map(decode, enumerate((item(i) for i in chunk), start)))
        return out
    return _Split(np.asarray(labels, np.int64), images, 3, identity)


def _file_identity(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


def _from_files(samples: list[tuple[str, int]], size: int, spec: str) -> _Split:
    """A split of image files, listed as (path, label) pairs."""
    return _decoded([t for _, t in samples], lambda i: samples[i][0], lambda i: _file_identity(samples[i][0]),
                    size, spec)


def _image_folder(path: Path, spec: str, size: int):
    from torchvision.datasets import ImageFolder

    try:
        ds = ImageFolder(str(path))  # lists the files, decodes nothing
    except (FileNotFoundError, OSError) as e:
        raise ShuffleSearchError(f"dataset {spec!r}: {e}") from None
    return _from_files(ds.samples, size, spec), ds.classes


def _folder(spec: str, arg: str, cfg: DataConfig) -> _Source:
    root = _existing_dir(arg, spec)
    if not (root / "train").is_dir():
        split, classes = _image_folder(root, spec, cfg.image_size)
        return _Source(split, None, tuple(classes), True)
    train, classes = _image_folder(root / "train", spec, cfg.image_size)
    if not (root / "val").is_dir():
        return _Source(train, None, tuple(classes), True)

    def test() -> _Split:
        split, test_classes = _image_folder(root / "val", spec, cfg.image_size)
        if test_classes != classes:
            raise ShuffleSearchError(f"dataset {spec!r}: val/ classes {test_classes} differ from train/ {classes}")
        return split
    return _Source(train, test, tuple(classes), True)


def _read_item(item: Any) -> Any:
    """An image a timm reader hands out, as something `_decode_image` takes (an open file: its bytes)."""
    if hasattr(item, "read"):
        with item:
            return item.read()
    if isinstance(item, dict) and "bytes" in item:  # a Hugging Face image feature, undecoded
        return item["bytes"]
    return item


def _timm_split(ds: Any, spec: str, which: str, size: int) -> _Split:
    """A timm dataset's split, its labels listed without decoding an image."""
    from torch.utils.data import IterableDataset

    if isinstance(ds, IterableDataset):
        raise ShuffleSearchError(f"dataset {spec!r}: split {which!r} is streamed (an iterable timm reader), so a "
                                 "subset cannot be chosen from it; use a map-style reader or an image folder")
    reader = getattr(ds, "reader", None)
    samples = getattr(reader if reader is not None else ds, "samples", None)
    if samples is not None and len(samples) and isinstance(samples[0][0], (str, os.PathLike)):
        return _from_files([(str(p), int(t)) for p, t in samples], size, spec)  # folder readers, ImageFolder
    if reader is not None:  # timm's ImageDataset over a tar or Hugging Face reader
        if hasattr(reader, "targets"):
            labels = list(reader.targets)
        elif hasattr(reader, "iter_targets"):
            labels = list(reader.iter_targets())
        elif samples is not None:
            labels = [t for _, t in samples]
        else:
            raise ShuffleSearchError(f"dataset {spec!r}: timm's {type(reader).__name__} cannot list its labels "
                                     "without reading every image; use an image folder")
        return _decoded(labels, lambda i: _read_item(reader[i][0]), lambda i: f"{i}|{ds.filename(i)}", size, spec)
    if hasattr(ds, "targets"):  # a torchvision dataset (timm:torch/...)
        return _decoded(np.asarray(ds.targets), lambda i: ds[i][0], str, size, spec)
    raise ShuffleSearchError(f"dataset {spec!r}: {type(ds).__name__} has no labels to list without reading "
                             "every image; use an image folder")


def _timm_classes(ds: Any, labels: np.ndarray) -> tuple[str, ...]:
    mapping = getattr(getattr(ds, "reader", ds), "class_to_idx", None)
    if mapping and sorted(mapping.values()) == list(range(len(mapping))):
        return tuple(str(c) for c, _ in sorted(mapping.items(), key=lambda kv: kv[1]))
    return tuple(str(c) for c in range(int(labels.max()) + 1))


def _timm(spec: str, arg: str, cfg: DataConfig) -> _Source:
    from timm.data import create_dataset

    name, _, root = arg.partition(":")
    if not cfg.download:
        _existing_dir(root, spec)

    def split(which: str) -> tuple[_Split, Any]:
        try:
            ds = create_dataset(name, root=root, split=which, download=cfg.download)
        except Exception as e:  # timm raises anything from its many readers; the user gets the line
            raise ShuffleSearchError(f"dataset {spec!r}: timm cannot open split {which!r} "
                                     f"({type(e).__name__}: {' '.join(str(e).split())})") from None
        return _timm_split(ds, spec, which, cfg.image_size), ds
    train, ds = split("train")
    return _Source(train, lambda: split("validation")[0], _timm_classes(ds, train.labels), True)


def _existing_dir(arg: str, spec: str) -> Path:
    path = Path(arg).expanduser()
    if not path.is_dir():
        raise ShuffleSearchError(f"dataset {spec!r}: directory {path} not found")
    return path


_SOURCES = {"digits": _digits, "mnist": _mnist, "fashion_mnist": _mnist, "cifar10": _cifar,
            "cifar100": _cifar, "folder": _folder, "timm": _timm}


# --- from a source to tensors ------------------------------------------------------------------
def _per_class(labels: np.ndarray, idx: np.ndarray, k: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most `k` seeded picks of each class among `idx`, in index order."""
    if k is None:
        return idx
    keep = [rng.permutation(idx[labels[idx] == c])[:k] for c in np.unique(labels[idx])]
    return np.sort(np.concatenate(keep))


def _to_float(x: torch.Tensor, channels: int | None, size: int) -> torch.Tensor:
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif channels == 1 and x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def _carve(labels: np.ndarray, idx: np.ndarray, cfg: DataConfig, what: Split) -> tuple[np.ndarray, np.ndarray]:
    """Split `idx` into (rest, carved): a stratified, seeded `<what>_fraction` of each class, both sorted."""
    from sklearn.model_selection import train_test_split

    fraction, classes = getattr(cfg, f"{what}_fraction"), len(np.unique(labels[idx]))
    carved = math.ceil(fraction * len(idx))
    if min(carved, len(idx) - carved) < classes:
        raise ShuffleSearchError(f"dataset {cfg.dataset!r}: proxy.{what}_fraction = {fraction}: {len(idx)} images "
                                 f"give fewer than one per class ({classes} classes) on one side of the {what} split")
    rest, carved_idx = train_test_split(idx, test_size=carved, stratify=labels[idx], random_state=cfg.split_seed)
    return np.sort(rest), np.sort(carved_idx)


_FLOAT_COPIES = 2  # float32 copies of the images alive at once in _load (resized, then normalised)


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable, capped by a cgroup v2 limit,
    as in a container); None where unknown."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        limit, used = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max":
            available = int(limit) - int(used) if available is None else min(available, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return available


def _check_memory(cfg: DataConfig, selections: list[tuple[_Split, np.ndarray]], split: Split) -> None:
    """Stop with one line, before anything is decoded, if the selected images will not fit in memory."""
    pixels = cfg.image_size ** 2
    need = sum(len(idx) * pixels * (s.channels + 4 * _FLOAT_COPIES * (cfg.channels or s.channels))
               for s, idx in selections)
    available = _available_memory()
    if available is not None and need > available:
        (_, train_idx), (_, eval_idx) = selections
        raise ShuffleSearchError(
            f"dataset {cfg.dataset!r}: {len(train_idx):,d} training + {len(eval_idx):,d} {split} images at "
            f"{cfg.image_size}x{cfg.image_size} need about {need / 2**30:.1f} GiB of memory, but "
            f"{available / 2**30:.1f} GiB are available; lower proxy.subset_per_class, "
            f"proxy.{split}_per_class or proxy.image_size")


def _canonical_spec(spec: str) -> str:
    """The spec with its directory made absolute (the cache key must not depend on the working directory)."""
    name, arg = parse_spec(spec)
    if name == "timm":
        reader, _, root = arg.partition(":")
        return f"timm:{reader}:{Path(root).expanduser().resolve()}"
    return f"{name}:{Path(arg).expanduser().resolve()}" if arg else name


def _images(cfg: DataConfig, source: _Split, idx: np.ndarray, view: Split, role: str) -> torch.Tensor:
    """The images `idx` of `source`, from the disk cache where the source is one of encoded files."""
    from shufflesearch.data._cache import cache_root, cached_images

    if source.identity is None or not cfg.cache:
        return source.images(idx)
    items = hashlib.sha256("\n".join(f"{source.identity(i)}|{source.labels[i]}" for i in idx.tolist()).encode())
    key = {"spec": _canonical_spec(cfg.dataset), "view": view, "role": role, "image_size": cfg.image_size,
           "split_seed": cfg.split_seed, "subset_per_class": cfg.subset_per_class,
           "search_per_class": cfg.search_per_class, "test_per_class": cfg.test_per_class,
           "search_fraction": cfg.search_fraction, "test_fraction": cfg.test_fraction,
           "count": len(idx), "items": items.hexdigest()}
    return cached_images(cache_root(cfg.cache_dir), key, lambda: source.images(idx))


def _load(cfg: DataConfig, split: Split) -> ProxyData:
    name, arg = parse_spec(cfg.dataset)
    src = _SOURCES[name](cfg.dataset, arg, cfg)
    labels = src.train.labels
    pool = np.arange(len(labels))  # the training split: the source's, less a carved test split
    if src.test is None:
        pool, carved_test = _carve(labels, pool, cfg, "test")
    rng = np.random.default_rng(cfg.split_seed)
    if split == "search":
        train_idx, eval_idx = _carve(labels, pool, cfg, "search")
        scored, eval_idx = src.train, _per_class(labels, eval_idx, cfg.search_per_class, rng)
    else:
        train_idx = pool
        scored = src.train if src.test is None else src.test()
        eval_idx = carved_test if src.test is None else np.arange(len(scored.labels))
        eval_idx = _per_class(scored.labels, eval_idx, cfg.test_per_class, rng)
    train_idx = _per_class(labels, train_idx, cfg.subset_per_class, rng)
    _check_memory(cfg, [(src.train, train_idx), (scored, eval_idx)], split)
    train_x = _to_float(_images(cfg, src.train, train_idx, split, "train"), cfg.channels, cfg.image_size)
    eval_x = _to_float(_images(cfg, scored, eval_idx, split, split), cfg.channels, cfg.image_size)
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def norm(x: torch.Tensor) -> torch.Tensor:
        return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    return ProxyData(
        spec=cfg.dataset, train_x=norm(train_x), train_y=torch.from_numpy(labels[train_idx]),
        eval_x=norm(eval_x), eval_y=torch.from_numpy(scored.labels[eval_idx]), eval_split=split,
        num_classes=len(src.label_names), label_names=src.label_names, mean=tuple(mean.tolist()),
        std=tuple(std.tolist()), augment=cfg.augment, hflip=cfg.augment and src.hflip)
