"""Loading a subset of a JPEG image folder: our loader (threads, JPEG draft decoding) and its disk cache,
against decoding the same images one by one with Pillow at full size (what `folder:` did before).

A temporary ImageFolder of `--classes` x `--per-class` random JPEGs at ImageNet's typical 500x375 is
written first; `load_data("folder:...")` then picks `--subset` training and `--search` scored images
a class. Measured in one process, interleaved round by round (median of `--rounds`):

- reference: Pillow `open -> convert("RGB") -> resize(size, BILINEAR)` of the same chosen files, in
  sequence (the previous `folder:` loader);
- ours, cold: `load_data(..., cache=False)` (list, choose, decode on a thread pool, normalise);
- ours, cached: `load_data` with a warm cache (one safetensors read, checksum, normalise).

    python benchmarks/bench_decode.py [--classes 10 --per-class 100 --subset 40 --search 10 --size 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from shufflesearch import load_data


def write_folder(root: Path, classes: int, per_class: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    for c in range(classes):
        (root / "train" / f"c{c:03d}").mkdir(parents=True)
        for i in range(per_class):  # smooth-ish content so JPEG sizes are realistic, different per image
            img = np.roll(base, (7 * i + c, 13 * i), axis=(0, 1)) // 2 + rng.integers(0, 128, (1, 1, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / "train" / f"c{c:03d}" / f"{i:04d}.jpg", quality=90)


def reference(paths: list[str], size: int) -> float:
    started = time.perf_counter()
    for p in paths:
        with Image.open(p) as img:
            np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--subset", type=int, default=40, help="training images a class")
    p.add_argument("--search", type=int, default=10, help="search-validation images a class")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "images", Path(tmp) / "cache"
        write_folder(root, args.classes, args.per_class)
        opts = dict(image_size=args.size, subset_per_class=args.subset, search_per_class=args.search)
        spec = f"folder:{root}"
        from shufflesearch.data import _data as data_mod

        chosen: list[str] = []
        decode = data_mod._decode_image
        data_mod._decode_image = lambda item, size, sp: chosen.append(str(item)) or decode(item, size, sp)
        load_data(spec, cache=False, **opts)  # which files the loader chooses (and a warm-up)
        data_mod._decode_image = decode
        load_data(spec, cache_dir=str(cache), **opts)  # fills the cache
        times: dict[str, list[float]] = {"reference": [], "ours, cold": [], "ours, cached": []}
        for _ in range(args.rounds):
            times["reference"].append(reference(chosen, args.size))
            started = time.perf_counter()
            load_data(spec, cache=False, **opts)
            times["ours, cold"].append(time.perf_counter() - started)
            started = time.perf_counter()
            load_data(spec, cache_dir=str(cache), **opts)
            times["ours, cached"].append(time.perf_counter() - started)
    print(f"{len(chosen)} of {args.classes * args.per_class} JPEGs (500x375) chosen, resized to {args.size} px; "
          f"{os.cpu_count()} CPUs, {data_mod._decode_threads()} decode threads; median of {args.rounds}")
    ref = statistics.median(times["reference"])
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"  {name:<13} {t:7.3f} s  {len(chosen) / t:8.0f} img/s  reference / this = {ref / t:6.2f}x")


if __name__ == "__main__":
    main()
