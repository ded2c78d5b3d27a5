"""A search never reads the test split: a real search runs with the test files unreadable, and only the
final evaluation, which reads them, fails (naming the file)."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
import yaml
from helpers import tiny_space

import shufflesearch
from shufflesearch import ShuffleSearchError
from shufflesearch.evaluation._final import final_evaluation


def _write_idx(path, array) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.mark.slow
def test_a_search_runs_with_an_unreadable_test_split_and_final_evaluation_names_it(tmp_path, ray_local):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (200, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(200) % 10)
    for part in ("images-idx3", "labels-idx1"):  # the test split: unreadable
        (tmp_path / f"t10k-{part}-ubyte.gz").write_bytes(b"\x1f\x8b not gzip")
    space = tiny_space(tmp_path, epochs=1)
    data = yaml.safe_load(space.read_text())
    data["proxy"].update(dataset=f"mnist:{tmp_path}", image_size=16)
    space.write_text(yaml.safe_dump(data))

    result = shufflesearch.search(space, trials=2, runs_dir=tmp_path / "runs", progress=None)
    assert result.counts["complete"] == 2 and all(0 <= r["search_acc"] <= 1 for r in result.rows)
    with pytest.raises(ShuffleSearchError, match="t10k-images-idx3-ubyte.gz"):
        final_evaluation(result.run_dir, top=1, seeds=1, epochs=1, zoo=[], progress=None)
    assert not (result.run_dir / "final" / "results.jsonl").exists()


def test_an_old_run_scored_on_the_val_split_opens_labelled_as_such(tmp_path):
    from shufflesearch import get_arch, write_report

    arch = get_arch("shufflenet_v1_g3_x0_25")
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"name": "old", "objectives": ["acc", "mflops"],
                                                 "budget": {"mflops": 30, "input_size": 224}}))
    old = {"number": 0, "arch": arch.to_dict(), "arch_hash": arch.hash, "status": "complete", "epochs": 6,
           "max_epochs": 6, "val_acc": 0.9, "best_val_acc": 0.91, "val_loss": 0.3, "mflops": 13.3, "params": 1}
    (run / "trials.jsonl").write_text(json.dumps(old) + "\n")
    write_report(run)
    page = (run / "report" / "report.md").read_text()
    assert "Old run, recorded before shufflesearch held out a search-validation split" in page
    assert "| 0 |  | 0.9 | 13.3 |" in page  # its val_acc, read as the accuracy it chose by
