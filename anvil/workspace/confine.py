"""Keep model-chosen paths inside the repository (DESIGN.md 9).

A path in a model's answer is hostile input. `confined_path` accepts only a
relative path that stays under `root` lexically *and* after following every
symlink, and never reaches into `.git` (hooks and config there would run code
on the user's machine) or `.anvil` (the test command that judges the model's
work lives there).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


class EditRefused(Exception):
    """A path the pipeline will not write to; `reason` says why (for the model and the log)."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def normalize_rel(rel: str) -> str:
    """The clean relative POSIX form of `rel`, or EditRefused if it is not a safe relative path."""
    if not isinstance(rel, str) or not rel.strip():
        raise EditRefused("empty path", str(rel))
    if "\x00" in rel:
        raise EditRefused("path contains a NUL byte", rel)
    text = rel.strip().replace("\\", "/")
    if text.startswith("/") or text.startswith("~") or (len(text) > 1 and text[1] == ":"):
        raise EditRefused(f"absolute path {rel!r} is outside the repository", rel)
    parts: list[str] = []
    for part in PurePosixPath(text).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise EditRefused(f"path {rel!r} leaves the repository", rel)
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise EditRefused(f"path {rel!r} names the repository itself", rel)
    # Case-insensitive: `.GIT/config` is `.git/config` on macOS and Windows.
    if any(p.lower() == ".git" for p in parts):
        raise EditRefused(f"path {rel!r} is inside .git/", rel)
    # anvil's own settings and run state: a model must not rewrite the test
    # command that judges its work, nor another run's files.
    if parts[0].lower() == ".anvil":
        raise EditRefused(f"path {rel!r} is inside .anvil/ (anvil's own settings and runs)", rel)
    return "/".join(parts)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def confined_path(root: Path, rel: str) -> Path:
    """The real path for `rel` under `root`, or EditRefused.

    Every existing component is checked: a symlink (file or directory, at any
    depth) whose target resolves outside the tree, or into its `.git`, is
    refused. The returned path has its symlinks resolved, so writing to it
    never follows a link somewhere else.
    """
    clean = normalize_rel(rel)
    real_root = Path(os.path.realpath(root))
    git_dir = real_root / ".git"
    current = real_root
    for part in clean.split("/"):
        nxt = current / part
        if nxt.is_symlink():
            target = Path(os.path.realpath(nxt))
            if not _inside(target, real_root):
                raise EditRefused(f"path {rel!r} goes through a symlink that leaves the repository", rel)
            nxt = target
        current = nxt
    final = Path(os.path.realpath(current))
    if not _inside(final, real_root) or final == real_root:
        raise EditRefused(f"path {rel!r} leaves the repository", rel)
    if final == git_dir or _inside(final, git_dir):
        raise EditRefused(f"path {rel!r} is inside .git/", rel)
    return final
