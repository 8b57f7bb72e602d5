"""Spare worktrees: a finished run's checkout, cleaned and kept for the next run.

`git worktree add` writes every tracked file (on a 20,000-file repository about
4 s of CPU, nearly all of it the kernel creating files), and `git worktree
remove` deletes them all again. A run that ends parks its worktree instead:
reset to its commit, every untracked and ignored file removed (`clean -ffdx`,
so nothing a model or a test left behind reaches the next run), HEAD detached,
and the folder moved to `<repo>/.anvil/worktrees/spare-*`. The next run takes
a spare by moving it into place (a rename: of two racing runs only one gets
it) and checks out its own branch there, which rewrites only the files that
differ between the two commits.

How many spares a repository keeps is the user's `git.spare_worktrees` in
`$ANVIL_HOME/config.yaml` (default 1; 0 parks nothing). `anvil clean` removes
them.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from anvil.workspace import gitops

SPARES_DIR = Path(".anvil") / "worktrees"


def spares_dir(repo_root: Path) -> Path:
    return Path(repo_root) / SPARES_DIR


def _registered(repo_root: Path) -> set[Path]:
    """The worktrees git knows of (a spare folder git forgot is not a worktree any more)."""
    out = gitops.git(["worktree", "list", "--porcelain"], repo_root, check=False).stdout
    return {Path(line[len("worktree "):]).resolve() for line in out.splitlines() if line.startswith("worktree ")}


def spares(repo_root: Path) -> list[Path]:
    """The parked worktrees of this repository, oldest name first."""
    folder = spares_dir(repo_root)
    if not folder.is_dir():
        return []
    known = _registered(repo_root)
    return sorted(p for p in folder.iterdir() if p.name.startswith("spare-") and p.resolve() in known)


def park(repo_root: Path, worktree: Path, keep: int) -> bool:
    """Clean `worktree` and keep it as a spare; False (and nothing changed) when the pool is full or off."""
    worktree = Path(worktree)
    if keep <= 0 or not (worktree / ".git").exists() or len(spares(repo_root)) >= keep:
        return False
    try:
        gitops.git(["reset", "--hard", "--quiet"], worktree)
        gitops.git(["clean", "-ffdxq"], worktree)
        gitops.git(["checkout", "--quiet", "--detach"], worktree)
        dest = spares_dir(repo_root) / f"spare-{uuid.uuid4().hex[:12]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        ignore = dest.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")  # never in the user's `git status`
        gitops.git(["worktree", "move", str(worktree), str(dest)], repo_root)
    except gitops.GitError:
        return False  # the caller removes it as before
    return True


def take(repo_root: Path, path: Path) -> bool:
    """Move a spare to `path` (which must not exist); False when there is none to take."""
    for spare in spares(repo_root):
        if gitops.git(["worktree", "move", str(spare), str(path)], repo_root, check=False).returncode == 0:
            return True  # another run that moved it first made ours fail: try the next one
    return False


def checkout_detached(path: Path, base_sha: str) -> None:
    gitops.git(["checkout", "--quiet", "--detach", base_sha], path)


def remove_all(repo_root: Path) -> list[Path]:
    """Remove every spare (`anvil clean`); returns what was removed."""
    removed = []
    for spare in spares(repo_root):
        gitops.git(["worktree", "remove", "--force", str(spare)], repo_root, check=False)
        shutil.rmtree(spare, ignore_errors=True)
        removed.append(spare)
    gitops.git(["worktree", "prune"], repo_root, check=False)
    return removed
