#!/usr/bin/env bash
# CI: the package works installed, not only cloned. Builds the sdist and, from it, the wheel; installs
# the wheel (its dependencies are already installed) into a folder of its own; then, from an empty
# folder, with shufflesearch imported from that folder and never from this checkout, runs a 2-trial
# search of the shipped demo space by name and loads its winner through timm in a new process.
# About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m build --no-isolation --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/shufflesearch-*.tar.gz)
wheel=$(ls "$work"/dist/shufflesearch-*.whl)
tar -tzf "$sdist" >"$work/sdist.txt"
for member in LICENSE search_spaces/demo.yaml search_spaces/README.md; do
    grep -q "/$member\$" "$work/sdist.txt" || { echo "sdist lacks $member"; exit 1; }
done
pip install --quiet --no-deps --no-compile --target "$work/site" "$wheel"
test -f "$work/site/shufflesearch/search_spaces/demo.yaml" || { echo "wheel lacks the shipped spaces"; exit 1; }

mkdir "$work/empty" && cd "$work/empty"
export PYTHONPATH="$work/site"
python -m shufflesearch --version
python -m shufflesearch spaces
python -m shufflesearch search demo --trials 2 --scheduler none
python - "$work/site" <<'PY'
import importlib.metadata, sys
import shufflesearch, timm, torch

site = sys.argv[1]
assert shufflesearch.__file__.startswith(site), f"shufflesearch imported from {shufflesearch.__file__}, not the wheel"
assert importlib.metadata.version("shufflesearch") == shufflesearch.__version__
assert importlib.metadata.metadata("shufflesearch")["License-Expression"] == "Apache-2.0"
model = timm.create_model("ss_demo_best", pretrained=True).eval()
size = model.pretrained_cfg["input_size"]
with torch.no_grad():
    out = model(torch.zeros(1, *size))
print(f"wheel check: ss_demo_best loads from the run's weights ({model.num_classes} classes, "
      f"output {tuple(out.shape)}), shufflesearch {shufflesearch.__version__} from {site}")
PY
