"""Chunking per language (tree-sitter grammar wheels, offline) and the tokenizer."""

from __future__ import annotations

import pytest

from anvil.retrieval.chunking import MAX_LINES, WINDOW_LINES, chunk_text
from anvil.retrieval.tokens import estimate_tokens, split_identifier, stem, term_counts, tokenize

SAMPLES = {
    "a.py": (
        '"""Module doc."""\nimport os\n\n@deco\ndef foo(a):\n    """Doc."""\n    return a\n\n'
        "class Bar(Base):\n    \"\"\"Bar doc.\"\"\"\n    attr = 3\n\n    def method(self):\n        return 1\n",
        {"foo": "function", "Bar": "class", "Bar.method": "method", "": "module"},
    ),
    "a.js": (
        "import x from 'y';\nexport function foo(a) { return a; }\nconst bar = (x) => x * 2;\n"
        "class Baz extends Q {\n  constructor() { super(); }\n  run() { return 1; }\n}\n",
        {"foo": "function", "bar": "function", "Baz.constructor": "method", "Baz.run": "method"},
    ),
    "a.ts": (
        "import { x } from './y';\nexport interface Shape { area(): number; }\n"
        "export class Circle implements Shape {\n  private r: number;\n"
        "  constructor(r: number) { this.r = r; }\n  area(): number { return this.r; }\n}\n"
        "export const make = (r: number): Circle => new Circle(r);\n",
        {"Shape": "definition", "Circle": "class", "Circle.area": "method", "make": "function"},
    ),
    "a.go": (
        "package main\n\nimport \"fmt\"\n\ntype Server struct {\n\taddr string\n}\n\n"
        "func (s *Server) Start() error {\n\treturn nil\n}\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
        {"Server": "definition", "Server.Start": "function", "main": "function"},
    ),
    "a.rs": (
        "use std::io;\n\npub struct Point { x: i32 }\n\nimpl Point {\n    pub fn new(x: i32) -> Self { Point { x } }\n"
        "    fn len(&self) -> i32 { self.x }\n}\n\nfn main() { println!(\"x\"); }\n",
        {"Point": "definition", "Point.new": "method", "Point.len": "method", "main": "function"},
    ),
    "A.java": (
        "package a.b;\nimport java.util.List;\npublic class Foo {\n    private int x;\n"
        "    public Foo(int x) { this.x = x; }\n    public int getX() { return x; }\n}\n",
        {"Foo": "class", "Foo.Foo": "method", "Foo.getX": "method"},
    ),
    "a.c": (
        "#include <stdio.h>\nstruct point { int x; int y; };\nstatic int *make(int n) { return 0; }\n"
        "int main(void) { return 0; }\n#ifdef FOO\nvoid guarded(void) {}\n#endif\n",
        {"point": "definition", "make": "function", "main": "function", "guarded": "function"},
    ),
    "a.cpp": (
        "#include <vector>\nnamespace geo {\nclass Shape {\n public:\n  virtual double area() const = 0;\n"
        "  int sides() { return 0; }\n};\n}\ndouble geo::Circle::area() const { return 1.0; }\n",
        {"geo.Shape": "class", "geo.Shape.sides": "method", "geo.Circle.area": "function"},
    ),
}


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_symbol_chunks_per_language(path: str, tmp_path) -> None:
    source, expected = SAMPLES[path]
    (tmp_path / path).write_text(source)  # a real file, as the indexer reads them
    result = chunk_text(path, (tmp_path / path).read_text())
    assert result.language is not None
    got = {(c.symbol, c.kind) for c in result.chunks}
    for symbol, kind in expected.items():
        assert (symbol, kind) in got, (symbol, kind, got)
    lines = source.split("\n")
    for c in result.chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines)
        body = "\n".join(lines[c.start_line - 1 : c.end_line])
        assert body.strip(), c
    # The defined names feed the repository map.
    for symbol in expected:
        if symbol:
            assert symbol.rsplit(".", 1)[-1] in result.defines


def test_python_method_chunk_carries_signature_and_docstring() -> None:
    source, _ = SAMPLES["a.py"]
    chunks = {c.symbol: c for c in chunk_text("a.py", source).chunks}
    lines = source.split("\n")
    foo = chunks["foo"]
    assert lines[foo.start_line - 1] == "@deco"  # the decorator belongs to the function
    assert '"""Doc."""' in "\n".join(lines[foo.start_line - 1 : foo.end_line])
    header = chunks["Bar"]
    header_text = "\n".join(lines[header.start_line - 1 : header.end_line])
    assert "class Bar(Base):" in header_text and "attr = 3" in header_text and "def method" not in header_text
    assert chunks[""].start_line == 1  # module header: docstring and imports


def test_long_function_is_cut_into_pieces() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES * 2 + 5))
    source = f"def big():\n{body}\n"
    pieces = [c for c in chunk_text("big.py", source).chunks if c.symbol == "big"]
    assert len(pieces) == 3
    assert all(c.end_line - c.start_line + 1 <= MAX_LINES for c in pieces)
    assert pieces[0].start_line == 1 and pieces[-1].end_line == MAX_LINES * 2 + 6


def test_other_text_files_get_line_windows() -> None:
    text = "\n".join(f"line {i}" for i in range(WINDOW_LINES * 2 + 3))
    result = chunk_text("notes/readme.md", text)
    assert result.language is None
    assert [c.kind for c in result.chunks] == ["window"] * 3
    assert result.chunks[0].start_line == 1 and result.chunks[1].start_line == WINDOW_LINES + 1


def test_tokenizer_splits_snake_camel_and_paths_and_keeps_whole() -> None:
    assert split_identifier("from_file") == ("from_file", "file")  # "from" is a stop word
    assert split_identifier("parseHTTPResponse") == ("parsehttprespons", "pars", "http", "respons")
    terms = tokenize("see src/_pytest/python.py and LogCaptureFixture.get_records()")
    for t in ("src", "_pytest", "pytest", "python", "py", "logcapturefixtur", "log", "captur",
              "fixtur", "get_records", "record"):
        assert t in terms, t
    assert "and" not in terms and "see" in terms
    assert tokenize("x = 1 + 22") == []  # one-letter words and numbers are noise
    counts = term_counts("foo_bar foo_bar fooBar")
    assert counts["foo_bar"] == 2 and counts["foo"] == 3 and counts["bar"] == 3 and counts["foobar"] == 1


def test_stemming_meets_prose_and_code_forms() -> None:
    assert stem("markers") == stem("marker") == "marker"
    assert stem("skipping") == stem("skip") == "skip"
    assert stem("configured") == stem("configure")
    assert stem("files") == stem("file")
    assert stem("add_marker") == "add_marker"  # whole identifiers stay exact
    assert tokenize("Skipping markers") == tokenize("skip marker")


def test_token_estimate_is_chars_over_four_rounded_up() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 4000) == 1000


def test_doc_comments_and_assigned_functions_belong_to_their_definition() -> None:
    js = (
        "var app = exports = module.exports = {};\n\n"
        "/**\n * Handle a request.\n */\n\napp.handle = function handle(req) {\n  return 1;\n};\n\n"
        "module.exports = function createApplication() { return 2; };\n"
    )
    chunks = {c.symbol: c for c in chunk_text("app.js", js).chunks}
    assert chunks["app.handle"].start_line == 3 and chunks["app.handle"].end_line == 9
    assert "createApplication" in chunks
    go = "package main\n\n// Server serves.\ntype Server struct{}\n\n// orphan\n\nfunc main() {}\n"
    got = {c.symbol: (c.start_line, c.end_line) for c in chunk_text("m.go", go).chunks}
    assert got["Server"] == (3, 4) and got["main"] == (8, 8)
    rs = "/// A point.\n#[derive(Debug)]\npub struct Point { x: i32 }\n"
    assert [(c.symbol, c.start_line) for c in chunk_text("p.rs", rs).chunks] == [("Point", 1)]
