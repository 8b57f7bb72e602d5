"""Read tools: read_file, outline, search, list_dir (permission `read`), over the `Workspace`.

Names and arguments follow the shared contract (notes/tools-contract.md):
`read_file {path, start?, end?}` with 1-based inclusive lines numbered
"  12| text"; `outline {path}`; `search {query, regex?, path?}`;
`list_dir {path?}`. Every answer is capped and says how to read on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anvil.tools.base import Permission, ToolCaps, ToolResult, cap
from anvil.workspace.confine import EditRefused
from anvil.workspace.workspace import Workspace, WorkspaceError

if TYPE_CHECKING:
    from anvil.retrieval.retriever import Retriever

BM25_HITS = 15


def numbered(lines: list[str] | tuple[str, ...], start: int, width: int) -> list[str]:
    return [f"{n:>{width}}| {line}" for n, line in enumerate(lines, start)]


def read_window(ws: Workspace, path: str, start: int | None, end: int | None, caps: ToolCaps) -> ToolResult:
    """Lines start..end of `path`, numbered, as many as the caps allow; the cut says where to go on."""
    try:
        text = ws.read(path, start or 1, end)
    except WorkspaceError as exc:
        return ToolResult(str(exc), ok=False)
    if text.total == 0:
        return ToolResult(f"{text.path}: empty file")
    if text.start > text.total:
        return ToolResult(f"{text.path} has {text.total} lines; start={text.start} is past the end", ok=False)
    width = max(4, len(str(text.end)))
    shown: list[str] = []
    used = 0
    for line in numbered(text.lines, text.start, width):
        if len(shown) >= caps.max_lines or used + len(line) + 1 > caps.max_chars:
            break
        shown.append(line)
        used += len(line) + 1
    if not shown:  # one line longer than the cap: show its head
        shown = [numbered(text.lines[:1], text.start, width)[0][:caps.max_chars]]
    last = text.start + len(shown) - 1
    head = f"{text.path} (lines {text.start}-{last} of {text.total})"
    cut = ""
    if last < text.end:
        cut = f"lines {last + 1}-{text.end} not shown"
        shown.append(f"[cut: {cut}; read_file {{\"path\": \"{text.path}\", \"start\": {last + 1}}} reads on]")
    return ToolResult(head + "\n" + "\n".join(shown), cut=cut)


def outline_lines(path: str, text: str) -> list[str]:
    """The file's symbols with their line ranges, from the tree-sitter chunker ("" when none)."""
    from anvil.retrieval.chunking import chunk_text

    chunks = chunk_text(path, text).chunks
    rows = []
    for c in chunks:
        if not c.symbol:
            continue
        rows.append(f"{c.start_line:>6}-{c.end_line:<6} {c.kind:<8} {c.symbol}")
    return rows


@dataclass
class ReadFile:
    ws: Workspace
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "read_file"
    permission: Permission = "read"
    description: str = ("Read lines of a repository file, numbered. start/end are 1-based and inclusive; "
                        "without them the file from the top, as much as fits (the answer says how to read on).")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "path relative to the repository root"},
                       "start": {"type": "integer", "description": "first line (1-based)"},
                       "end": {"type": "integer", "description": "last line (inclusive)"}},
        "required": ["path"]})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        return read_window(self.ws, str(args["path"]), args.get("start"), args.get("end"), self.caps)


@dataclass
class Outline:
    ws: Workspace
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "outline"
    permission: Permission = "read"
    description: str = "The symbols (classes, functions, methods) of a file with their line ranges."
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        path = str(args["path"])
        try:
            text = self.ws.read_text(path)
        except WorkspaceError as exc:
            return ToolResult(str(exc), ok=False)
        total = len(text.splitlines())
        rows = outline_lines(path, text)
        if not rows:
            return ToolResult(f"{path}: {total} lines, no symbols found (not a language anvil parses); "
                              "use read_file with start/end")
        body, cut = cap("\n".join(rows), self.caps, more="read_file shows any part of the file")
        return ToolResult(f"{path}: {total} lines\n  lines        kind     symbol\n{body}", cut=cut)


@dataclass
class Search:
    """A literal or regex search over the files git sees; a search of several words that finds no literal
    hit falls back to the BM25 index (the chunks whose words match best)."""

    ws: Workspace
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "search"
    permission: Permission = "read"
    description: str = ("Search the repository. `query` is literal text (an identifier, a line of code) unless "
                        "regex is true; several words with no literal hit are ranked by relevance. "
                        "`path` limits it to a file or folder.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"query": {"type": "string"}, "regex": {"type": "boolean"},
                       "path": {"type": "string", "description": "a file or folder to search in"}},
        "required": ["query"]})
    _retriever: Retriever | None = None

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        import re

        query = str(args["query"])
        if not query.strip():
            return ToolResult("search: empty query", ok=False)
        regex = bool(args.get("regex", False))
        paths = [str(args["path"])] if args.get("path") else []
        try:
            hits = self.ws.search(query, regex=regex, paths=paths)
        except re.error as exc:
            return ToolResult(f"search: bad regex: {exc}", ok=False)
        except EditRefused as exc:
            return ToolResult(f"search: {exc.reason}", ok=False)
        if hits:
            rows = [f"{h.path}:{h.line}: {h.text.strip()[:300]}" for h in hits]
            more = " (the first 200; narrow it with path)" if len(hits) >= 200 else ""
            body, cut = cap("\n".join(rows), self.caps, more="narrow the query or give a path")
            return ToolResult(f"{len(hits)} match(es){more}\n{body}", cut=cut)
        if regex or len(query.split()) < 2:
            return ToolResult(f"no match for {query!r}")
        return self._ranked(query, paths)

    def _ranked(self, query: str, paths: list[str]) -> ToolResult:
        try:
            if self._retriever is None:
                from anvil.retrieval import Retriever

                self._retriever = Retriever.open(self.ws.root, use_cache=False)
            ranking, _ = self._retriever.rank(query)
        except Exception as exc:  # the index is an aid; a failure is an answer, not a crash
            return ToolResult(f"no literal match for {query!r}, and the word index failed: {exc}")
        idx = self._retriever.index
        order = sorted(range(len(ranking.chunk_scores)), key=lambda c: -float(ranking.chunk_scores[c]))
        rows: list[str] = []
        for ci in order:
            if float(ranking.chunk_scores[ci]) <= 0 or len(rows) >= BM25_HITS:
                break
            path = idx.paths[int(idx.chunk_file[ci])]
            if paths and not any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths):
                continue
            what = idx.chunk_symbol[ci] or idx.chunk_kind[ci]
            rows.append(f"{path}:{idx.chunk_start[ci]}-{idx.chunk_end[ci]} {what}")
        if not rows:
            return ToolResult(f"no match for {query!r}")
        return ToolResult(f"no literal match for {query!r}; best matching regions by words:\n" + "\n".join(rows))


@dataclass
class ListDir:
    ws: Workspace
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "list_dir"
    permission: Permission = "read"
    description: str = "The files and folders (ending in /) directly under a folder of the repository."
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"path": {"type": "string", "description": "a folder; default the root"}}})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        rel = str(args.get("path") or "")
        try:
            entries = self.ws.list_dir(rel)
        except EditRefused as exc:
            return ToolResult(f"list_dir: {exc.reason}", ok=False)
        if not entries:
            return ToolResult(f"{rel or '.'}: no such folder, or nothing in it", ok=False)
        body, cut = cap("\n".join(entries), self.caps, more="list a subfolder")
        return ToolResult(f"{rel or '.'}/ ({len(entries)} entries)\n{body}", cut=cut)
