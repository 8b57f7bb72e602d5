"""Unified diffs as data: which files a patch touches, and its hunks.

The oracle turns the gold patch's hunks into edits; `--verify diff` uses the file list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    old_start: int  # 1-based line in the old file
    old_len: int
    lines: list[str] = field(default_factory=list)  # " x", "-x", "+x" (no newline)

    @property
    def old_text(self) -> str:
        return "".join(line[1:] + "\n" for line in self.lines if line[:1] in (" ", "-"))

    @property
    def new_text(self) -> str:
        return "".join(line[1:] + "\n" for line in self.lines if line[:1] in (" ", "+"))


@dataclass
class FilePatch:
    path: str  # the new path ('' when the file is deleted)
    old_path: str  # '' when the file is created
    hunks: list[Hunk] = field(default_factory=list)
    text: str = ""  # this file's part of the patch, verbatim

    @property
    def created(self) -> bool:
        return not self.old_path

    @property
    def deleted(self) -> bool:
        return not self.path


def _strip_prefix(name: str) -> str:
    name = name.split("\t", 1)[0].strip()
    if name == "/dev/null":
        return ""
    return name[2:] if name[:2] in ("a/", "b/") else name


def parse_patch(text: str) -> list[FilePatch]:
    """The files of a `git diff` style patch, in order."""
    files: list[FilePatch] = []
    cur: FilePatch | None = None
    hunk: Hunk | None = None
    chunk: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("diff --git "):
            if cur is not None:
                cur.text = "\n".join(chunk) + "\n"
            parts = raw.split(" ")
            cur = FilePatch(_strip_prefix(parts[-1]), _strip_prefix(parts[-2]))
            files.append(cur)
            hunk, chunk = None, [raw]
            continue
        chunk.append(raw)
        if cur is None:
            continue
        if raw.startswith("--- ") and hunk is None:
            cur.old_path = _strip_prefix(raw[4:])
        elif raw.startswith("+++ ") and hunk is None:
            cur.path = _strip_prefix(raw[4:])
        elif (m := _HUNK.match(raw)) is not None:
            hunk = Hunk(int(m.group(1)), int(m.group(2) or 1))
            cur.hunks.append(hunk)
        elif hunk is not None and raw[:1] in (" ", "-", "+"):
            hunk.lines.append(raw)
        elif hunk is not None and raw == "":
            hunk.lines.append(" ")  # a context line whose single space an editor stripped
    if cur is not None:
        cur.text = "\n".join(chunk) + "\n"
    return files


def patch_files(text: str) -> list[str]:
    return [f.path or f.old_path for f in parse_patch(text)]
