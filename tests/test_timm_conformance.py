"""timm's own model tests (its `tests/test_models.py`) on the names shufflesearch registers.

timm's wheel has no tests, but its sdist on PyPI does: the sdist of the installed timm version is
downloaded with pip (PyPI only, cached in pytest's cache dir per timm version), its
`tests/test_models.py` extracted beside a `conftest.py` that imports shufflesearch, and run in a
subprocess with `-k` on a representative subset of our names (all 30 take several minutes on 2 cores):
`shufflesearch_net` built with no arguments (V2 1.0x), the V2 0.5x zoo model, the v1 paper model
(g=3, 1x), v1 with the most groups at the smallest width (g=8, 0.25x) and ungrouped v1 (g=1, no
shuffle; 0.5x).
"""

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
import timm

NAMES = ("shufflesearch_net", "shufflenet_v2_x0_5", "shufflenet_v1_g3_x1_0", "shufflenet_v1_g8_x0_25",
         "shufflenet_v1_g1_x0_5")
MIN_PASSED_PER_NAME = 8  # timm 1.0.31 runs 8 model tests on each name (forward, backward, cfgs, jit, fx, ...)
TEST_FILE = "tests/test_models.py"


def timm_test_dir(cache: pytest.Cache) -> Path:
    """A folder holding the installed timm version's `test_models.py`, a conftest importing
    shufflesearch and a pytest.ini (so no project config above it applies)."""
    folder = cache.mkdir(f"timm-{timm.__version__}-tests")
    if not (folder / "test_models.py").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "download", f"timm=={timm.__version__}", "--no-deps",
                 "--no-binary", ":all:", "-d", tmp, "-q"], capture_output=True, text=True)
            assert pip.returncode == 0, f"pip could not download timm {timm.__version__}'s sdist:\n{pip.stderr}"
            (sdist,) = Path(tmp).glob("timm-*.tar.gz")
            with tarfile.open(sdist) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("/" + TEST_FILE))
                text = tar.extractfile(member).read()
        (folder / "conftest.py").write_text("import shufflesearch  # noqa: F401  registers our models in timm\n")
        (folder / "pytest.ini").write_text("[pytest]\nfilterwarnings = ignore::pytest.PytestUnknownMarkWarning\n")
        (folder / "test_models.py").write_bytes(text)  # last: its presence marks a complete folder
    return folder


@pytest.mark.slow
def test_timm_model_tests_pass_on_our_names(cache, tmp_path):
    folder = timm_test_dir(cache)
    report = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "SHUFFLESEARCH_MODELS"}  # our zoo only
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "test_models.py", "-k", " or ".join(NAMES), "-p", "no:cacheprovider",
         "-q", f"--junitxml={report}"], cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    output = run.stdout[-10000:] + run.stderr[-3000:]
    assert report.is_file(), output
    passed = dict.fromkeys(NAMES, 0)
    problems = []
    for case in ElementTree.parse(report).iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        if outcome in ("failure", "error"):
            problems.append(f"{case.get('name')}: {outcome}")
        elif outcome == "passed":
            for name in NAMES:
                passed[name] += bool(re.search(rf"\b{name}\b", case.get("name")))
    assert not problems, "\n".join(problems) + "\n" + output
    assert run.returncode == 0, output
    assert min(passed.values()) >= MIN_PASSED_PER_NAME, passed
