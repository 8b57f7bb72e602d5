"""Split one file into chunks: symbols for code, line windows for anything else.

Python is read by ``pyscan`` (its structure from indentation, strings and
brackets: the same chunks as tree-sitter's parse, at a third of the cost);
code in the other languages of ``languages.SPECS`` is parsed with tree-sitter; only
the top level and the bodies of containers are walked (classes, impl
blocks, namespaces), which keeps parsing the dominant cost rather than
Python-side tree walking. Each function or method is one chunk (decorators
and doc comments inside its range included); a container's own lines
(signature, docstring, fields) form a header chunk; what is left at the top
level (module docstring, imports, constants) forms module chunks. Chunks
longer than ``MAX_LINES`` are cut into consecutive pieces with the same
symbol, so a single giant function cannot eat a context budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from anvil.retrieval.languages import SPECS, LanguageSpec, language_for, parser_for
from anvil.retrieval.pyscan import CONT, Scan

MAX_LINES = 120  # longest chunk for code
WINDOW_LINES = 40  # line windows for files without a grammar

_DECL_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function", "class", "class_expression"}
)
_HAS_WORD = re.compile(r"\w")
# Nodes that, directly above a definition, belong to it: doc comments, Rust attributes.
_LEADING = frozenset({"comment", "line_comment", "block_comment", "attribute_item"})
# An annotation stays on its line (else "else:\n    x = 1" would define "else").
_PY_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a file. Lines are 1-based and inclusive."""

    start_line: int
    end_line: int
    symbol: str  # "Class.method", "function", "" for module-level code and windows
    kind: str  # function | method | class | definition | module | window


@dataclass(slots=True)
class FileChunks:
    language: str | None
    chunks: list[Chunk]
    defines: list[str]  # names this file defines (last component), for the repository map


def _text(node: Any) -> str:
    return node.text.decode("utf-8", errors="replace")


def _clean_name(raw: str) -> str:
    raw = raw.split("(", 1)[0].split("<", 1)[0].strip().lstrip("*&").strip()
    raw = raw.split()[-1] if raw.split() else raw
    return raw.replace("::", ".")


def _name(node: Any, spec: LanguageSpec) -> str:
    t = node.type
    if t == "impl_item":  # Rust: `impl Trait for Type` -> Type
        ty = node.child_by_field_name("type")
        return _clean_name(_text(ty)) if ty is not None else ""
    if t == "type_declaration":  # Go: type X struct / type ( ... )
        for child in node.named_children:
            n = child.child_by_field_name("name")
            if n is not None:
                return _text(n)
        return ""
    n = node.child_by_field_name("name")
    if n is not None:
        name = _clean_name(_text(n))
        if t == "method_declaration" and spec.name == "go":
            recv = node.child_by_field_name("receiver")
            if recv is not None:
                types = re.findall(r"[A-Za-z_]\w*", _text(recv))
                if types:
                    return f"{types[-1]}.{name}"
        return name
    d = node.child_by_field_name("declarator")
    while d is not None:
        inner = d.child_by_field_name("declarator")
        if inner is None or d.type in ("identifier", "qualified_identifier", "field_identifier"):
            break
        d = inner
    if d is not None:
        return _clean_name(_text(d))
    return ""


def _unwrap(node: Any, spec: LanguageSpec) -> Any:
    while node.type in spec.wrappers:
        inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
        if inner is None:
            named = [c for c in node.named_children if c.type not in ("decorator", "comment")]
            if not named:
                return node
            inner = named[-1]
        node = inner
    return node


def _declaration_name(node: Any) -> str:
    """Name of ``const f = () => ...`` or ``app.handle = function () {...}``; "" for other values."""
    if node.type == "expression_statement":
        expr = node.named_children[0] if node.named_children else None
        if expr is not None and expr.type == "assignment_expression":
            value = expr.child_by_field_name("right")
            left = expr.child_by_field_name("left")
            if value is not None and left is not None and value.type in _DECL_VALUES:
                target = _text(left)
                own = value.child_by_field_name("name")
                if target in ("module.exports", "exports") and own is not None:
                    return _text(own)  # module.exports = function createApp() {...}
                return target.replace("module.exports", "exports").removeprefix("exports.")
        return ""
    for child in node.named_children:
        if child.type == "variable_declarator":
            value = child.child_by_field_name("value")
            if value is not None and value.type in _DECL_VALUES:
                name = child.child_by_field_name("name")
                return _text(name) if name is not None else ""
    return ""


def _container_kind(node_type: str) -> str:
    return "namespace" if ("namespace" in node_type or "module" in node_type or node_type == "mod_item") else "class"


class _Chunker:
    def __init__(self, spec: LanguageSpec, lines: list[str]):
        self.spec = spec
        self.lines = lines
        self.chunks: list[Chunk] = []
        self.defines: list[str] = []

    def emit(self, start: int, end: int, symbol: str, kind: str) -> None:
        """Emit rows start..end (0-based inclusive), trimmed and cut to MAX_LINES."""
        lines = self.lines
        while start <= end and not lines[start].strip():
            start += 1
        while end >= start and not lines[end].strip():
            end -= 1
        if start > end:
            return
        if not any(_HAS_WORD.search(line) for line in lines[start : end + 1]):
            return  # only closing braces or punctuation left
        for s in range(start, end + 1, MAX_LINES):
            e = min(end, s + MAX_LINES - 1)
            self.chunks.append(Chunk(s + 1, e + 1, symbol, kind))

    def gaps(self, start: int, end: int, covered: list[tuple[int, int]], symbol: str, kind: str) -> None:
        cursor = start
        for s, e in sorted(covered):
            if s > cursor:
                self.emit(cursor, s - 1, symbol, kind)
            cursor = max(cursor, e + 1)
        if cursor <= end:
            self.emit(cursor, end, symbol, kind)

    def walk(self, parent: Any, prefix: str, in_class: bool = False) -> list[tuple[int, int]]:
        """Emit chunks for the definitions among parent's children; return their row ranges."""
        spec = self.spec
        covered: list[tuple[int, int]] = []
        lead_start, lead_end = -1, -2  # a run of comments (doc comments, attributes) just above
        lead_gap = 1  # how far below the run a definition may start and still own it
        for child in parent.named_children:
            if child.type in _LEADING:
                if child.start_point[0] > lead_end + 1:
                    lead_start = child.start_point[0]
                lead_end = child.end_point[0]
                # A /** doc block */ may sit one blank line above its definition (JSDoc style).
                lead_gap = 2 if child.text[:3] == b"/**" else 1
                continue
            target = _unwrap(child, spec) if child.type in spec.wrappers else child
            t = target.type
            s, e = child.start_point[0], child.end_point[0]
            if lead_start >= 0 and s <= lead_end + lead_gap and t not in spec.transparent:
                s = lead_start  # the doc comment belongs to the definition below it
            lead_start, lead_end = -1, -2
            if t in spec.transparent:
                covered.extend(self.walk(target, prefix, in_class))
            elif t in spec.containers:
                name = _name(target, spec)
                symbol = f"{prefix}.{name}" if prefix and name else (name or prefix)
                if name:
                    self.defines.append(name.rsplit(".", 1)[-1])
                body = target.child_by_field_name("body")
                kind = _container_kind(t)
                inner = self.walk(body, symbol, kind == "class") if body is not None else []
                if inner:
                    self.gaps(s, e, inner, symbol, kind)
                else:
                    self.emit(s, e, symbol, kind)
                covered.append((s, e))
            elif t in spec.functions or (t in spec.declarations and _declaration_name(target)):
                name = _name(target, spec) if t not in spec.declarations else _declaration_name(target)
                if t in spec.functions and t in ("struct_specifier", "union_specifier", "enum_specifier") and (
                    target.child_by_field_name("body") is None
                ):
                    continue  # a forward declaration or a use, not a definition
                symbol = f"{prefix}.{name}" if prefix and name else (name or prefix)
                if name:
                    self.defines.append(name.rsplit(".", 1)[-1])
                functional = any(w in t for w in ("function", "method", "constructor")) or t in spec.declarations
                kind = ("method" if in_class else "function") if functional else "definition"
                self.emit(s, e, symbol, kind)
                covered.append((s, e))
        return covered


def _walk_python(chunker: _Chunker, scan: Scan, lo: int, hi: int, prefix: str, in_class: bool) -> list[tuple[int, int]]:
    """``_Chunker.walk`` over a level of a Python file's scan (same leading-comment and container rules)."""
    covered: list[tuple[int, int]] = []
    lead_start, lead_end = -1, -2
    body_started = not in_class  # comments above a class body's first statement are the class's, not a lead
    for typ, s, e, name, header in scan.children(lo, hi):
        if typ == "comment":
            if not body_started:
                continue
            if s > lead_end + 1:
                lead_start = s
            lead_end = e
            continue
        if lead_start >= 0 and s <= lead_end + 1:
            s = lead_start
        lead_start, lead_end = -1, -2
        body_started = True
        if typ == "statement":
            continue
        symbol = f"{prefix}.{name}" if prefix else name
        chunker.defines.append(name)
        if typ == "class":
            inner = _walk_python(chunker, scan, header + 1, e + 1, symbol, True)
            if inner:
                chunker.gaps(s, e, inner, symbol, "class")
            else:
                chunker.emit(s, e, symbol, "class")
        else:
            chunker.emit(s, e, symbol, "method" if in_class else "function")
        covered.append((s, e))
    return covered


def window_chunks(lines: list[str], size: int = WINDOW_LINES) -> list[Chunk]:
    """Fixed line windows, blank-only windows dropped."""
    out: list[Chunk] = []
    for s in range(0, len(lines), size):
        e = min(len(lines), s + size) - 1
        while s <= e and not lines[s].strip():
            s += 1
        while e >= s and not lines[e].strip():
            e -= 1
        if s <= e:
            out.append(Chunk(s + 1, e + 1, "", "window"))
    return out


def chunk_text(path: str, text: str, *, use_tree_sitter: bool = False) -> FileChunks:
    """Chunks and defined names of one file's text (Python by ``pyscan`` unless ``use_tree_sitter``)."""
    language = language_for(path)
    lines = text.split("\n")
    if language is None:
        return FileChunks(None, window_chunks(lines), [])
    spec = SPECS[language]
    chunker = _Chunker(spec, lines)
    scan = None
    if language == "python" and not use_tree_sitter:
        scan = Scan(lines)
        covered = _walk_python(chunker, scan, 0, len(lines), "", False)
    else:
        tree = parser_for(language).parse(text.encode("utf-8", errors="surrogateescape"))
        covered = chunker.walk(tree.root_node, "")
    chunker.gaps(0, len(lines) - 1, covered, "", "module")
    chunker.chunks.sort(key=lambda c: c.start_line)
    defines = chunker.defines
    if scan is not None:  # module-level constants and aliases are definitions too
        match = _PY_ASSIGN.match
        defines.extend(m.group(1) for line, v in zip(lines, scan.kinds, strict=True)
                       if (v == 0 or v == CONT) and (m := match(line)))
    elif language == "python":
        defines.extend(m.group(1) for m in _PY_ASSIGN.finditer(text))
    return FileChunks(language, chunker.chunks, sorted(set(d for d in defines if d)))
