"""How long `anvil --help` and `anvil --version` take to start: median of 10 runs each.

    python benchmarks/startup.py

Target: `anvil --help` under 0.3 s. Heavy imports (httpx, pydantic, rich
tables, tree-sitter) must happen inside commands, not at start-up.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(argv: list[str], runs: int = 10) -> float:
    subprocess.run(argv, capture_output=True, check=True)  # warm the file cache once
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    exe = shutil.which("anvil")
    base = [exe] if exe else [sys.executable, "-m", "anvil"]
    for args in (["--help"], ["--version"], ["policy", "--help"]):
        t = median_seconds(base + args)
        print(f"anvil {' '.join(args):<16} median of 10: {t * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
