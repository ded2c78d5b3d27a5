"""Registering our models in timm as soon as timm is imported, without importing timm ourselves.

`import shufflesearch` must stay light (the CLI's quick commands import no torch or timm), yet
`import shufflesearch` then `import timm` (or the reverse) must let `timm.create_model('ss_<run>_best',
pretrained=True)` find the found models. So `install()` registers at once when timm is already
imported, and otherwise puts a one-shot finder on `sys.meta_path` that wraps timm's loader: when
timm's own `__init__` has run, `shufflesearch.models` is imported, whose registry registers the zoo,
`shufflesearch_net` and the model folders under the registry roots. The finder removes itself on its
first use and does nothing for any other module. When one of our modules is itself what imports timm
(`shufflesearch.models` is then being imported), the hook leaves the registering to that import.

Python has no post-import hook of its own; this is the smallest one: no module but timm is touched,
and nothing is changed once timm has loaded.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any, Sequence

_MODELS = "shufflesearch.models"


def _register() -> None:
    if _MODELS not in sys.modules:  # else its own import (under way or done) registers
        importlib.import_module(_MODELS)


class _RegisterAfter(importlib.abc.Loader):
    """timm's own loader, which registers our models once timm's `__init__` has run."""
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:  # resource readers and the rest: timm's loader's own
        return getattr(self._loader, name)


class _TimmFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm":
            return None
        _uninstall()
        spec = importlib.util.find_spec("timm")
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfter(spec.loader)
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TimmFinder)]


def install() -> None:
    """Register now if timm is loaded, else as soon as it is."""
    if "timm" in sys.modules:
        _register()
    elif not any(isinstance(f, _TimmFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmFinder())
