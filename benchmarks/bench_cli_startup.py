"""How fast the CLI's quick commands answer: this checkout against an earlier commit, interleaved.

Each command runs as a new process (`python -m shufflesearch ...`, as `shufflesearch ...` does), from an
empty folder, with the package imported from this checkout or from a `git worktree` of `--baseline`
(default 7a999cb, the last commit of the flat layout, whose `import shufflesearch` imported torch, timm
and Ray). Runs alternate between the two so that drift of the machine's speed hits both; the medians
and their ratio are printed, and with `--out` written as JSON.

    python benchmarks/bench_cli_startup.py [--baseline REV] [--runs 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--version"], ["--help"], ["spaces"], ["models"], ["cost", "shufflenet_v1_g3_x1_0"])


def _seconds(source: Path, command: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "shufflesearch", *command], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="7a999cb", help="the commit to compare with (default 7a999cb)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each command on each side (default 7)")
    parser.add_argument("--out", type=Path, help="write the medians and ratios here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, empty = Path(tmp) / "baseline", Path(tmp) / "empty"
        empty.mkdir()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(base), args.baseline],
                       check=True)
        try:
            results = {}
            for command in COMMANDS:
                times: dict[str, list[float]] = {"baseline": [], "this": []}
                for _ in range(args.runs):
                    times["baseline"].append(_seconds(base, command, empty))
                    times["this"].append(_seconds(ROOT, command, empty))
                medians = {side: statistics.median(t) for side, t in times.items()}
                name = " ".join(command)
                results[name] = {**medians, "ratio": medians["this"] / medians["baseline"], "runs": times}
                print(f"shufflesearch {name:<32} {args.baseline}: {medians['baseline']:.2f} s   this: "
                      f"{medians['this']:.2f} s   ratio {results[name]['ratio']:.2f}x", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    if args.out:
        args.out.write_text(json.dumps({"baseline": args.baseline, "machine": platform.machine(),
                                        "cpus": os.cpu_count(), "python": platform.python_version(),
                                        "date": time.strftime("%Y-%m-%d"), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
