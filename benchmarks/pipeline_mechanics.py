"""Pipeline mechanics on this machine: edit matching, test-report truncation, run-store writes, git.

    python benchmarks/pipeline_mechanics.py [--lines 5000] [--runs 5]

- edits: applying one search/replace block to a file of --lines lines, per matching level
  (exact, whitespace-tolerant, fuzzy: the fuzzy scan is the expensive one);
- report: building the model-sized report from a 20k-line pytest log;
- state: `Run.save()` (atomic write + fsync) and `Run.event()` per call;
- git: create a worktree, commit one change, diff, remove (a real tmp repo).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil.run.store import RunStore  # noqa: E402
from anvil.workspace import gitops  # noqa: E402
from anvil.workspace.edits import EditBlock, apply_edits  # noqa: E402
from anvil.workspace.testreport import build_report  # noqa: E402


def _ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_edits(tmp: Path, n_lines: int, runs: int) -> None:
    body = "".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(n_lines // 2))
    target = n_lines // 2 - 10
    cases = {
        "exact": f"def f{target}(x):\n    return x * {target} + {target % 7}",
        "whitespace": f"  def f{target}(x):  \n      return x * {target} + {target % 7}",
        "fuzzy": f"def f{target}(y):\n    return y * {target} + {target % 7}",
    }
    for how, search in cases.items():
        def once(search: str = search, how: str = how) -> None:
            (tmp / "big.py").write_text(body)
            r = apply_edits(tmp, [EditBlock("big.py", search, "pass", 1)])
            assert r.ok and r.applied[0].how == how, (how, r.feedback())
        print(f"edits  {how:<11} {n_lines:>6} lines  {_ms(once, runs):8.1f} ms")


def bench_report(runs: int) -> None:
    lines = [f"noise line {i}" for i in range(20000)]
    lines[10000:10000] = ["_____ test_x _____", "", ">       assert f() == 2", "E       assert 1 == 2", ""]
    lines += ["=== short test summary info ===", "FAILED tests/test_a.py::test_x - assert 1 == 2", "1 failed"]
    text = "\n".join(lines)
    print(f"report 20k-line log -> {len(build_report(text, header='$ pytest'))} chars  "
          f"{_ms(lambda: build_report(text, header='$ pytest'), runs):8.1f} ms")


def bench_state(tmp: Path, runs: int) -> None:
    run = RunStore(tmp / "repo-state").create("bench")
    print(f"state  save (fsync)          {_ms(run.save, runs * 10):8.2f} ms")
    print(f"state  event (append)        {_ms(lambda: run.event('x', n=1), runs * 10):8.2f} ms")


def bench_git(tmp: Path, runs: int) -> None:
    repo = tmp / "repo-git"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo, check=True)
    n = [0]

    def cycle() -> None:
        n[0] += 1
        wt = gitops.create_worktree(repo, f"r{n[0]}", "main", f"anvil/b{n[0]}")
        (wt / "a.txt").write_text("a\n")
        gitops.diff(wt, "main")
        gitops.commit(wt, "feat: a\n")
        gitops.remove_worktree(repo, wt)
    print(f"git    worktree+diff+commit+remove {_ms(cycle, runs):8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_edits(tmp, a.lines, a.runs)
        bench_report(a.runs)
        bench_state(tmp, a.runs)
        bench_git(tmp, a.runs)


if __name__ == "__main__":
    main()
