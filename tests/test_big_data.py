"""Big image sets: only the chosen images are decoded, the resized images are cached on disk (a corrupt
cache is rebuilt), and a selection that cannot fit in memory stops before anything is decoded."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shufflesearch import ShuffleSearchError, load_data
from shufflesearch.data import _data as data_mod

CLASSES, PER_CLASS = 10, 250  # 2,500 training images


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    """An ImageFolder tree (timm's folder reader reads it too): train/<class>/*.png, 250 a class, and val/."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, n in (("train", PER_CLASS), ("val", 4)):
        for c in range(CLASSES):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def decodes(monkeypatch):
    """The path of every image decoded (a spy on data._decode_image: the real function runs)."""
    seen, decode = [], data_mod._decode_image

    def spy(item, size, spec):
        seen.append(str(item))
        return decode(item, size, spec)
    monkeypatch.setattr(data_mod, "_decode_image", spy)
    return seen


def test_timm_subset_decodes_only_the_chosen_images(image_tree, decodes):
    d = load_data(f"timm::{image_tree}", image_size=8, subset_per_class=5, search_per_class=3, cache=False)
    assert d.train_x.shape == (50, 3, 8, 8) and len(d.eval_y) == 30
    assert torch.bincount(d.train_y).tolist() == [5] * CLASSES and d.label_names[3] == "class3"
    # 80 of 2,500 images decoded, each once, none from val/ (the search view never reads the test split)
    assert len(decodes) == 80 and len(set(decodes)) == 80
    assert all("/train/" in path for path in decodes)
    labels = [int(path.split("/class")[1].split("/")[0]) for path in decodes]
    assert sorted(labels) == sorted(d.train_y.tolist() + d.eval_y.tolist())


@pytest.mark.parametrize("reader", ["timm::", "folder:"])
def test_second_load_hits_the_cache_with_identical_tensors(image_tree, decodes, reader):
    spec = f"{reader}{image_tree}"
    first = load_data(spec, image_size=8, subset_per_class=4, search_per_class=2)
    assert len(decodes) == 60
    files = list((Path(os.environ["SHUFFLESEARCH_CACHE"]) / "data").glob("*.safetensors"))  # conftest's
    assert len(files) == 2  # the training images and the search-validation images
    decodes.clear()
    second = load_data(spec, image_size=8, subset_per_class=4, search_per_class=2)
    assert decodes == []
    for name in ("train_x", "train_y", "eval_x", "eval_y"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    load_data(spec, image_size=8, subset_per_class=4, search_per_class=2, seed=1)  # another key
    assert len(decodes) == 60


def test_a_corrupt_cache_is_rebuilt_not_trusted(image_tree, decodes, tmp_path):
    spec, options = f"timm::{image_tree}", dict(image_size=8, subset_per_class=3, search_per_class=2,
                                                cache_dir=str(tmp_path / "mine"))
    first = load_data(spec, **options)
    files = sorted((tmp_path / "mine" / "data").glob("*.safetensors"))
    assert len(files) == 2 and not Path(os.environ["SHUFFLESEARCH_CACHE"]).exists()  # cache_dir wins
    raw = bytearray(files[0].read_bytes())
    raw[-7] ^= 0xFF  # one flipped pixel byte: the file still parses, the checksum does not match
    files[0].write_bytes(bytes(raw))
    files[1].write_bytes(files[1].read_bytes()[:40])  # truncated
    decodes.clear()
    again = load_data(spec, **options)
    assert len(decodes) == 50  # both sets decoded again
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.eval_x, again.eval_x)
    decodes.clear()
    load_data(spec, **options)  # and the rebuilt files are good
    assert decodes == []


def test_default_cache_folder_is_under_the_users_cache_dir(image_tree, monkeypatch, tmp_path):
    monkeypatch.delenv("SHUFFLESEARCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_data(f"folder:{image_tree}", image_size=8, subset_per_class=2, search_per_class=1)
    assert len(list((tmp_path / "xdg" / "shufflesearch" / "data").glob("*.safetensors"))) == 2


def test_a_selection_too_big_for_memory_stops_before_decoding(image_tree, decodes):
    with pytest.raises(ShuffleSearchError) as err:  # 2,500 images at 100,000 px: petabytes
        load_data(f"timm::{image_tree}", image_size=100_000)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"dataset 'timm::{image_tree}': 2,000 training + 500 search")
    assert "GiB of memory" in message and "lower proxy.subset_per_class" in message
    assert decodes == []
