"""Every model name and the genome behind it, without torch or timm: the papers' zoo, and the found
models (exported search winners) in the model folders under the model roots.

A model folder (what `export_run`, `final` and `train` write) holds `config.json` in timm's Hub format
(architecture `shufflesearch_net`, the genome in `model_args.arch`), `arch.yaml` and the weights; its
folder name is its model name. The roots are `runs/` in the working directory (skipped quietly when
there is none) and each directory in the environment variable SHUFFLESEARCH_MODELS
(os.pathsep-separated); they are read once, on the first look-up (`get_arch`, `list_archs`,
`resolve_arch`) or when timm is given the models (`shufflesearch.models`); later, `find_models(path)`
adds a root. A root may be a runs dir, a run dir, a models dir or one model folder. Only the small
config files are read.

The names live here, apart from timm's registry (`models/_registry.py`, which registers each of them
as a timm model), so that `shufflesearch models` and `shufflesearch cost NAME` answer without
importing torch.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

from shufflesearch.errors import ShuffleSearchError, errors_from
from shufflesearch.genome._arch import Arch
from shufflesearch.genome._zoo import ZOO

GENERIC = "shufflesearch_net"  # the timm architecture every model folder names
MODELS_ENV = "SHUFFLESEARCH_MODELS"
DEFAULT_ROOT = Path("runs")
WEIGHTS_NAME = "model.safetensors"
MODEL_NAME = re.compile(r"[a-z0-9_]+")
GENOME_SUFFIXES = (".yaml", ".yml", ".json")

ARCHS: dict[str, Arch] = dict(ZOO)  # every model name -> its genome: the zoo, then the found models
FOUND: dict[str, Path] = {}  # found-model name -> its folder (resolved)
CONFLICTS: dict[str, tuple[Path, Path]] = {}  # names two folders claimed under the roots: unusable
_roots_read = False


def model_dirs(root: str | Path) -> list[Path]:
    """Model folders under `root`, which may be a runs dir (`*/models/*/`), a run dir (`models/*/`),
    a models dir (`*/`) or one model folder. A model folder holds `config.json` and `arch.yaml`."""
    root = Path(root)
    patterns = ("", "*/", "models/*/", "*/models/*/")
    return [p.parent for pattern in patterns for p in sorted(root.glob(pattern + "arch.yaml"))
            if (p.parent / "config.json").is_file()]


def read_model_config(folder: str | Path) -> tuple[Arch, dict[str, Any]]:
    """A found model's genome and its config.json (timm's Hub format, architecture `shufflesearch_net`)."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShuffleSearchError(f"{path}: unreadable model config ({e})") from None
    if not isinstance(config, dict):
        raise ShuffleSearchError(f"{path}: a JSON {type(config).__name__}, not a shufflesearch model config "
                                 "(a mapping)")
    genome = (config.get("model_args") or {}).get("arch")
    if config.get("architecture") != GENERIC or not isinstance(genome, Mapping):
        raise ShuffleSearchError(f"{path}: architecture = {config.get('architecture')!r}: not a shufflesearch "
                                 f"model (expected {GENERIC!r} and a genome in model_args.arch)")
    with errors_from(f"{path}: model_args.arch"):
        return Arch.from_dict(genome), config


def add_found(folder: str | Path) -> tuple[str, Arch, dict[str, Any]]:
    """List one model folder under its folder name; returns (name, genome, config.json).

    The same folder again is read again (it may have been re-exported). A name that is not a model
    name, that another folder holds, or that a zoo model holds is an error naming both.
    """
    folder = Path(folder).resolve()
    name = folder.name
    if not MODEL_NAME.fullmatch(name):
        raise ShuffleSearchError(f"{folder}: folder name {name!r} is not a model name (lowercase a-z, 0-9, _)")
    if name in FOUND and FOUND[name] != folder:
        raise ShuffleSearchError(f"model {name!r}: claimed by two folders, {FOUND[name]} and {folder}; "
                                 "rename one of them")
    if name == GENERIC or (name in ARCHS and name not in FOUND):
        raise ShuffleSearchError(f"{folder}: model name {name!r} is taken by a zoo model; rename the folder")
    arch, config = read_model_config(folder)
    ARCHS[name], FOUND[name] = arch, folder
    return name, arch, config


def find_models(path: str | Path) -> list[str]:
    """List every model folder under `path` (a runs, run, models or model folder); returns the names.

    A missing directory, an unreadable config or a name two folders claim is an error.
    """
    root = Path(path)
    if not root.is_dir():
        raise ShuffleSearchError(f"{root}: no such directory of models")
    return [add_found(folder)[0] for folder in model_dirs(root)]


def read_roots() -> dict[str, Path]:
    """The found models under the roots (`runs/` here, then SHUFFLESEARCH_MODELS), read once a process.

    Never fails over files on disk: each problem is one warning, and a name two folders claim is left
    unusable (looking it up raises the error naming both), never silently overwritten.
    """
    global _roots_read
    if not _roots_read:
        _roots_read = True
        roots = [DEFAULT_ROOT] if DEFAULT_ROOT.is_dir() else []
        env = [Path(p) for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
        for root in env:
            if not root.is_dir():
                warnings.warn(f"{MODELS_ENV}: {root}: no such directory of models; skipped", stacklevel=2)
        for folder in [f for root in roots + env if root.is_dir() for f in model_dirs(root)]:
            try:
                add_found(folder)
            except ShuffleSearchError as e:
                name = folder.name
                if name in FOUND and FOUND[name] != folder.resolve():
                    CONFLICTS[name] = (FOUND[name], folder.resolve())
                warnings.warn(str(e), stacklevel=2)
    return dict(FOUND)


def forget(name: str) -> None:
    """Drop a found model's name (its folder is left alone)."""
    for table in (ARCHS, FOUND, CONFLICTS):
        table.pop(name, None)


def check_conflict(name: str) -> None:
    if name in CONFLICTS:
        a, b = CONFLICTS[name]
        raise ShuffleSearchError(f"model {name!r}: claimed by two folders, {a} and {b}; rename one of them")


def get_arch(model_name: str) -> Arch:
    """The genome behind a model name; unknown names get the closest matches suggested."""
    read_roots()
    check_conflict(model_name)
    try:
        return ARCHS[model_name]
    except KeyError:
        close = difflib.get_close_matches(model_name, list(ARCHS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `shufflesearch models`"
        raise ShuffleSearchError(f"model {model_name!r}: unknown shufflesearch model{hint}") from None


def list_archs() -> dict[str, Arch]:
    """Every model name and its genome: the zoo, then the found models."""
    read_roots()
    return dict(ARCHS)


def resolve_arch(name_or_path: str | Path) -> Arch:
    """A model name or a .yaml/.yml/.json genome file, as an `Arch`."""
    read_roots()
    if str(name_or_path) in ARCHS:
        return ARCHS[str(name_or_path)]
    if Path(name_or_path).suffix in GENOME_SUFFIXES:
        return Arch.load(name_or_path)
    return get_arch(str(name_or_path))
