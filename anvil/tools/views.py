"""Views of repository files that fit a prompt, and say what they leave out (DESIGN.md 13).

A file the stage must change is always in its first message: whole when it
fits the per-file share (its path on a line, then the file fenced); otherwise its outline (symbols with line ranges) and
numbered windows around the symbols and lines the plan names. A file only to
read is whole when it fits what is left, else its outline. Whatever is not
shown is listed by name, with the tool that reads it (or, for a model without
tools, the fact that it cannot be quoted). Nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from anvil.tools.read import numbered, outline_lines
from anvil.workspace.workspace import Workspace, WorkspaceError

WHOLE_FILE_CHARS = 24_000  # a file up to this size is shown whole
TOTAL_CHARS = 80_000  # all file views of one message
CONTEXT_LINES = 12  # lines shown around a named symbol or line
HEAD_LINES = 60  # a big file with nothing named: its first lines
_RANGE = re.compile(r"^\s*L?(\d+)\s*(?:[-:–]\s*L?(\d+))?\s*$")


@dataclass(frozen=True)
class Target:
    """A file the view must show, and what in it the plan named."""

    path: str
    change: bool = True  # False: a file to read only
    symbols: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()  # "120", "120-140"


@dataclass
class FileView:
    path: str
    text: str  # the prompt block ("" when nothing could be shown)
    whole: bool
    total_lines: int = 0
    shown: list[tuple[int, int]] = field(default_factory=list)  # line ranges shown (whole: [(1, n)])
    missing: str = ""  # why nothing is shown (missing file, not text)
    unmatched: list[str] = field(default_factory=list)  # named symbols / lines not found

    def left_out(self) -> list[tuple[int, int]]:
        if self.whole or not self.total_lines:
            return []
        out, at = [], 1
        for s, e in self.shown:
            if s > at:
                out.append((at, s - 1))
            at = max(at, e + 1)
        if at <= self.total_lines:
            out.append((at, self.total_lines))
        return out


def parse_ranges(items: Sequence[str | int], total: int) -> tuple[list[tuple[int, int]], list[str]]:
    ranges, bad = [], []
    for item in items:
        m = _RANGE.match(str(item))
        if not m:
            bad.append(str(item))
            continue
        s = int(m.group(1))
        e = int(m.group(2) or s)
        s, e = min(s, e), max(s, e)
        if s > total:
            bad.append(str(item))
            continue
        ranges.append((max(1, s), min(total, e)))
    return ranges, bad


def symbol_ranges(path: str, text: str, symbols: Sequence[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """Line ranges of the named symbols (`name`, `Class.name`, or a suffix of a dotted name)."""
    from anvil.retrieval.chunking import chunk_text

    chunks = [c for c in chunk_text(path, text).chunks if c.symbol]
    found, missing = [], []
    for name in symbols:
        want = name.strip().rstrip("()").replace("::", ".")
        hits = [c for c in chunks if c.symbol == want or c.symbol.endswith("." + want)]
        if not hits:  # a class: its methods' chunks start with "Class."
            hits = [c for c in chunks if c.symbol.startswith(want + ".")]
        if not hits:
            missing.append(name)
            continue
        found.append((min(c.start_line for c in hits), max(c.end_line for c in hits)))
    return found, missing


def _merge(ranges: list[tuple[int, int]], total: int, context: int) -> list[tuple[int, int]]:
    spans = sorted((max(1, s - context), min(total, e + context)) for s, e in ranges)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def file_view(ws: Workspace, target: Target, *, whole_chars: int = WHOLE_FILE_CHARS,
              window_chars: int = WHOLE_FILE_CHARS, context: int = CONTEXT_LINES,
              outline_only: bool = False) -> FileView:
    """The view of one file (see the module docstring)."""
    try:
        text = ws.read_text(target.path)
    except WorkspaceError as exc:
        return FileView(target.path, "", False, missing=str(exc))
    lines = text.splitlines()
    total = len(lines)
    if len(text) <= whole_chars and not outline_only:
        # The path on its own line, then the whole file fenced: the form every prompt has used.
        return FileView(target.path, f"{target.path}\n```\n{text.rstrip(chr(10))}\n```",
                        True, total, [(1, total)] if total else [])
    rows = outline_lines(target.path, text)
    head = f"{target.path} ({total} lines, {len(text):,} characters: too big to show whole)"
    parts = [head]
    if rows:
        parts.append("Outline (lines, kind, symbol):\n```\n" + "\n".join(rows[:200])
                     + (f"\n... {len(rows) - 200} more symbols (outline tool)" if len(rows) > 200 else "") + "\n```")
    if outline_only:
        return FileView(target.path, "\n".join(parts), False, total, [])
    wanted, unmatched = symbol_ranges(target.path, text, target.symbols) if target.symbols else ([], [])
    by_line, bad = parse_ranges(target.lines, total)
    wanted += by_line
    unmatched += bad
    if not wanted:
        wanted = [(1, min(total, HEAD_LINES))]
    spans = _merge(wanted, total, context)
    width = max(4, len(str(total)))
    shown: list[tuple[int, int]] = []
    used = 0
    for s, e in spans:
        block = numbered(lines[s - 1:e], s, width)
        size = sum(len(x) + 1 for x in block)
        if used + size > window_chars:
            room = window_chars - used
            keep = []
            for row in block:  # as much of this window as fits
                if room - len(row) - 1 < 0:
                    break
                keep.append(row)
                room -= len(row) + 1
            if keep:
                shown.append((s, s + len(keep) - 1))
                parts.append(f"Lines {s}-{s + len(keep) - 1}:\n```\n" + "\n".join(keep) + "\n```")
            break
        shown.append((s, e))
        used += size
        parts.append(f"Lines {s}-{e}:\n```\n" + "\n".join(block) + "\n```")
    if unmatched:
        parts.append(f"(named in the plan but not found in the file: {', '.join(unmatched)})")
    return FileView(target.path, "\n".join(parts), False, total, shown, unmatched=unmatched)


def _ranges_text(ranges: list[tuple[int, int]]) -> str:
    return ", ".join(f"{s}-{e}" if e > s else str(s) for s, e in ranges)


@dataclass
class ViewSet:
    text: str
    views: list[FileView]
    not_shown: list[str]  # files with nothing shown (budget), by path

    def stats(self) -> dict[str, object]:
        return {"whole": [v.path for v in self.views if v.whole],
                "windows": {v.path: _ranges_text(v.shown) for v in self.views if not v.whole and v.shown},
                "outline_only": [v.path for v in self.views if not v.whole and not v.shown and not v.missing],
                "missing": [v.path for v in self.views if v.missing], "not_shown": self.not_shown,
                "chars": len(self.text)}


def files_view(ws: Workspace, targets: Sequence[Target], *, total_chars: int = TOTAL_CHARS,
               whole_chars: int = WHOLE_FILE_CHARS, tools: bool = True) -> ViewSet:
    """The views of `targets` (files to change first) within `total_chars`, and the list of what is left out."""
    seen: set[str] = set()
    ordered = [t for t in targets if t.change] + [t for t in targets if not t.change]
    views: list[FileView] = []
    not_shown: list[str] = []
    used = 0
    n_change = sum(1 for t in ordered if t.change)
    for t in ordered:
        if t.path in seen:
            continue
        seen.add(t.path)
        left = total_chars - used
        if t.change:
            # Every file to change gets a share of what is left, whole when it fits.
            share = max(4_000, left // max(1, n_change))
            n_change -= 1
            view = file_view(ws, t, whole_chars=min(whole_chars, share), window_chars=share)
        else:
            view = file_view(ws, t, whole_chars=min(whole_chars, left))
            if not view.whole and not view.missing:
                view = file_view(ws, t, outline_only=True)
            if len(view.text) > left:
                not_shown.append(t.path)
                continue
        views.append(view)
        used += len(view.text)
    read = 'read_file {"path": ..., "start": N, "end": M}'
    notes = []
    for v in views:
        if v.missing:
            notes.append(f"- {v.path}: {v.missing}")
        elif v.left_out():
            notes.append(f"- {v.path}: lines {_ranges_text(v.left_out())} not shown")
    notes += [f"- {p}: not shown (no room in this message)" for p in not_shown]
    blocks = [v.text for v in views if v.text]
    if notes:
        how = (f"Read any of it with {read} (or outline / search) before you change it."
               if tools else "You cannot read them in this step: quote only lines shown above; "
                             "an edit to lines you have not seen will be refused.")
        blocks.append("Not shown in this message:\n" + "\n".join(notes) + "\n" + how)
    return ViewSet("\n\n".join(blocks), views, not_shown)
