"""Python's chunk structure from its lines, without a parse tree.

Parsing is most of a cold index's cost, and Python is most of the code anvil
indexes. The chunker only needs the top level and class bodies: where each
definition starts (its decorators and the comments just above it included)
and where it ends. That is a matter of indentation once strings, brackets and
comments are known, so one pass over the lines finds it at a fraction of
tree-sitter's cost, and gives the chunks tree-sitter's walk gives (the tests
compare the two on real files). Where the two could disagree (a line inside a
function's brackets written at or left of the ``def``) the code is not
idiomatic Python, and the chunks are still whole lines of the file.

A trailing comment goes where tree-sitter puts it: after a block's last
line, the comments indented at least as deep as the block's body belong to
it, up to the first one that is not; the rest belong to the enclosing level.
"""

from __future__ import annotations

import re

BLANK = -1
CONT = -3  # inside a string, brackets, or after a backslash: not a statement's first line
_COMMENT = -10  # a comment line at statement level is _COMMENT - indent

# Strings that close on their line, and a comment to the end of the line.
_CLOSED = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""' r"|'''(?:[^'\\]|\\.|'(?!''))*'''"
    r'|"(?:[^"\\\n]|\\.)*"' r"|'(?:[^'\\\n]|\\.)*'" r"|#.*"
)
_OPEN = re.compile(r'"""|\'\'\'|"|\'')
# Left to right on a line with a triple quote: a triple delimiter, a closed string, a comment, a lone quote.
_TOKEN = re.compile(r'"""|\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#.*|"|\'')
_DEF = re.compile(r"[ \t]*(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)")


def _escaped(line: str, at: int) -> bool:
    """An odd number of backslashes before ``at``: the quote there does not close the string."""
    b = at
    while b > 0 and line[b - 1] == "\\":
        b -= 1
    return (at - b) % 2 == 1


def _closing(line: str, delim: str, start: int = 0) -> int:
    """Where ``delim`` next closes a string in ``line`` from ``start`` (-1: not on this line)."""
    end = line.find(delim, start)
    while end > 0 and _escaped(line, end):
        end = line.find(delim, end + 1)
    return end


def _code_of(seg: str) -> tuple[str, str | None]:
    """The code of a line with a triple quote (strings and comments removed), and the delimiter
    of a triple-quoted string it leaves open."""
    code: list[str] = []
    pos = 0
    while True:
        m = _TOKEN.search(seg, pos)
        if m is None:
            code.append(seg[pos:])
            return "".join(code), None
        code.append(seg[pos : m.start()])
        tok = m.group(0)
        if tok[0] == "#":
            return "".join(code), None
        if len(tok) == 3 and tok in ('"""', "'''"):
            end = _closing(seg, tok, m.end())
            if end < 0:
                return "".join(code), tok
            pos = end + 3
        elif len(tok) == 1:  # a quote that does not close on this line: a backslash continues it below
            return "".join(code), (tok if seg.rstrip().endswith("\\") else None)
        else:
            pos = m.end()


def _trailing_comment(line: str, continued: bool) -> bool:
    """The line ends with a comment (outside strings); ``continued``: it began inside a string or brackets."""
    pos = 0
    if continued:  # start after the string that closes here, if one does
        pos = max(line.rfind('"""'), line.rfind("'''"))
        pos = pos + 3 if pos >= 0 else 0
    for m in _CLOSED.finditer(line, pos):
        if m.group(0)[0] == "#":
            return True
    return False


def classify(lines: list[str]) -> list[int]:
    """Per line: the indent of a statement's first line, or BLANK, CONT, or a comment's code."""
    out: list[int] = []
    append = out.append
    in_str: str | None = None  # the delimiter of a string left open by the line above
    depth = 0
    cont = False
    for line in lines:
        if in_str is not None:
            append(CONT)
            end = _closing(line, in_str)
            if end < 0:
                continue
            seg = line[end + len(in_str):]
            in_str = None
        elif depth > 0 or cont:
            if not line.strip():
                append(BLANK)
                continue
            append(CONT)
            seg = line
        else:
            stripped = line.lstrip()
            if not stripped:
                append(BLANK)
                continue
            if stripped[0] == "#":
                append(_COMMENT - (len(line) - len(stripped)))
                continue
            append(len(line) - len(stripped))
            seg = stripped
        if '"""' in seg or "'''" in seg:
            seg, in_str = _code_of(seg)
        elif '"' in seg or "'" in seg or "#" in seg:
            seg = _CLOSED.sub("", seg)  # no triple quote here: strings and a comment, removed in C
            m = _OPEN.search(seg)
            if m is not None:  # a string left open: continued by a backslash, it goes on below
                if seg.rstrip().endswith("\\"):
                    in_str = m.group(0)
                seg = seg[: m.start()]
        opened = seg.count("(") + seg.count("[") + seg.count("{")
        if opened or depth:  # at depth 0 a line that opens nothing stays at 0 (closers alone are clamped)
            depth += opened - seg.count(")") - seg.count("]") - seg.count("}")
            if depth < 0:
                depth = 0
        cont = "\\" in seg and seg.rstrip().endswith("\\")
    return out


class Scan:
    """The children of a level (the module, or a class body) as tree-sitter would list them."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.kinds = classify(lines)

    def extent(self, i: int, hi: int) -> tuple[int, int]:
        """(last line, body indent or -1) of the statement whose first line is ``i``."""
        kinds = self.kinds
        k = kinds[i]
        last, body, j = i, -1, i + 1
        while j < hi:
            v = kinds[j]
            if v >= 0:
                if v <= k:
                    break
                if body < 0:
                    body = v
                last = j
            elif v == CONT:
                last = j
            j += 1
        end = last
        if body >= 0:  # trailing comments indented to the body belong to the block
            for r in range(last + 1, j):
                v = kinds[r]
                if v == BLANK:
                    continue
                if v <= _COMMENT and _COMMENT - v >= body:
                    end = r
                else:
                    break
        return end, body

    def children(self, lo: int, hi: int) -> list[tuple[str, int, int, str, int]]:
        """(type, first line, last line, name, header line) of each child in lines lo..hi-1.

        type: "comment", "def", "class" or "statement"; a decorated definition starts at its first decorator.
        """
        kinds, lines = self.kinds, self.lines
        out: list[tuple[str, int, int, str, int]] = []
        i = lo
        while i < hi:
            v = kinds[i]
            if v == BLANK or v == CONT:
                i += 1
                continue
            if v <= _COMMENT:
                out.append(("comment", i, i, "", -1))
                i += 1
                continue
            start = i
            while lines[i].lstrip().startswith("@"):  # decorators: the definition below owns them
                end, _ = self.extent(i, hi)
                nxt = end + 1
                while nxt < hi and kinds[nxt] < 0:
                    nxt += 1
                if nxt >= hi or kinds[nxt] != v:
                    break
                i = nxt
            m = _DEF.match(lines[i])
            end, body = self.extent(i, hi)
            if m is None:
                out.append(("statement", start, end, "", i))
                if body < 0 and "#" in lines[end] and _trailing_comment(lines[end], kinds[end] == CONT):
                    # tree-sitter lists a simple statement's trailing comment after it, as a comment of its own
                    out.append(("comment", end, end, "", i))
            else:
                out.append((m.group(1), start, end, m.group(2), i))
            i = end + 1
        return out
