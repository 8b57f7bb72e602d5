"""How the retrieval index scales: cold build, warm open, one edited file, per repository.

    python benchmarks/scale.py REPO [REPO ...] [--repeat 3] [--anvil PATH] [--startup-runs 9] [--json]

For each work tree: files and chunks indexed, then CPU seconds (user + sys)
and peak memory (MiB) of

- ``cold``: the index built with no cache at all (removed first);
- ``warm``: the index opened again, nothing changed;
- ``edit``: one line appended to one source file (the middle ``.py`` of the
  sorted list; restored afterwards), the index opened again.

Every measurement is its own child process (``python -c``) that imports
anvil, opens the index and exits; a middle process starts it and reports its
``getrusage(RUSAGE_CHILDREN)``, so CPU includes the interpreter, the imports
and any pool workers, and the peak is the largest single process's RSS. The
``index cpu`` columns are the child's own ``time.process_time()`` around
``open_index`` (no start-up, no workers). ``--anvil PATH`` runs the children
against another checkout of anvil (e.g. main) for a side-by-side table. Warm
and edit are medians of ``--repeat`` runs; cold is run once.

Then the start-up table of ``benchmarks/startup.py`` (``--startup-runs`` per
command, 0 to leave it out), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import measure as measure_startup  # noqa: E402
from startup import report as startup_report  # noqa: E402

_CHILD = r"""
import json, sys, time
from pathlib import Path
t = time.process_time()
from anvil.retrieval.index import open_index
index, stats = open_index(Path(sys.argv[1]))
print(json.dumps({"files": len(index.paths), "chunks": index.n_chunks, "index_cpu": time.process_time() - t,
                  "rechunked": stats.rechunked}))
"""


def measure(root: Path, anvil: str | None) -> dict:
    """Run one child (through a middle process) and return its stats, CPU and peak."""
    cmd = [sys.executable, __file__, "--child", str(root)] + (["--anvil", anvil] if anvil else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(root: Path, anvil: str | None) -> None:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time what an installed anvil does: import its .pyc files
    if anvil:
        env["PYTHONPATH"] = anvil + os.pathsep + env.get("PYTHONPATH", "")
    # `python -c` puts its working directory first on sys.path: run it in the checkout being measured.
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(root)], env=env, capture_output=True, text=True,
                          cwd=anvil or None)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    got.update(cpu=ru.ru_utime + ru.ru_stime, peak_mib=ru.ru_maxrss / 1024)
    print(json.dumps(got))


def clear_caches(root: Path) -> None:
    common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=root,
                            check=True, capture_output=True, text=True).stdout.strip()
    shutil.rmtree(Path(common) / "anvil", ignore_errors=True)  # this branch's cache
    shutil.rmtree(root / ".anvil" / "cache" / "retrieval", ignore_errors=True)  # older anvils' cache


def edit_target(root: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=root, check=True, capture_output=True,
                           text=True).stdout.split()
    if not files:
        sys.exit(f"error: no Python file to edit in {root}")
    return root / sorted(files)[len(files) // 2]


def bench(root: Path, repeat: int, anvil: str | None) -> dict:
    clear_caches(root)
    cold = measure(root, anvil)
    warm = [measure(root, anvil) for _ in range(repeat)]
    target = edit_target(root)
    original = target.read_bytes()
    edits = []
    try:
        for i in range(repeat):
            target.write_bytes(original + f"\n# edited by benchmarks/scale.py ({i})\n".encode())
            edits.append(measure(root, anvil))
    finally:
        target.write_bytes(original)
        measure(root, anvil)  # leave the cache current
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    return {
        "repo": str(root), "files": cold["files"], "chunks": cold["chunks"], "edited": str(target.relative_to(root)),
        "cold_cpu": cold["cpu"], "cold_peak": cold["peak_mib"], "cold_index_cpu": cold["index_cpu"],
        "warm_cpu": med(warm, "cpu"), "warm_peak": med(warm, "peak_mib"), "warm_index_cpu": med(warm, "index_cpu"),
        "edit_cpu": med(edits, "cpu"), "edit_peak": med(edits, "peak_mib"), "edit_index_cpu": med(edits, "index_cpu"),
        "edit_rechunked": max(r["rechunked"] for r in edits),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repos", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--anvil", default=None, help="run the children with this anvil checkout first on PYTHONPATH")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--startup-runs", type=int, default=9, help="runs per command of the start-up table (0: none)")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.anvil)
        return
    if not args.repos and not args.startup_runs:
        ap.error("give at least one repository, or --startup-runs")
    rows = []
    for repo in args.repos:
        rows.append(bench(repo.resolve(), args.repeat, args.anvil))
        print(f"measured {repo}", file=sys.stderr)
    startup = measure_startup(args.startup_runs) if args.startup_runs else {}
    if args.json:
        print(json.dumps({"repos": rows, "startup_cpu_s": {" ".join(k): v for k, v in startup.items()}}, indent=2))
        return
    print_repos(rows, args.anvil)
    if startup:
        print()
        print("start-up (CPU user+sys of the whole process; targets relative to --help in this run):")
        print("\n".join(startup_report(startup, args.startup_runs)[0]))


def print_repos(rows: list[dict], anvil: str | None) -> None:
    if not rows:
        return
    print(f"anvil: {anvil or 'this checkout'}; CPU s = user+sys of the whole process (pool workers included); "
          f"peak = max RSS of one process; index cpu = open_index in the main process")
    head = (f"{'repo':<16}{'files':>7}{'chunks':>8} | {'cold cpu':>8}{'peak':>7}{'index':>7} | "
            f"{'warm cpu':>8}{'peak':>7}{'index':>7} | {'edit cpu':>8}{'peak':>7}{'index':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{Path(r['repo']).name:<16}{r['files']:>7}{r['chunks']:>8} | {r['cold_cpu']:>8.2f}{r['cold_peak']:>7.0f}"
              f"{r['cold_index_cpu']:>7.2f} | {r['warm_cpu']:>8.2f}{r['warm_peak']:>7.0f}{r['warm_index_cpu']:>7.2f} | "
              f"{r['edit_cpu']:>8.2f}{r['edit_peak']:>7.0f}{r['edit_index_cpu']:>7.2f}")


if __name__ == "__main__":
    main()
