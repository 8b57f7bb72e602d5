"""What a run's worktree costs on a big repository: a new one every run, or a spare taken and parked.

    python benchmarks/worktree_cost.py REPO [--runs 3]

REPO is a git work tree (e.g. the x10 astropy copy of benchmarks/make_copies.py). Each round makes a
run's worktree the way `anvil run` does (`claim_worktree`), dirties it as a run would (an edit, a new
file, an ignored build product), then ends it: removed (`git.spare_worktrees: 0`) or parked for the
next run (the default, 1). Printed: CPU seconds (git's children, user+sys) and wall seconds, medians,
for the start and the end of a run, side by side in one run. Branches and worktrees made are removed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from anvil.workspace import gitops, spares


def _measure(fn: Callable[[], object]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    fn()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - t


def _dirty(wt: Path) -> None:
    first = next(p for p in sorted(wt.rglob("*.py")) if ".git" not in p.parts)
    first.write_text(first.read_text() + "\n# edited by a run\n")
    (wt / "new_file.txt").write_text("made by a run\n")
    (wt / "build").mkdir(exist_ok=True)
    (wt / "build" / "product.o").write_bytes(b"\0" * 4096)


def one_round(repo: Path, keep: int, branches: list[str]) -> dict[str, tuple[float, float]]:
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    base = gitops.rev_parse(repo, "HEAD")
    got: dict[str, Path] = {}

    def start() -> None:
        path, branch = gitops.claim_worktree(repo, run_id, base, f"anvil/bench-{run_id}",
                                             take_spare=lambda p: spares.take(repo, p))
        got["path"] = path
        branches.append(branch)

    out = {"start": _measure(start)}
    _dirty(got["path"])

    def end() -> None:
        if not spares.park(repo, got["path"], keep):
            gitops.remove_worktree(repo, got["path"])

    out["end"] = _measure(end)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo.resolve()
    files = len(gitops.git(["ls-files"], repo).stdout.splitlines())
    branches: list[str] = []
    spares.remove_all(repo)
    results: dict[str, list[dict[str, tuple[float, float]]]] = {"new worktree every run (spare_worktrees: 0)": [],
                                                                "spare taken and parked (spare_worktrees: 1)": []}
    try:
        for _ in range(args.runs):
            results["new worktree every run (spare_worktrees: 0)"].append(one_round(repo, 0, branches))
        one_round(repo, 1, branches)  # the first run of the pool pays a new worktree, then parks it
        for _ in range(args.runs):
            results["spare taken and parked (spare_worktrees: 1)"].append(one_round(repo, 1, branches))
    finally:
        spares.remove_all(repo)
        for b in branches:
            gitops.git(["branch", "-D", b], repo, check=False)
    print(f"{repo.name}: {files:,} tracked files, {args.runs} runs each, medians (CPU = git's user+sys)\n")
    print(f"{'':<46}{'start cpu s':>12}{'start wall s':>13}{'end cpu s':>11}{'end wall s':>12}")
    for name, rows in results.items():
        med = {k: (statistics.median(r[k][0] for r in rows), statistics.median(r[k][1] for r in rows))
               for k in ("start", "end")}
        print(f"{name:<46}{med['start'][0]:>12.2f}{med['start'][1]:>13.2f}{med['end'][0]:>11.2f}{med['end'][1]:>12.2f}")


if __name__ == "__main__":
    main()
