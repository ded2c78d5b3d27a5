"""The house: packages import only the ones below them, the torch-free ones stay torch-free, and found
models reach timm whichever of shufflesearch and timm is imported first.

The layer order is ARCHITECTURE.md's: a module may import its own package and any package listed
before it, never one after it, lazy (function-level) imports included.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch

from shufflesearch import build, get_arch
from shufflesearch.models import write_model_dir

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "shufflesearch"
LAYERS = [  # lowest first; one entry a layer, the packages and top-level modules in it
    {"errors", "_io", "_config", "_timm_hook", "__init__"},
    {"_exec"}, {"genome"}, {"space"}, {"runs"}, {"data"}, {"models"}, {"train"}, {"supernet"}, {"driver"},
    {"evaluation"}, {"report"}, {"export"}, {"pipeline"}, {"cli", "__main__"},
]
HEAVY = ("torch", "timm", "ray", "optuna", "matplotlib")


def _layer(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, first part under shufflesearch) of every import of ours in the module at `path` (or of
    `text`, read as if it were there), lazy ones included."""
    here = path.relative_to(ROOT).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[:len(here) - node.level]) + (node.module.split(".") if node.module else [])
            names = [base + [a.name] for a in node.names] if len(base) == 1 else [base]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "shufflesearch":
            base = node.module.split(".")
            names = [base + [a.name] for a in node.names] if len(base) == 1 else [base]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "shufflesearch"]
        else:
            continue
        found += [(node.lineno, n[1]) for n in names if len(n) > 1 and (PACKAGE / n[1]).exists()
                  or len(n) > 1 and (PACKAGE / f"{n[1]}.py").exists()]
    return found


def test_every_package_imports_only_its_own_and_lower_ones():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part == "__init__":  # the package's lazy names: the public API, above everything
            continue
        for line, target in _imports(path):
            if _layer(target) > _layer(part):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports shufflesearch.{target}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_a_lazy_import_of_a_higher_package():
    module = PACKAGE / "space" / "_file.py"
    assert (1, "models") in _imports(module, "from shufflesearch.models import build\n")
    assert (2, "driver") in _imports(module, "def f():\n    from ..driver import search\n")
    assert (1, "genome") in _imports(module, "from shufflesearch import genome\n")


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.mark.parametrize("modules", ["shufflesearch", "shufflesearch.space", "shufflesearch.genome",
                                     "shufflesearch.runs", "shufflesearch.cli"])
def test_the_light_packages_import_no_torch_timm_ray_optuna_or_matplotlib(modules, tmp_path):
    done = _python(f"import sys, {modules}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [["--version"], ["spaces"], ["models"], ["cost", "shufflenet_v1_g3_x1_0"]])
def test_the_quick_commands_import_no_torch(command, tmp_path):
    code = ("import sys\nfrom shufflesearch.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *command], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.splitlines()[-1] == "HEAVY []", done.stdout + done.stderr


@pytest.fixture
def found_model(tmp_path) -> Path:
    """A working directory whose runs/ holds one exported model, `ss_layout_best`, and one named `json`."""
    arch = get_arch("shufflenet_v2_x0_5")
    weights = safetensors.torch.save(build(arch, num_classes=10, in_chans=1).state_dict())
    data = {"num_classes": 10, "in_chans": 1, "image_size": 32, "mean": [0.5], "std": [0.25],
            "label_names": [str(i) for i in range(10)]}
    card = {"source": "shufflenet_v2_x0_5", "mflops": 1.0, "params": 1}
    for name in ("ss_layout_best", "json"):
        write_model_dir(tmp_path / "runs" / "layout" / "models" / name, arch, weights, data, card)
    return tmp_path


@pytest.mark.parametrize("first", ["shufflesearch", "timm", "shufflesearch.space"])
def test_found_models_reach_timm_whichever_is_imported_first(found_model, first):
    then = "timm" if first.startswith("shufflesearch") else "shufflesearch"
    done = _python(f"import {first}, {then}\nimport timm\n"
                   "m = timm.create_model('ss_layout_best', pretrained=True)\n"
                   "print(m.num_classes, m.pretrained_cfg['input_size'])", found_model)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10", "(1,", "32,", "32)"]


def test_a_model_folder_named_like_a_module_touches_no_namespace(found_model):
    """Registering writes no name into the registry module: a folder named `json` once replaced its
    `json` module, and `import shufflesearch` there failed."""
    done = _python("import shufflesearch, timm, json\nimport shufflesearch.models._registry as r\n"
                   "assert getattr(r, 'json', json) is json\n"
                   "print(timm.create_model('json', pretrained=True).num_classes, shufflesearch.get_arch('json').hash)",
                   found_model)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10", get_arch("shufflenet_v2_x0_5").hash]


def test_the_readme_layout_lists_every_package_and_module_in_layer_order():
    readme = (ROOT / "README.md").read_text()
    tree = readme.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed = [name.removesuffix("/").removesuffix(".py") for line in tree.splitlines()[2:]
              for name in line.strip().split("  ")[0].split()]
    shipped = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
               if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.name not in ("__init__.py", "__main__.py")}
    assert sorted(listed) == sorted(shipped)
    layers = [_layer(name) for name in listed]
    assert layers == sorted(layers), "the tree lists the packages lowest first"
