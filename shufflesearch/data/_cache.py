"""The on-disk cache of decoded, resized proxy images, so the next search on the same data starts in seconds.

One safetensors file per image set (a dataset's selected training or scored images at one size), named
by the digest of its key: the dataset spec, the split settings (seed, fractions, per-class subset
sizes), the image size and the identity of every selected image (for files: path, size and
modification time). The file's metadata holds the whole key and the SHA-256 of the pixels; a file
that cannot be read, belongs to another key or fails the checksum is rebuilt, never trusted.

Where: the space's `proxy.cache_dir`, else the `SHUFFLESEARCH_CACHE` environment variable, else
`$XDG_CACHE_HOME/shufflesearch` (`~/.cache/shufflesearch`). Written by hand because no library here
caches tensors under a content key; the files are safetensors (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from shufflesearch._io import write_bytes_atomic

CACHE_ENV = "SHUFFLESEARCH_CACHE"
FORMAT = 1  # bump when what a file holds changes


def cache_root(cache_dir: str | None) -> Path:
    """The cache folder: `cache_dir`, else $SHUFFLESEARCH_CACHE, else the user's cache dir."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "shufflesearch"


def _digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.contiguous().numpy().data).hexdigest()


def _read(path: Path, key: str) -> torch.Tensor | None:
    """The cached images at `path` if the file is whole and holds `key`'s images; None otherwise."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key:
                return None
            images = f.get_tensor("images")
    except Exception:  # missing, truncated, not safetensors: all mean "build it again"
        return None
    return images if _digest(images) == meta.get("sha256") else None


def cached_images(root: Path, key: dict[str, Any], build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The images `build()` gives for `key`, read from `root` if a valid copy is there, else built and stored.

    A cache that cannot be written (read-only folder, full disk) only warns: the images are still returned.
    """
    import safetensors.torch

    text = json.dumps({"format": FORMAT, **key}, sort_keys=True)
    path = root / "data" / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.safetensors"
    images = _read(path, text) if path.is_file() else None
    if images is not None:
        return images
    images = build().contiguous()
    try:
        write_bytes_atomic(path, safetensors.torch.save({"images": images},
                                                        metadata={"key": text, "sha256": _digest(images)}))
    except OSError as e:
        warnings.warn(f"shufflesearch: cannot write the data cache {path} ({e}); set proxy.cache_dir or "
                      f"{CACHE_ENV} to a writable folder", stacklevel=2)
    return images
