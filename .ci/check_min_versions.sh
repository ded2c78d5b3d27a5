#!/usr/bin/env bash
# The declared dependency minimums, checked: a venv with every entry of pyproject.toml's
# `dependencies` at exactly its `>=` floor, then the fast tests (or the pytest arguments given) in it.
# The floors are read from pyproject.toml, nowhere else. torch and torchvision stay as installed (other
# builds are multi-GB downloads); the script only checks that they meet their floors. The venv sees
# the system's packages (--system-site-packages), so pytest, onnx and the rest come from there, and
# what a floor needs (e.g. an older pandas) is installed in the venv by pip's resolver.
#
#   .ci/check_min_versions.sh                                    # fast tests
#   .ci/check_min_versions.sh -m slow tests/test_search.py -k four_trial
#   MINVENV=DIR  the venv (default $TMPDIR/shufflesearch-minvenv, rebuilt from scratch each run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${MINVENV:-${TMPDIR:-/tmp}/shufflesearch-minvenv}
KEEP=(torch torchvision)
(($#)) || set -- -m "not slow" tests/
SECONDS=0

# mode pins: `name[extras]==floor` lines for pip; mode verify: each dependency's installed version
# against its floor (== for pinned ones, >= for kept ones); a dependency without one `>=` is an error
floors() {
    "$1" - "$2" "${KEEP[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

mode, keep = sys.argv[1], {canonicalize_name(n) for n in sys.argv[2:]}
with open("pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
bad = []
for line in deps:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
        continue
    floors = [s.version for s in req.specifier if s.operator == ">="]
    if len(floors) != 1:
        sys.exit(f"check_min_versions: pyproject.toml: {line!r} has no single '>=' minimum")
    name, floor = canonicalize_name(req.name), floors[0]
    if mode == "pins":
        if name not in keep:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            print(f"{req.name}{extras}=={floor}")
        continue
    try:
        have = version(req.name)
    except PackageNotFoundError:
        have = None
    ok = have is not None and (req.specifier.contains(have, prereleases=True) if name in keep
                               else Version(have) == Version(floor))
    print(f"  {req.name:<14} {have or 'missing':<16} declared >={floor}"
          f"{' (kept as installed)' if name in keep else ''}{'' if ok else '  <-- MISMATCH'}")
    bad += [] if ok else [req.name]
if bad:
    sys.exit(f"check_min_versions: not at the declared minimum: {', '.join(bad)}")
EOF
}

PINS_TEXT=$(floors "$PY" pins)
mapfile -t PINS <<<"$PINS_TEXT"
echo "== venv $VENV with: ${PINS[*]}"
"$PY" -m venv --clear --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: "${PINS[@]}"
echo "== installed ($SECONDS s)"
floors "$VENV/bin/python" verify

echo "== pytest $*"
status=0
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "== check_min_versions: pytest exit $status after $SECONDS s"
exit $status
