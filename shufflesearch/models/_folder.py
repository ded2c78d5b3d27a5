"""A timm model folder: what `export_run`, `final` and `train` write, and the names they give.

A model folder holds `config.json` (timm's Hugging Face Hub format, written by timm's own
`save_for_hf`: architecture `shufflesearch_net`, the genome in `model_args.arch`, num_classes,
label_names, a `pretrained_cfg` for the data, plus our `shufflesearch` provenance key),
`model.safetensors` (the weights given, as timm's `save_for_hf` writes them back from the model they
load into: the same tensors, and for weights safetensors wrote, the same bytes), `arch.yaml`, a model card `README.md` and, when asked, `model.onnx`. So
`timm.create_model('local-dir:<folder>', pretrained=True)` loads it without shufflesearch's registry,
and the folder's name is its registered timm name.

Names (`model_name`): `ss_<run>_best`, `ss_<run>_p<k>`, `ss_<run>_t<N>`; `<run>` is the run folder's
name lowercased, every run of characters outside [a-z0-9] made one `_`, leading/trailing `_` dropped
('My Run-2' -> 'my_run_2').

A folder appears whole or not at all: it is written under a temporary name and renamed into place
(a re-export swaps the old folder out the same way).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from shufflesearch._io import _UMASK, write_bytes_atomic, write_text_atomic
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._catalog import FOUND, WEIGHTS_NAME, get_arch
from shufflesearch.genome._cost import cost
from shufflesearch.models._registry import _check_weights, final_side, register_model_dir

PREFIX = "ss_"
ONNX_NAME = "model.onnx"


def sanitize(name: str) -> str:
    """A run name as a timm-style identifier part: lowercase, [a-z0-9_], no leading/trailing '_'."""
    clean = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not clean:
        raise ShuffleSearchError(f"run name {name!r}: has no letter or digit to name its models by")
    return clean


def model_name(run: str, which: str | int) -> str:
    """`ss_<run>_best`, `ss_<run>_p<k>` for which='p<k>', `ss_<run>_t<N>` for a trial number N."""
    suffix = f"t{which}" if isinstance(which, int) else which
    return f"{PREFIX}{sanitize(run)}_{suffix}"


def write_model_dir(dest: Path, arch: Arch, weights: bytes, data: Mapping[str, Any], provenance: dict[str, Any],
                    onnx: bool = False) -> Path:
    """Write one model folder (see module docstring) whole, replacing `dest`; register it in timm here."""
    import timm
    from timm.models import save_for_hf

    dest = Path(dest)
    provenance = {**provenance, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        write_bytes_atomic(tmp / WEIGHTS_NAME, weights)
        _check_weights(tmp / WEIGHTS_NAME, arch, data["num_classes"], data["in_chans"])
        size = data["image_size"]
        model = timm.create_model(
            "shufflesearch_net", pretrained=True, arch=arch, num_classes=data["num_classes"],
            in_chans=data["in_chans"], pretrained_cfg_overlay=dict(
                file=str(tmp / WEIGHTS_NAME), num_classes=data["num_classes"],
                input_size=(data["in_chans"], size, size), mean=tuple(data["mean"]), std=tuple(data["std"]),
                crop_pct=1.0, interpolation="bilinear", pool_size=(final_side(arch, size),) * 2)).eval()
        save_for_hf(model, str(tmp), model_args={"arch": arch.to_dict()}, safe_serialization=True, model_config={
            "label_names": list(data["label_names"]), "shufflesearch": provenance})
        write_text_atomic(tmp / "arch.yaml", arch.to_yaml())
        write_text_atomic(tmp / "README.md", model_card(dest.name, arch, data, provenance))
        if onnx:
            export_onnx(model, tmp / ONNX_NAME, (data["in_chans"], size, size))
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700
        _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    register_model_dir(dest)
    return dest


def _swap_in(tmp: Path, dest: Path) -> None:
    """Rename `tmp` to `dest`; an existing `dest` is renamed away first and removed after."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old."))
        os.replace(dest, old / dest.name)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old)


def onnx_bytes(model: torch.nn.Module, input_size: tuple[int, int, int]) -> bytes:
    """`model` (eval mode) as ONNX with a dynamic batch axis: input 'input', output 'logits'."""
    import io

    buffer = io.BytesIO()
    torch.onnx.export(model.eval(), (torch.randn(1, *input_size),), buffer, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return buffer.getvalue()


def export_onnx(model: torch.nn.Module, path: Path, input_size: tuple[int, int, int]) -> None:
    """Write `model` as ONNX (`onnx_bytes`) to `path`, atomically."""
    write_bytes_atomic(path, onnx_bytes(model, input_size))


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def _test_accuracy(f: Mapping[str, Any]) -> str:
    """A final training's test accuracy: mean ± sd over its seeds, and how it was trained."""
    acc = _pct(f["test_acc_mean"])
    if f.get("test_acc_sd") is not None:
        acc += f" ± {100 * f['test_acc_sd']:.2f}"
    seeds = f"{f['seeds']} seed(s)"
    if f.get("seed") is not None and f["seeds"] > 1:
        seeds += f"; these weights: seed {f['seed']}, {_pct(f['test_accs'][0])}"
    return (f"{acc} top-1 on the test split of `{f['dataset']}` ({f['test_images']:,d} images; {seeds}), "
            f"after {f['epochs']} epochs from scratch on {f['train_images']:,d} training images")


def _latency_rows(p: Mapping[str, Any], budget: int) -> list[tuple[str, str]]:
    """The card's latency: on the run's latency target with its settings, node and fingerprint when the run had
    a latency budget (`latency_target`, as `export_run` records it), else the trial's own measurement."""
    t = p.get("latency_target")
    if not t:
        return [("latency", f"{p['latency_ms']:.2f} ms (median, batch 1, 1 CPU thread, {budget}x{budget})")]
    size, threads = t["input_size"], t["threads"]
    if t.get("predicted"):
        how = f"predicted from a latency table built on `{t['target']}`"
    else:
        iqr = f", IQR {p['latency_iqr_ms']:.2f} ms" if p.get("latency_iqr_ms") is not None else ""
        how = f"median of {t['runs']} timed runs{iqr}, on `{t['target']}` (node {t.get('node')})"
    found = ", ".join(f"{k} {v}" for k, v in (t.get("fingerprint") or {}).items())
    return [("latency", f"{p['latency_ms']:.2f} ms ({how}; {t['backend']}, batch {t['batch']}, {threads} "
                        f"thread{'s' if threads > 1 else ''}, {size}x{size})"),
            ("latency target", found or "fingerprint not recorded")]


def model_card(name: str, arch: Arch, data: Mapping[str, Any], p: Mapping[str, Any]) -> str:
    """The model folder's README.md: genome, cost, accuracy (proxy and, if any, final), provenance."""
    size = data["image_size"]
    own = cost(arch, size, data["num_classes"], data["in_chans"])
    budget = p.get("budget_input_size") or 224
    final = p.get("final")
    origin = (f"found by shufflesearch in run `{p['run']}`, trial {p['trial']} (seed {p.get('seed')})"
              if p.get("run") is not None else f"`{p.get('source')}` trained by shufflesearch")
    rows = [
        ("genome", f"`{arch.summary()}` (hash {arch.hash})".replace("|", "\\|")),  # a table cell: escape the pipes
        ("cost", f"{p['mflops']:.2f} MFLOPs (multiply-adds) at {budget}x{budget}, {p['params']:,d} params "
                 f"({p.get('budget_num_classes', 1000)}-class head, the search's cost basis)"),
        ("this model", f"{own.mflops:.2f} MFLOPs at {data['in_chans']}x{size}x{size}, {own.params:,d} params, "
                       f"{data['num_classes']} classes"),
    ]
    if p.get("latency_ms") is not None:
        rows += _latency_rows(p, budget)
    if p.get("search_acc") is not None:
        rows.append(("search accuracy", f"{_pct(p['search_acc'])} top-1 on the search-validation split of "
                                        f"`{p['dataset']}` after {p['epochs']} proxy epochs (what the search chose by)"))
    for key, what in (("final", "these weights"), ("final_eval", "final evaluation of this architecture")):
        if p.get(key):
            rows.append((f"test accuracy ({what})", _test_accuracy(p[key])))
    rows += [("weights", f"`{WEIGHTS_NAME}`, from {'final' if final else 'proxy'} training"),
             ("exported", p.get("exported", "-"))]
    lines = [f"# {name}", "", f"A ShuffleNet-family network {origin}.", "", "```python",
             "import shufflesearch, timm", f"model = timm.create_model({name!r}, pretrained=True)", "```", "",
             "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    if p.get("search_command"):
        lines += [f"Search: `{p['search_command']}`", ""]
    return "\n".join(lines)


def model_folder(name: str) -> Path:
    """The folder of a registered found model."""
    get_arch(name)  # unknown names: the registry's error with suggestions
    if name not in FOUND:
        raise ShuffleSearchError(f"model {name!r}: a zoo model, not an exported one (it has no folder)")
    return FOUND[name]

