"""The repository as a stage sees it: one object, every access confined (DESIGN.md 9, 13).

A `Workspace` is a work tree (the run's worktree) and the commit it started
from. Stages and the model's tools read, search, list, diff, edit and run
commands only through it, so confinement (no path outside the tree, into
`.git/` or through a symlink that leaves it), the clean command environment
and the caps on what is read live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from anvil.workspace import gitops
from anvil.workspace.confine import EditRefused, confined_path, normalize_rel
from anvil.workspace.editblocks import EditBlock
from anvil.workspace.edits import EditReport, apply_edits
from anvil.workspace.testrun import CommandResult, default_source_roots, run_command

SEARCH_MAX_HITS = 200


class WorkspaceError(Exception):
    """A read the workspace cannot do (missing, outside the tree, not text). The message is for the model."""


@dataclass(frozen=True)
class FileText:
    """A slice of a file: `lines` are start..end (1-based, inclusive) of `total` lines."""

    path: str
    start: int
    end: int
    total: int
    lines: tuple[str, ...]

    def numbered(self) -> str:
        width = len(str(self.end))
        return "\n".join(f"{n:>{width}}| {line}" for n, line in enumerate(self.lines, self.start))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class SearchHit:
    path: str
    line: int
    text: str


class Workspace:
    """A confined view of one work tree at `root`, started from commit `base`."""

    def __init__(self, root: Path, base: str) -> None:
        self.root = Path(root)
        self.base = base

    # ------------------------------------------------------------- reading

    def path(self, rel: str) -> Path:
        """The absolute path of `rel`, refused (`EditRefused`) when it leaves the tree or enters `.git/`."""
        return confined_path(self.root, rel)

    def exists(self, rel: str) -> bool:
        try:
            return self.path(rel).is_file()
        except EditRefused:
            return False

    def read_text(self, rel: str) -> str:
        try:
            path = self.path(rel)
        except EditRefused as exc:
            raise WorkspaceError(f"{rel}: {exc}") from None
        if not path.is_file():
            raise WorkspaceError(f"{rel}: no such file")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise WorkspaceError(f"{rel}: not a UTF-8 text file") from None
        except OSError as exc:
            raise WorkspaceError(f"{rel}: {exc.strerror or exc}") from None

    def read(self, rel: str, start: int = 1, end: int | None = None) -> FileText:
        """Lines `start`..`end` (1-based, inclusive; clamped to the file) of `rel`."""
        lines = self.read_text(rel).splitlines()
        total = len(lines)
        start = max(1, start)
        end = total if end is None else min(end, total)
        return FileText(normalize_rel(rel), start, max(end, start - 1), total, tuple(lines[start - 1:end]))

    def files(self) -> list[str]:
        """Tracked files plus new untracked ones (not ignored), sorted, POSIX relative paths."""
        out = gitops.git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], self.root,
                         check=False).stdout
        return sorted({p for p in out.split("\0") if p})

    def list_dir(self, rel: str = "") -> list[str]:
        """The entries directly under `rel` (folders end with `/`), from the files git sees."""
        prefix = normalize_rel(rel).rstrip("/") + "/" if rel.strip("./") else ""
        entries: set[str] = set()
        for f in self.files():
            if not f.startswith(prefix):
                continue
            head, sep, _ = f[len(prefix):].partition("/")
            entries.add(head + ("/" if sep else ""))
        return sorted(entries)

    def search(self, pattern: str, *, regex: bool = False, paths: Sequence[str] = (),
               max_hits: int = SEARCH_MAX_HITS) -> list[SearchHit]:
        """Lines matching `pattern` (a literal, or a Python regex with `regex=True`) in the files git sees."""
        rx = re.compile(pattern if regex else re.escape(pattern))
        hits: list[SearchHit] = []
        wanted = [normalize_rel(p).rstrip("/") for p in paths]
        for rel in self.files():
            if wanted and not any(rel == w or rel.startswith(w + "/") for w in wanted):
                continue
            try:
                text = self.read_text(rel)
            except WorkspaceError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if rx.search(line):
                    hits.append(SearchHit(rel, n, line))
                    if len(hits) >= max_hits:
                        return hits
        return hits

    # ------------------------------------------------------------- changes

    def diff(self, *, stat: bool = False) -> str:
        return gitops.diff(self.root, self.base, stat=stat)

    def changed_files(self) -> list[str]:
        return gitops.changed_files(self.root, self.base)

    def apply(self, blocks: Iterable[EditBlock]) -> EditReport:
        """Apply edit blocks through confinement; the report says what applied, failed or was refused."""
        return apply_edits(self.root, blocks)

    def revert(self, paths: Iterable[str]) -> None:
        """Put `paths` back as they are at the base commit (a file new since then is removed)."""
        for rel in paths:
            path = self.path(rel)
            known = gitops.git(["cat-file", "-e", f"{self.base}:{normalize_rel(rel)}"], self.root, check=False)
            if known.returncode == 0:
                gitops.git(["checkout", self.base, "--", normalize_rel(rel)], self.root)
            elif path.is_file() or path.is_symlink():
                path.unlink()

    # ------------------------------------------------------------- commands

    def run(self, command: str, *, timeout: float, log_path: Path | None = None,
            env: Mapping[str, str] | None = None) -> CommandResult:
        """A shell command in the tree, with a timeout, its process group killed after, and a clean environment."""
        return run_command(command, self.root, timeout, source_roots=default_source_roots(self.root),
                           log_path=log_path, env=env)
