"""How much CPU `anvil` spends starting up: user+sys medians of the hot commands.

    python benchmarks/startup.py [--runs 15]

CPU time (the children's rusage: user + sys), not wall time, so a busy
machine does not move the numbers much. `--help` is the reference measured in
the same run; the targets are relative to it:

* `anvil --help` under 0.3 s;
* `cost report` on an empty ledger and `policy explain --offline` each at most
  `--help` + 0.08 s.

Heavy imports (httpx, pydantic, rich, tree-sitter) must happen inside the
commands that need them, not at start-up. The commands run in a fresh
temporary git repository with an empty ANVIL_HOME.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("--version",),
    ("runs",),
    ("cost", "report"),
    ("policy", "explain", "--offline"),
)
TARGETS = {("cost", "report"): 0.08, ("policy", "explain", "--offline"): 0.08}


def cpu_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """One run's user+sys CPU, read from the children's rusage around it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(runs: int) -> dict[tuple[str, ...], float]:
    """Median user+sys CPU of each command, in a fresh git repository with an empty ANVIL_HOME."""
    exe = shutil.which("anvil")
    base = [exe] if exe else [sys.executable, "-m", "anvil"]
    with tempfile.TemporaryDirectory() as tmp:
        repo, home = Path(tmp) / "repo", Path(tmp) / "home"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        env = {**os.environ, "ANVIL_HOME": str(home)}
        # An installed anvil has its .pyc files; a shell with PYTHONDONTWRITEBYTECODE would time compiling.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        medians: dict[tuple[str, ...], float] = {}
        for cmd in COMMANDS:
            cpu_seconds(base + list(cmd), repo, env)  # warm the file cache and .pyc files once
            medians[cmd] = statistics.median(cpu_seconds(base + list(cmd), repo, env) for _ in range(runs))
    return medians


def report(medians: dict[tuple[str, ...], float], runs: int) -> tuple[list[str], bool]:
    """The table's lines, and whether a target was missed."""
    ref = medians[("--help",)]
    failed = False
    lines = []
    for cmd, t in medians.items():
        line = f"anvil {' '.join(cmd):<26} user+sys median of {runs}: {t * 1000:7.1f} ms"
        if cmd in TARGETS:
            limit = ref + TARGETS[cmd]
            ok = t <= limit
            failed |= not ok
            line += f"   (target <= --help + {TARGETS[cmd] * 1000:.0f} ms = {limit * 1000:.0f} ms: " \
                    f"{'ok' if ok else 'over'})"
        lines.append(line)
    return lines, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    lines, failed = report(measure(args.runs), args.runs)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
