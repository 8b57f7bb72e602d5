"""Wall time of `anvil demo`, with the real test command (pytest) and with `--no-tests`; and the
README picture, regenerated from a real run.

    python benchmarks/demo_time.py                      # 3 runs of each, prints the times
    python benchmarks/demo_time.py --svg docs/demo.svg  # also re-renders the picture (from a pytest run)

Each run is the real console script in a subprocess (interpreter start-up and imports
included: what a newcomer waits for), in a fresh `anvil-demo-*` temporary folder, with
ANVIL_HOME in a temporary folder too (your ledger is not touched). The folders are removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANVIL = str(Path(sys.executable).with_name("anvil"))


def one_run(extra: list[str], home: Path) -> float:
    folder = Path(tempfile.mkdtemp(prefix="anvil-demo-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVIL_")}
    env.update(ANVIL_HOME=str(home), COLUMNS="118")
    try:
        t0 = time.perf_counter()
        p = subprocess.run([ANVIL, "demo", "--dir", str(folder), *extra], env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=300)
        seconds = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(
                f"anvil demo {' '.join(extra)} failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
            )
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each variant (default 3)")
    ap.add_argument("--svg", help="write the picture of the first pytest run here (e.g. docs/demo.svg)")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="anvil-home-"))
    try:
        variants = {"real test command (pytest)": [], "--no-tests (anvil's small test runner)": ["--no-tests"]}
        results: dict[str, list[float]] = {}
        for name, extra in variants.items():
            times = []
            for i in range(args.runs):
                svg = ["--svg", str(Path(args.svg).resolve())] if args.svg and not extra and i == 0 else []
                times.append(one_run(extra + svg, home))
            results[name] = times
        print(f"anvil demo wall time, {args.runs} run(s) each (subprocess, start-up included):")
        for name, times in results.items():
            print(f"  {name:<40} median {statistics.median(times):5.2f}s  min {min(times):5.2f}s  "
                  f"max {max(times):5.2f}s")
        if args.svg:
            print(f"picture: {args.svg}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
