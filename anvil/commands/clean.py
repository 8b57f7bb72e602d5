"""`anvil clean` and `anvil runs rm RUN`: remove what runs left behind.

A failed, interrupted or budget-stopped run leaves a worktree, a branch
`anvil/...` and its run folder. `clean` removes those (with `--dry-run` it
only says what it would remove); `--all` also removes the folders (and any
leftover worktree) of finished runs, whose branches hold shipped work and stay.
`runs rm RUN` removes one run of any finished status. A running run is never
touched. Ledger rows stay either way: money spent stays counted.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.errors import NotARepoError, UserError

if TYPE_CHECKING:
    from anvil.run.store import Run

LEFTOVER = ("failed", "interrupted", "budget_stopped")


@dataclass
class Removal:
    run_id: str
    status: str
    worktree: str | None = None
    branch: str | None = None
    folder: str | None = None
    kept: list[str] = field(default_factory=list)  # what stays, and why


def plan_removal(repo_root: Path, run: Run) -> Removal:
    """What removing `run` takes away; a shipped branch (or a run's own base branch) is kept."""
    from anvil.workspace import gitops

    st = run.state
    status = st.effective_status()
    out = Removal(run.id, status, folder=str(run.dir))
    if st.worktree and Path(st.worktree).exists():
        out.worktree = st.worktree
    branch = st.branch
    if branch and gitops.git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], repo_root,
                             check=False).returncode == 0:
        if status == "done" and st.stage("ship").data.get("sha"):
            out.kept.append(f"branch {branch} (it holds the run's shipped commit)")
        elif not branch.startswith("anvil/"):
            out.kept.append(f"branch {branch} (not one anvil created)")
        else:
            out.branch = branch
    return out


def apply_removal(repo_root: Path, r: Removal) -> None:
    from anvil.workspace import gitops

    if r.worktree:
        gitops.remove_worktree(repo_root, Path(r.worktree))
    if r.branch:
        res = gitops.git(["branch", "-D", r.branch], repo_root, check=False)
        if res.returncode != 0:
            r.kept.append(f"branch {r.branch} ({res.stderr.strip() or 'git branch -D failed'})")
            r.branch = None
    if r.folder:
        shutil.rmtree(r.folder, ignore_errors=True)
    gitops.git(["worktree", "prune"], repo_root, check=False)


def _describe(r: Removal, dry_run: bool) -> str:
    parts = [p for p in (r.worktree and f"worktree {r.worktree}", r.branch and f"branch {r.branch}",
                         r.folder and f"folder {r.folder}") if p]
    verb = "would remove" if dry_run else "removed"
    line = f"{r.run_id} [{r.status}]: {verb} {', '.join(parts) or 'nothing'}"
    return line + "".join(f"\n  kept {k}" for k in r.kept)


def _confirm(text: str) -> bool:
    if not sys.stdin.isatty():
        return True  # the user named the run; a script cannot answer a prompt
    import click

    return click.confirm(text, default=False)


def run(action: str, run_id: str | None = None, yes: bool = False, dry_run: bool = False,
        all_runs: bool = False, json_output: bool = False) -> int:
    from anvil.paths import find_repo_root
    from anvil.run.store import RunStore

    root = find_repo_root()
    if root is None:
        raise NotARepoError(f"`anvil {'runs rm' if action == 'rm' else 'clean'}`")
    store = RunStore(root)
    if action == "rm":
        assert run_id is not None
        run = store.load(run_id)
        status = run.state.effective_status()
        if status == "running":
            raise UserError(f"run {run.id} is still running (process {run.state.pid})",
                            hint="stop it first (Ctrl-C in its terminal), then remove it")
        plans = [plan_removal(root, run)]
        if not yes and not _confirm(f"remove run {run.id} ({status}: {run.state.request[:60]})?"):
            raise UserError("nothing removed", hint=f"anvil runs rm {run.id} --yes")
    else:
        plans = []
        for rid in store.ids():
            try:
                run = store.load(rid)
            except UserError:
                continue  # an unreadable folder: `anvil runs` skips it too
            status = run.state.effective_status()
            if status in LEFTOVER or (all_runs and status == "done"):
                plans.append(plan_removal(root, run))
    from anvil.workspace import spares

    # the spare worktrees kept for the next run (git.spare_worktrees) go with --all: they are disk, not work
    spare = [str(p) for p in spares.spares(root)] if action != "rm" and all_runs else []
    if not dry_run:
        for r in plans:
            apply_removal(root, r)
        if spare:
            spares.remove_all(root)
    if json_output:
        from anvil.ui.output import print_json

        print_json({"dry_run": dry_run, "removed" if not dry_run else "would_remove": [asdict(r) for r in plans],
                    "spare_worktrees": spare})
        return 0
    for r in plans:
        print(_describe(r, dry_run))
    for s in spare:
        print(f"spare worktree: {'would remove' if dry_run else 'removed'} {s}")
    if not plans and not spare:
        print("nothing to clean: no failed, interrupted or stopped runs" + ("" if all_runs else
              " (finished runs stay unless --all)"), file=sys.stderr)
    elif dry_run:
        print("dry run: nothing was removed; run `anvil clean` to remove it", file=sys.stderr)
    return 0
