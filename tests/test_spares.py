"""Spare worktrees: a finished run's checkout, parked clean, taken by the next run instead of a new one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.workspace import gitops, spares
from anvil.workspace.baseline import baseline
from tests.pipeline_helpers import make_repo, sh


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    (root / ".gitignore").write_text("build/\n")
    sh(["git", "add", ".gitignore"], root)
    sh(["git", "commit", "-qm", "ignore build"], root)
    return root


def _claim(repo: Path, run_id: str, base: str, wanted: str) -> tuple[Path, str]:
    return gitops.claim_worktree(repo, run_id, gitops.rev_parse(repo, base), wanted,
                                 take_spare=lambda p: spares.take(repo, p))


def _dirty(wt: Path) -> None:
    """What a run and its tests leave: an edit, a new file, an ignored build product, a nested repository."""
    (wt / "README.md").write_text("changed by a run\n")
    (wt / "left.txt").write_text("untracked\n")
    (wt / "build").mkdir()
    (wt / "build" / "out.so").write_text("ignored\n")
    sh(["git", "init", "-q", str(wt / "nested")], wt)


def test_a_parked_worktree_is_clean_and_the_next_run_takes_it(repo: Path) -> None:
    wt, branch = _claim(repo, "r1", "main", "anvil/first")
    assert branch == "anvil/first"
    sh(["git", "commit", "-qam", "run 1", "--allow-empty"], wt)
    _dirty(wt)
    assert spares.park(repo, wt, keep=1)
    assert not wt.exists()
    (spare,) = spares.spares(repo)
    assert sh(["git", "status", "--porcelain", "--ignored"], spare) == ""
    assert not (spare / "left.txt").exists() and not (spare / "build").exists() and not (spare / "nested").exists()
    assert sh(["git", "rev-parse", "--abbrev-ref", "HEAD"], spare).strip() == "HEAD"  # detached: holds no branch
    assert sh(["git", "status", "--porcelain"], repo) == ""  # the user's checkout does not see the pool

    # a second commit on main: the next run starts from it, in the spare
    (repo / "src" / "new.py").write_text("x = 1\n")
    sh(["git", "add", "."], repo)
    sh(["git", "commit", "-qm", "more"], repo)
    wt2, branch2 = _claim(repo, "r2", "main", "anvil/second")
    assert branch2 == "anvil/second" and spares.spares(repo) == []
    assert sh(["git", "rev-parse", "HEAD"], wt2) == sh(["git", "rev-parse", "main"], repo)
    assert (wt2 / "src" / "new.py").read_text() == "x = 1\n"
    assert (wt2 / "README.md").read_text() == (repo / "README.md").read_text()
    assert sh(["git", "status", "--porcelain", "--ignored"], wt2) == ""
    assert "anvil/first" in sh(["git", "branch", "--list", "anvil/first"], repo)  # run 1's branch keeps its work


def test_a_taken_spare_still_gets_a_branch_no_other_run_has(repo: Path) -> None:
    wt, _ = _claim(repo, "r1", "main", "anvil/same")
    assert spares.park(repo, wt, keep=1)
    wt2, branch = _claim(repo, "r2", "main", "anvil/same")  # anvil/same exists: the spare gets -2
    assert branch == "anvil/same-2" and sh(["git", "symbolic-ref", "--short", "HEAD"], wt2).strip() == "anvil/same-2"


def test_a_run_killed_after_taking_a_spare_resumes_in_it(repo: Path) -> None:
    wt, _ = _claim(repo, "r1", "main", "anvil/a")
    assert spares.park(repo, wt, keep=1)
    path = gitops.worktree_path(repo, "r2")
    path.parent.mkdir(parents=True)
    assert spares.take(repo, path)  # killed here: a detached spare at the run's path, no branch yet
    again, branch = _claim(repo, "r2", "main", "anvil/b")
    assert again == path and branch == "anvil/b"


def test_the_pool_keeps_at_most_its_setting(repo: Path) -> None:
    a, _ = _claim(repo, "r1", "main", "anvil/a")
    b, _ = _claim(repo, "r2", "main", "anvil/b")
    assert not spares.park(repo, a, keep=0) and a.exists()  # off: the caller removes it as before
    assert spares.park(repo, a, keep=1)
    assert not spares.park(repo, b, keep=1) and b.exists()  # full
    assert len(spares.spares(repo)) == 1


def test_one_spare_goes_to_one_of_two_takers(repo: Path) -> None:
    wt, _ = _claim(repo, "r1", "main", "anvil/a")
    assert spares.park(repo, wt, keep=1)
    (repo / "p1").mkdir()
    (repo / "p2").mkdir()
    got = [spares.take(repo, repo / "p1" / "wt"), spares.take(repo, repo / "p2" / "wt")]
    assert got == [True, False]


def test_baseline_borrows_a_spare_and_gives_it_back(repo: Path) -> None:
    wt, _ = _claim(repo, "r1", "main", "anvil/a")
    assert spares.park(repo, wt, keep=1)
    (spare,) = spares.spares(repo)
    cmd = f"{sys.executable} -c \"import pathlib; print(sorted(p.name for p in pathlib.Path('.').iterdir()))\""
    base = baseline(repo, gitops.rev_parse(repo, "main"), cmd, timeout=30, spare_worktrees=1)
    assert base.passed
    assert len(spares.spares(repo)) == 1 and not spare.exists()  # taken, then parked under a new name


def test_clean_all_removes_the_spares(repo: Path, tmp_path: Path) -> None:
    wt, _ = _claim(repo, "r1", "main", "anvil/a")
    assert spares.park(repo, wt, keep=1)
    env = {**os.environ, "ANVIL_HOME": str(tmp_path / "home")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "anvil", "clean", *a], cwd=repo, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    r = run()
    assert r.returncode == 0 and len(spares.spares(repo)) == 1  # plain clean keeps the pool
    r = run("--all", "--dry-run")
    assert "would remove" in r.stdout and len(spares.spares(repo)) == 1
    r = run("--all")
    assert r.returncode == 0, r.stderr
    assert "spare worktree: removed" in r.stdout and spares.spares(repo) == []
    assert "spare-" not in sh(["git", "worktree", "list"], repo)
