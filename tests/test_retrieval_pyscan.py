"""Python chunked from its lines (pyscan) gives exactly the chunks of the tree-sitter walk."""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil.retrieval.chunking import chunk_text

REPO = Path(__file__).resolve().parent.parent

# Each snippet is a shape where a line scanner could go wrong: strings, brackets, comments, decorators.
CASES = {
    "decorators_and_lead_comments": '''\
# lead one
# lead two
@dec(
    a=1,
)
@other
def f(
    x,
):
    y = 1
    # trailing, indented: the function's
# col 0: the module's

    # after a dedented comment: the module's
z = 2
''',
    "class_body": '''\
class A(Base,
        Mixin):
    # above the first statement: the class's own, not a lead for m
    def m(self):
        return 1
    # between methods, at the body's indent: the class's
# col 0 between methods: still the class's
    @property
    def n(self):
        pass

    x = 1
''',
    "strings": '''\
def f():
    s = """
col 0 inside a string: not a dedent
def g(): not a definition
"""
    t = 'a backslash continues \\
    a single-quoted string'
    u = "quote \\" inside" + \'\'\'also \\\'\'\' escaped\'\'\'
    return s  # trailing comment


def h():
    """Docstring with 'quotes' and # hash."""
    return "#"
''',
    "brackets": '''\
def f():
    x = [
1,
2,
    ]
    return x


def g(a, b=(1,
            2)): return a
''',
    "nesting_and_blocks": '''\
import os

if os.name:
    def hidden():  # inside an if: part of the module chunk, not its own
        pass


class Outer:
    class Inner:
        def deep(self):
            pass

    async def run(self):
        await self.go()


class OneLine: pass
def one(): return 1
''',
    "trailing_statement_comment": '''\
SENTINEL = []                          # a comment on the statement's line
def small(text):
    return text


class K:
    """Doc."""  # noqa: E501
    def m(self):
        pass
''',
}


def _same(path: str, text: str) -> None:
    scanned = chunk_text(path, text)
    parsed = chunk_text(path, text, use_tree_sitter=True)
    assert scanned.chunks == parsed.chunks
    assert scanned.defines == parsed.defines


@pytest.mark.parametrize("name", sorted(CASES))
def test_pyscan_chunks_equal_tree_sitters(name: str) -> None:
    _same(f"{name}.py", CASES[name])


def test_pyscan_finds_what_a_reader_expects() -> None:
    chunks = chunk_text("x.py", CASES["class_body"]).chunks
    # the class header with its two-line signature; the comments between methods lead n's chunk
    assert [(c.symbol, c.kind, c.start_line, c.end_line) for c in chunks] == [
        ("A", "class", 1, 3), ("A.m", "method", 4, 5), ("A.n", "method", 6, 10), ("A", "class", 12, 12)]
    strings = {c.symbol: (c.start_line, c.end_line) for c in chunk_text("s.py", CASES["strings"]).chunks}
    assert strings == {"f": (1, 9), "h": (12, 14)}  # the column-0 string lines stay inside f


def test_pyscan_equals_tree_sitter_on_this_repositorys_python() -> None:
    files = sorted(p for d in ("anvil", "stages", "providers", "tests", "benchmarks") for p in (REPO / d).rglob("*.py"))
    assert len(files) > 100
    for path in files:
        _same(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))
