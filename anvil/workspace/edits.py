"""Search/replace edit blocks: parse a model's answer, apply it to a tree (DESIGN.md 9).

The build prompt asks for blocks like::

    src/pkg/cli.py
    ```python
    <<<<<<< SEARCH
    def main():
    =======
    def main(argv=None):
    >>>>>>> REPLACE
    ```

An empty SEARCH creates a new file with REPLACE as its content. Matching is
tried exact, then whitespace-tolerant (indentation shifted consistently,
trailing whitespace ignored), then fuzzy (difflib ratio over line windows,
above `threshold`). A block that fails is reported with the closest lines and
their similarity so the next prompt can correct it; blocks that applied stay
applied. Every path goes through `confined_path`; each file is written
atomically.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from anvil.workspace.confine import EditRefused, confined_path, normalize_rel
from anvil.workspace.editblocks import EditBlock, parse_edit_blocks

__all__ = ["DEFAULT_THRESHOLD", "AppliedEdit", "EditBlock", "EditReport", "FailedEdit", "RefusedEdit",
           "apply_edits", "parse_edit_blocks"]

DEFAULT_THRESHOLD = 0.85

@dataclass
class AppliedEdit:
    block: EditBlock
    how: str  # exact / whitespace / fuzzy / create
    similarity: float = 1.0
    start_line: int = 1  # 1-based line in the file before this edit


@dataclass
class FailedEdit:
    block: EditBlock
    reason: str
    closest: str = ""
    closest_start: int | None = None  # 1-based
    similarity: float = 0.0


@dataclass
class RefusedEdit:
    block: EditBlock
    reason: str


@dataclass
class EditReport:
    applied: list[AppliedEdit] = field(default_factory=list)
    failed: list[FailedEdit] = field(default_factory=list)
    refused: list[RefusedEdit] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.refused

    def feedback(self) -> str:
        """What went wrong, written for the model that will try again."""
        if self.ok:
            return ""
        total = len(self.applied) + len(self.failed) + len(self.refused)
        out = [f"{len(self.applied)} of {total} edit block(s) applied; the rest need fixing. "
               "Blocks that applied are already in the files: do not repeat them."]
        for r in self.refused:
            out.append(f"\n## Block {r.block.index} ({r.block.path}): REFUSED\n{r.reason}. "
                       "Edit only files inside the repository (relative paths, never .git/).")
        for f in self.failed:
            out.append(f"\n## Block {f.block.index} ({f.block.path}): FAILED\n{f.reason}")
            if f.closest:
                end = (f.closest_start or 1) + f.closest.count("\n")
                out.append(f"The closest lines in {f.block.path} (lines {f.closest_start}-{end}, "
                           f"{f.similarity:.0%} similar) are:\n```\n{f.closest}\n```")
            if f.block.search.strip():
                out.append("Your SEARCH was:\n```\n" + f.block.search + "\n```")
        out.append("\nResend only the failed blocks, with SEARCH copied exactly from the current file.")
        return "\n".join(out)


# -- matching --------------------------------------------------------------

def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _find_all(hay: list[str], needle: list[str]) -> list[int]:
    n = len(needle)
    first = needle[0]
    return [i for i in range(len(hay) - n + 1) if hay[i] == first and hay[i:i + n] == needle]


def _reindent(replace: list[str], file_first: str, search_first: str) -> list[str] | None:
    """Shift `replace` by the indentation difference between the file and the SEARCH."""
    fi, si = _indent(file_first), _indent(search_first)
    ri = next((_indent(line) for line in replace if line.strip()), si)
    if fi == si or (ri == fi and ri != si):
        return list(replace)  # already in the file's frame
    if fi.endswith(si):
        add = fi[: len(fi) - len(si)]
        return [add + line if line.strip() else line for line in replace]
    if si.endswith(fi):
        cut = len(si) - len(fi)
        # remove up to `cut` columns; a line already less indented keeps what it has
        return [line[min(cut, len(_indent(line))):] if line.strip() else line for line in replace]
    return None


def _whitespace_match(hay: list[str], needle: list[str]) -> list[int]:
    n = len(needle)
    key = [s.strip() for s in needle]
    hits = []
    for i in range(len(hay) - n + 1):
        window = hay[i:i + n]
        if [s.strip() for s in window] != key:
            continue
        # the indentation must shift the same way on every non-blank line
        shifts = {(_indent(w), _indent(s)) for w, s in zip(window, needle, strict=False) if s.strip()}
        deltas: set[tuple[str, ...]] = set()
        for wi, si in shifts:
            if wi.endswith(si):
                deltas.add(("+", wi[: len(wi) - len(si)]))
            elif si.endswith(wi):
                deltas.add(("-", str(len(si) - len(wi))))
            else:
                deltas.add(("?", wi, si))
        if len(deltas) <= 1 and not any(d[0] == "?" for d in deltas):
            hits.append(i)
    return hits


def _best_window(hay: list[str], needle: list[str]) -> tuple[float, int, int]:
    """(ratio, start, length) of the file window most like `needle` (lengths n-1..n+1)."""
    target = "\n".join(s.strip() for s in needle)
    stripped = [s.strip() for s in hay]
    best = (0.0, 0, 0)
    n = len(needle)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for length in sorted({max(1, n - 1), n, n + 1}, key=lambda x: abs(x - n)):
        for i in range(0, max(1, len(hay) - length + 1)):
            window = "\n".join(stripped[i:i + length])
            matcher.set_seq1(window)
            if matcher.real_quick_ratio() <= best[0] or matcher.quick_ratio() <= best[0]:
                continue
            r = matcher.ratio()
            if r > best[0]:
                best = (r, i, min(length, len(hay) - i))
    return best


def _rival(hay: list[str], needle: list[str], best: tuple[float, int, int], margin: float = 0.02) -> int | None:
    """The start of another window, not overlapping the best, about as similar: the match is ambiguous."""
    sim, start, length = best
    target = "\n".join(s.strip() for s in needle)
    stripped = [s.strip() for s in hay]
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    floor = sim - margin
    for i in range(0, max(1, len(hay) - length + 1)):
        if start - length < i < start + length:
            continue
        matcher.set_seq1("\n".join(stripped[i:i + length]))
        if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor and matcher.ratio() >= floor:
            return i
    return None


def _as_lines(text: str) -> list[str]:
    """Text as lines; one final newline ends the last line rather than adding an empty one."""
    if not text:
        return []
    return (text[:-1] if text.endswith("\n") else text).split("\n")


class _Mismatch(Exception):
    def __init__(self, reason: str, closest: str = "", start: int | None = None, sim: float = 0.0) -> None:
        self.reason, self.closest, self.start, self.sim = reason, closest, start, sim


def _apply_one(lines: list[str], block: EditBlock, threshold: float) -> tuple[list[str], str, float, int]:
    search = _as_lines(block.search)
    replace = _as_lines(block.replace)
    hits = _find_all(lines, search)
    if len(hits) == 1:
        i = hits[0]
        return lines[:i] + replace + lines[i + len(search):], "exact", 1.0, i + 1
    if len(hits) > 1:
        raise _Mismatch(f"SEARCH matches {len(hits)} places (lines {', '.join(str(h + 1) for h in hits[:5])}); "
                        "include more surrounding lines so it matches exactly one")
    s_trim, r_trim = _trim_blank(search), _trim_blank(replace)
    hits = _whitespace_match(lines, s_trim)
    if len(hits) > 1:
        raise _Mismatch(f"SEARCH matches {len(hits)} places (ignoring whitespace); "
                        "include more lines to make it unique")
    if len(hits) == 1:
        i = hits[0]
        first = next(k for k, s in enumerate(s_trim) if s.strip())
        new = _reindent(r_trim, lines[i + first], s_trim[first])
        if new is not None:
            return lines[:i] + new + lines[i + len(s_trim):], "whitespace", 1.0, i + 1
    sim, start, length = _best_window(lines, s_trim)
    closest = "\n".join(lines[start:start + length])
    if sim >= threshold and length:
        other = _rival(lines, s_trim, (sim, start, length))
        if other is not None:
            raise _Mismatch(f"SEARCH is not exact and looks like lines {start + 1} and {other + 1} equally "
                            f"({sim:.0%}); quote the lines exactly, with enough context to be unique",
                            closest, start + 1, sim)
        window = lines[start:start + length]
        f_first = next((w for w in window if w.strip()), "")
        s_first = next((s for s in s_trim if s.strip()), "")
        new = _reindent(r_trim, f_first, s_first)
        return lines[:start] + (new if new is not None else r_trim) + lines[start + length:], "fuzzy", sim, start + 1
    raise _Mismatch(f"SEARCH not found in {block.path} (best match {sim:.0%}, need {threshold:.0%})",
                    closest, start + 1 if closest else None, sim)


# -- applying --------------------------------------------------------------

def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".anvil-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_SKIP_DIRS = {".git", ".anvil", "node_modules", "__pycache__", ".venv", "venv", "target", "dist", "build"}


def _did_you_mean(root: Path, rel: str, limit: int = 20000) -> str:
    """`(did you mean src/pkg/cli.py?)` when files with the same name exist elsewhere in the tree."""
    name = rel.rsplit("/", 1)[-1]
    found: list[str] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        seen += len(filenames)
        if name in filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
        if seen > limit or len(found) > 3:
            break
    return f" (did you mean {' or '.join(sorted(found)[:3])}?)" if found else ""


def apply_edits(root: Path, blocks: Iterable[EditBlock], *, threshold: float = DEFAULT_THRESHOLD) -> EditReport:
    """Apply `blocks` in order under `root`; see the module docstring for the rules."""
    report = EditReport()
    root = Path(root)
    # per file: (real path, lines, had final newline, CRLF, existed, dirty)
    files: dict[str, dict] = {}
    for block in blocks:
        if block.error:
            report.failed.append(FailedEdit(block, block.error))
            continue
        try:
            rel = normalize_rel(block.path)
            real = confined_path(root, rel)
        except EditRefused as exc:
            report.refused.append(RefusedEdit(block, exc.reason))
            continue
        block.path = rel
        st = files.get(rel)
        if st is None:
            if real.is_dir():
                report.failed.append(FailedEdit(block, f"{rel} is a directory"))
                continue
            st = {"real": real, "exists": real.is_file(), "lines": [], "nl": True, "crlf": False, "dirty": False}
            if st["exists"]:
                try:
                    raw = real.read_bytes().decode("utf-8")
                    st["orig"] = raw
                except UnicodeDecodeError:
                    report.failed.append(FailedEdit(block, f"{rel} is not a UTF-8 text file; it cannot be edited"))
                    continue
                st["crlf"] = "\r\n" in raw
                text = raw.replace("\r\n", "\n")
                st["nl"] = text.endswith("\n") or not text
                st["lines"] = text[:-1].split("\n") if text.endswith("\n") else (text.split("\n") if text else [])
            files[rel] = st
        if block.creates_file:
            if st["exists"] and any(s.strip() for s in st["lines"]):
                report.failed.append(FailedEdit(block, f"{rel} already exists; an empty SEARCH only creates new "
                                                       "files. Quote the lines to change in SEARCH"))
                continue
            body = block.replace
            st["lines"] = body[:-1].split("\n") if body.endswith("\n") else body.split("\n")
            st["nl"], st["dirty"] = True, True
            report.applied.append(AppliedEdit(block, "create"))
            continue
        if not st["exists"] and not st["dirty"]:
            report.failed.append(FailedEdit(block, f"{rel} does not exist{_did_you_mean(root, rel)}; "
                                                   "to create it use an empty SEARCH"))
            continue
        try:
            new_lines, how, sim, start = _apply_one(st["lines"], block, threshold)
        except _Mismatch as m:
            report.failed.append(FailedEdit(block, m.reason, m.closest, m.start, m.sim))
            continue
        st["lines"], st["dirty"] = new_lines, True
        report.applied.append(AppliedEdit(block, how, sim, start))
    for rel, st in files.items():
        if not st["dirty"]:
            continue
        text = "\n".join(st["lines"])
        if st["nl"] and st["lines"]:
            text += "\n"
        if st["crlf"]:
            text = text.replace("\n", "\r\n")
        if st.get("orig") == text:
            continue
        _atomic_write_text(st["real"], text)
        report.changed_files.append(rel)
    return report
