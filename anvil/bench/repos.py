"""An isolated copy of a task's repository at its base commit, for one run.

A git source (a clone or a bare mirror) is cloned with `--shared` (its objects are borrowed,
nothing is copied) and the base commit checked out on the branch `bench-base`; the clone has
no remote, so nothing a run does can reach the source. A plain folder is copied and committed.
Hooks never run (core.hooksPath points nowhere).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from anvil.errors import AnvilError

BASE_BRANCH = "bench-base"
_IDENTITY = ["-c", "user.name=anvil bench", "-c", "user.email=bench@anvil.invalid", "-c", "core.hooksPath=/dev/null"]


class RepoError(AnvilError):
    """The task's repository could not be prepared."""


def git(args: list[str], cwd: Path, *, check: bool = True, input_text: str | None = None) -> str:
    p = subprocess.run(["git", *_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, input=input_text)
    if check and p.returncode != 0:
        raise RepoError(f"git {' '.join(args[:3])} failed in {cwd}: {(p.stderr or p.stdout).strip()[:500]}")
    return p.stdout


def is_git(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def checkout(source: Path, base: str, dest: Path, *, exclude: tuple[str, ...] = ()) -> str:
    """`dest` becomes a repository on BASE_BRANCH at `base`; returns the base commit sha."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_git(source):
        git(["clone", "-q", "--shared", "--no-checkout", str(source), str(dest)], dest.parent)
        git(["checkout", "-q", "-B", BASE_BRANCH, base or "HEAD"], dest)
        git(["remote", "remove", "origin"], dest, check=False)
    else:
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(
            *exclude, ".git", "__pycache__", "*.egg-info", ".pytest_cache", "node_modules", "target", "build"))
        git(["init", "-q", "-b", BASE_BRANCH], dest)
        git(["add", "-A"], dest)
        git(["commit", "-q", "--allow-empty", "-m", "bench task base"], dest)
    info = dest / ".git" / "info"
    info.mkdir(parents=True, exist_ok=True)
    with open(info / "exclude", "a", encoding="utf-8") as f:
        f.write("\n.anvil/\n")  # the bench's settings and the run folders stay out of every diff
    return git(["rev-parse", "HEAD"], dest).strip()


def final_commit(repo: Path, branch: str | None) -> str | None:
    if not branch:
        return None
    out = git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], repo, check=False).strip()
    return out or None


def diff(repo: Path, base: str, head: str) -> str:
    return git(["diff", "--no-color", "--no-ext-diff", f"{base}..{head}"], repo)


def add_worktree(repo: Path, commit: str, dest: Path) -> Path:
    if dest.exists():
        git(["worktree", "remove", "--force", str(dest)], repo, check=False)
        shutil.rmtree(dest, ignore_errors=True)
    git(["worktree", "add", "-q", "--detach", str(dest), commit], repo)
    return dest


def apply_patch(worktree: Path, patch: str) -> None:
    if patch.strip():
        git(["apply", "--whitespace=nowarn", "-"], worktree, input_text=patch)
