"""A convention's deterministic check: a regex or a tree-sitter query over a change's added lines.

The pattern is untrusted input (a model wrote it, or a user pasted it): a regex
runs under the `regex` module's per-call timeout, so a catastrophic pattern
cannot hang validate; a query runs in tree-sitter, which has no backtracking.
A check is accepted at promotion only if it flags every original case and none
of their fixed versions (`accept`).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import regex

from anvil.memory.rulekey import language_of

CheckKind = Literal["regex", "query"]
MAX_PATTERN = 600
LINE_TIMEOUT = 0.05  # seconds per line for a regex; a pattern that needs more is broken, not a finding
MAX_LINE = 2000  # longer lines are cut for matching (generated or minified code)

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


class CheckError(ValueError):
    """The pattern does not compile, or it timed out: `str(self)` says which."""


@dataclass(frozen=True)
class ChangedLine:
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    pattern: str
    language: str  # the key's language: the check looks only at files of it ('text': every file)
    in_tests: bool = False  # test files too (only when a recorded case was in one: tests assert, print, ...)

    def applies_to(self, path: str) -> bool:
        from anvil.stages.plan_validator import is_test_path

        if not self.in_tests and is_test_path(path):
            return False
        return self.language == "text" or language_of(path) == self.language


def added_lines(diff: str) -> list[ChangedLine]:
    """The lines a unified diff adds, with their file and line number in the new version."""
    out: list[ChangedLine] = []
    file, line = "", 0
    for raw in diff.splitlines():
        if raw.startswith("+++ "):
            name = raw[4:].strip()
            file = "" if name == "/dev/null" else name[2:] if name.startswith("b/") else name
            continue
        m = _HUNK.match(raw)
        if m:
            line = int(m.group(1))
            continue
        if not file or raw.startswith(("--- ", "diff --git", "index ")):
            continue
        if raw.startswith("+"):
            out.append(ChangedLine(file, line, raw[1:]))
            line += 1
        elif raw.startswith(" "):
            line += 1
    return out


def _compile_regex(pattern: str) -> regex.Pattern[str]:
    import regex

    if len(pattern) > MAX_PATTERN:
        raise CheckError(f"the pattern is longer than {MAX_PATTERN} characters")
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise CheckError(f"the regex does not compile: {exc}") from None


def _regex_hits(check: Check, lines: Iterable[ChangedLine]) -> list[Violation]:
    compiled = _compile_regex(check.pattern)
    out = []
    for cl in lines:
        try:
            hit = compiled.search(cl.text[:MAX_LINE], timeout=LINE_TIMEOUT)
        except TimeoutError:
            raise CheckError(f"the regex took longer than {LINE_TIMEOUT}s on one line ({cl.file}:{cl.line}):"
                             " a pattern with catastrophic backtracking") from None
        if hit:
            out.append(Violation(cl.file, cl.line, cl.text.strip()))
    return out


def _query_lines(check: Check, text: str) -> set[int]:
    """The 1-based lines where a capture of the query starts in `text`."""
    import tree_sitter

    from anvil.retrieval.languages import SPECS, parser_for

    if check.language not in SPECS:
        raise CheckError(f"a tree-sitter query needs a language with a grammar, not {check.language!r}")
    parser = parser_for(check.language)
    try:
        query = tree_sitter.Query(parser.language, check.pattern)
    except (tree_sitter.QueryError, ValueError) as exc:
        raise CheckError(f"the tree-sitter query does not compile: {exc}") from None
    tree = parser.parse(text.encode("utf-8", errors="surrogateescape"))
    captures = tree_sitter.QueryCursor(query).captures(tree.root_node)
    return {node.start_point[0] + 1 for nodes in captures.values() for node in nodes}


def violations(check: Check, lines: list[ChangedLine], root: Path | None = None) -> list[Violation]:
    """The added lines the check flags. A query parses each changed file in `root` (confined to it)."""
    lines = [cl for cl in lines if check.applies_to(cl.file)]
    if check.kind == "regex":
        return _regex_hits(check, lines)
    from anvil.workspace.confine import EditRefused, confined_path

    out: list[Violation] = []
    by_file: dict[str, list[ChangedLine]] = {}
    for cl in lines:
        by_file.setdefault(cl.file, []).append(cl)
    for file, changed in by_file.items():
        try:
            text = confined_path(root, file).read_text(encoding="utf-8") if root is not None else ""
        except (EditRefused, OSError, UnicodeDecodeError):
            continue
        flagged = _query_lines(check, text)
        out += [Violation(cl.file, cl.line, cl.text.strip()) for cl in changed if cl.line in flagged]
    return out


def flags_text(check: Check, text: str) -> bool:
    """Whether the check flags any line of a snippet (a finding's evidence, or its fixed version)."""
    if check.kind == "regex":
        return bool(_regex_hits(check, [ChangedLine("", i, x) for i, x in enumerate(text.splitlines(), 1)]))
    return bool(_query_lines(check, textwrap.dedent(text)))


def accept(check: Check, originals: list[str], fixed: list[str]) -> str:
    """'' when the check flags every original case and no fixed version; else why it is refused."""
    if not originals:
        return "there is no original case to test the check on"
    try:
        missed = [o for o in originals if not flags_text(check, o)]
        wrong = [f for f in fixed if flags_text(check, f)]
    except CheckError as exc:
        return str(exc)
    if missed:
        return f"it does not flag {len(missed)} of the {len(originals)} original case(s), e.g. {missed[0].strip()!r}"
    if wrong:
        return f"it flags {len(wrong)} fixed version(s), e.g. {wrong[0].strip()[:200]!r}"
    return ""
