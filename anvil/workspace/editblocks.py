"""Parse search/replace edit blocks out of a model's answer.

The format the build prompt asks for: a path line, then `<<<<<<< SEARCH`,
the lines to find, `=======`, the lines to put instead, `>>>>>>> REPLACE`,
optionally inside a ``` fence. An empty SEARCH creates a new file. Malformed
blocks come back with `.error` set so the model is told what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BACKTICKED = re.compile(r"`([^`\s]+)`")


@dataclass
class EditBlock:
    path: str
    search: str
    replace: str
    index: int = 0  # 1-based position in the answer, for messages
    error: str | None = None  # set when the block itself is malformed

    @property
    def creates_file(self) -> bool:
        return not self.search.strip()


def _path_from_line(line: str) -> str | None:
    text = line.strip()
    if not text or _FENCE.match(text) or _REPLACE.match(text) or _DIVIDER.match(text):
        return None
    m = _BACKTICKED.search(text)
    if m:
        return m.group(1)
    text = text.lstrip("#").strip().strip("*").strip()
    for prefix in ("file:", "path:", "filename:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):].strip()
    text = text.rstrip(":").strip().strip("*`'\"").strip()
    if text and not any(c.isspace() for c in text):
        return text
    tokens = [t.strip("`'\"*:,()") for t in text.split()]
    pathish = [t for t in tokens if "/" in t or re.search(r"\.[A-Za-z0-9]+$", t)]
    return pathish[-1] if pathish else None


def _find_path(lines: list[str], i: int) -> str | None:
    """The file name written just above the SEARCH marker at line `i` (skipping a fence opener)."""
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j >= 0 and _FENCE.match(lines[j]):
        # "```python path/x.py" or a bare fence with the name on the line above
        after = _FENCE.sub("", lines[j]).strip().split()
        if len(after) >= 2:
            return _path_from_line(after[-1])
        j -= 1
        while j >= 0 and not lines[j].strip():
            j -= 1
    if j < 0 or _REPLACE.match(lines[j]) or _FENCE.match(lines[j]):
        return None
    return _path_from_line(lines[j])


def parse_edit_blocks(text: str) -> list[EditBlock]:
    """Every SEARCH/REPLACE block in `text`; malformed ones come back with `.error` set."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[EditBlock] = []
    prev_path: str | None = None
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        path = _find_path(lines, i) or prev_path
        index = len(blocks) + 1
        j = i + 1
        search: list[str] = []
        while j < len(lines) and not _DIVIDER.match(lines[j]) and not _SEARCH.match(lines[j]):
            search.append(lines[j])
            j += 1
        if j >= len(lines) or not _DIVIDER.match(lines[j]):
            blocks.append(EditBlock(path or "?", "\n".join(search), "", index,
                                    error="block has no ======= divider after SEARCH"))
            i = j
            continue
        j += 1
        replace: list[str] = []
        while j < len(lines) and not _REPLACE.match(lines[j]) and not _SEARCH.match(lines[j]):
            replace.append(lines[j])
            j += 1
        if j >= len(lines) or not _REPLACE.match(lines[j]):
            blocks.append(EditBlock(path or "?", "\n".join(search), "\n".join(replace), index,
                                    error="block is not closed by >>>>>>> REPLACE"))
            i = j
            continue
        error = None if path else "no file path above <<<<<<< SEARCH (put the path on its own line)"
        blocks.append(EditBlock(path or "?", "\n".join(search), "\n".join(replace), index, error=error))
        prev_path = path or prev_path
        i = j + 1
    return blocks
