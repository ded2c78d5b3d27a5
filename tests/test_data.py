import dataclasses
import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from shufflesearch import ShuffleSearchError, load_data
from shufflesearch.data._data import augment_batch, read_idx


def test_digits_loads_offline_with_deterministic_stratified_splits():
    a = load_data("digits", image_size=16, seed=3)
    b = load_data("digits", image_size=16, seed=3)
    c = load_data("digits", image_size=16, seed=4)
    # 1,797 images: 20% of each class held out as the test split, 20% of the rest as search-validation
    assert a.eval_split == "search" and a.acc_key == "search_acc"
    assert a.train_x.shape == (1149, 1, 16, 16) and a.eval_x.shape == (288, 1, 16, 16)
    assert a.num_classes == 10 and a.in_chans == 1 and a.label_names[3] == "3"
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.eval_y, b.eval_y)
    assert not torch.equal(a.eval_y, c.eval_y)
    total = torch.bincount(torch.cat([a.train_y, a.eval_y]))
    assert (torch.bincount(a.eval_y) - 0.2 * total).abs().max() <= 1  # stratified: 20% of each class
    assert abs(a.train_x.mean().item()) < 1e-4 and abs(a.train_x.std().item() - 1) < 1e-3
    t = load_data("digits", "test", image_size=16, seed=3)  # final: the whole training split, the test split
    assert t.eval_split == "test" and t.acc_key == "test_acc"
    assert t.train_x.shape == (1437, 1, 16, 16) and t.eval_x.shape == (360, 1, 16, 16)


def _spy_on_digits(monkeypatch) -> list:
    """Record every set of digits indices the loader decodes."""
    from shufflesearch.data import _data as data_mod

    asked, source = [], data_mod._SOURCES["digits"]

    def spied(*args):
        src = source(*args)
        images = src.train.images
        return dataclasses.replace(src, train=dataclasses.replace(
            src.train, images=lambda idx: asked.append(set(idx.tolist())) or images(idx)))
    monkeypatch.setitem(data_mod._SOURCES, "digits", spied)
    return asked


def test_digits_search_view_never_decodes_a_test_image(monkeypatch):
    asked = _spy_on_digits(monkeypatch)
    load_data("digits", "test", seed=5)
    test_images = asked[1]  # train pool first, then the scored (test) split
    asked.clear()
    load_data("digits", seed=5, subset_per_class=50, search_per_class=20)
    assert len(asked) == 2 and not (asked[0] | asked[1]) & test_images and not asked[0] & asked[1]


def test_channels_subset_and_augmentation_options():
    d = load_data("digits", image_size=24, channels=3, subset_per_class=5, search_per_class=2, augment=True)
    assert d.train_x.shape == (50, 3, 24, 24) and torch.bincount(d.train_y).tolist() == [5] * 10
    assert len(d.eval_y) == 20 and torch.equal(d.train_x[:, 0], d.train_x[:, 2])
    assert d.augment and not d.hflip  # flipping a digit changes its meaning
    g = torch.Generator().manual_seed(0)
    out = augment_batch(d.train_x, g, hflip=True)
    assert out.shape == d.train_x.shape and not torch.equal(out, d.train_x)


def _write_idx(path, array, compress):
    data = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _write_mnist(root, rng, compress, n_train=40, n_val=20):
    for prefix, n in (("train", n_train), ("t10k", n_val)):
        ext = ".gz" if compress else ""
        _write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)), compress)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n) % 10, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_read_gzipped_or_plain(tmp_path, compress):
    rng = np.random.default_rng(0)
    _write_mnist(tmp_path, rng, compress)
    ext = ".gz" if compress else ""
    raw = read_idx(tmp_path / f"train-images-idx3-ubyte{ext}", "t")
    assert raw.shape == (40, 28, 28)
    d = load_data(f"fashion_mnist:{tmp_path}", "test", image_size=28)
    assert torch.equal(d.train_y, torch.arange(40) % 10) and len(d.eval_y) == 20  # t10k is the test split
    restored = d.train_x[:, 0] * d.std[0] + d.mean[0]
    assert torch.allclose(restored * 255, torch.tensor(raw).float(), atol=1e-3)
    s = load_data(f"fashion_mnist:{tmp_path}", image_size=28, search_fraction=0.25)  # carved from train
    assert len(s.train_y) == 30 and len(s.eval_y) == 10 and torch.bincount(s.eval_y).max() == 1
    with pytest.raises(ShuffleSearchError, match=r"proxy.search_fraction = 0.2: 40 images give fewer than one"):
        load_data(f"fashion_mnist:{tmp_path}")
    assert d.hflip is False and load_data(f"fashion_mnist:{tmp_path}", "test", augment=True).hflip is True
    assert d.label_names[0] == "T-shirt/top"


def test_idx_search_view_never_reads_the_test_files(tmp_path):
    _write_mnist(tmp_path, np.random.default_rng(0), compress=False)
    for part in ("images-idx3", "labels-idx1"):
        (tmp_path / f"t10k-{part}-ubyte").write_bytes(b"unreadable")
    assert len(load_data(f"mnist:{tmp_path}", search_fraction=0.5).eval_y) == 20
    with pytest.raises(ShuffleSearchError, match="t10k-images-idx3-ubyte"):
        load_data(f"mnist:{tmp_path}", "test")


def test_corrupt_or_missing_idx_files_fail_naming_the_file(tmp_path):
    _write_mnist(tmp_path, np.random.default_rng(0), compress=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(ShuffleSearchError, match="train-images-idx3-ubyte is truncated or corrupt"):
        load_data(f"mnist:{tmp_path}")
    images.write_bytes(b"not an idx file at all")
    with pytest.raises(ShuffleSearchError, match="bad magic"):
        load_data(f"mnist:{tmp_path}")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    images.unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(ShuffleSearchError, match="cannot read .*train-images-idx3-ubyte.gz"):
        load_data(f"mnist:{tmp_path}")


def _write_folder(root, classes=("cat", "dog"), per_class=4, size=(20, 12)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_folder_and_timm_specs_with_and_without_a_val_folder(tmp_path):
    _write_folder(tmp_path / "split", per_class=8)
    d = load_data(f"folder:{tmp_path / 'split'}", "test", image_size=16, test_fraction=0.25)
    assert d.train_x.shape == (12, 3, 16, 16) and d.label_names == ("cat", "dog") and len(d.eval_y) == 4
    d = load_data(f"folder:{tmp_path / 'split'}", image_size=16, test_fraction=0.25, search_fraction=0.5)
    assert d.train_x.shape == (6, 3, 16, 16) and len(d.eval_y) == 6
    _write_folder(tmp_path / "tv" / "train")
    _write_folder(tmp_path / "tv" / "val", per_class=2)
    d = load_data(f"folder:{tmp_path / 'tv'}", "test", image_size=8, channels=1)
    assert d.train_x.shape == (8, 1, 8, 8) and d.eval_y.tolist() == [0, 0, 1, 1] and d.hflip is False
    d = load_data(f"timm::{tmp_path / 'tv'}", "test", image_size=8)  # timm's folder reader, splits train / val
    assert d.train_x.shape == (8, 3, 8, 8) and d.eval_y.tolist() == [0, 0, 1, 1]
    d = load_data(f"timm::{tmp_path / 'tv'}", image_size=8, search_fraction=0.5)
    assert len(d.train_y) == 4 and len(d.eval_y) == 4


def test_folder_search_view_never_reads_the_val_tree(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "val", per_class=2)
    for image in (tmp_path / "val").rglob("*.png"):
        image.write_bytes(b"not a png")
    d = load_data(f"folder:{tmp_path}", image_size=8, search_fraction=0.5)
    assert len(d.train_y) == 4 and len(d.eval_y) == 4 and d.eval_split == "search"
    with pytest.raises(ShuffleSearchError, match="cannot read image"):
        load_data(f"folder:{tmp_path}", "test", image_size=8)


@pytest.mark.parametrize("spec, message", [
    ("imagenet", "unknown dataset 'imagenet'"),
    ("mnist", "mnist needs a directory"),
    ("cifar10:{tmp}/absent", "directory .*absent not found"),
    ("fashion_mnist:{tmp}", r"train-images-idx3-ubyte\[.gz\] not found in"),
    ("folder:{tmp}/empty", "Couldn't find any class folder"),
    ("folder:{tmp}/bad", "cannot read image"),
    ("timm:torch/cifar10", "written 'timm:NAME:DIR'"),
    ("timm:foo/bar:{tmp}", "timm dataset name 'foo/bar' has none of timm's prefixes"),
])
def test_bad_specs_fail_before_training_with_one_line(tmp_path, spec, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "b").mkdir(parents=True)
    for c in "ab":
        for i in range(10):
            (tmp_path / "bad" / c / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(ShuffleSearchError, match=message) as err:
        load_data(spec.format(tmp=tmp_path))
    assert "\n" not in str(err.value) and str(err.value).startswith("dataset ")
