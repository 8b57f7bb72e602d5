"""Anchor hashes: the sha256 of a symbol's source span (tree-sitter chunks) or of the whole file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from anvil.workspace.confine import EditRefused, confined_path


def _read(root: Path, file: str) -> str | None:
    try:
        path = confined_path(root, file)
    except EditRefused:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def symbol_span(path: str, text: str, symbol: str) -> str | None:
    """The lines of `symbol` (its chunks, and a class's members under it), or None when it is not defined."""
    from anvil.retrieval.chunking import chunk_text

    lines = text.split("\n")
    parts = [c for c in chunk_text(path, text).chunks
             if c.symbol == symbol or c.symbol.startswith(symbol + ".")]
    if not parts:
        return None
    return "\n".join("\n".join(lines[c.start_line - 1:c.end_line]) for c in sorted(parts, key=lambda c: c.start_line))


def anchor_hash(root: Path, file: str, symbol: str = "") -> str:
    """The anchor's content hash; '' when the file (or the symbol in it) does not exist."""
    text = _read(root, file)
    if text is None:
        return ""
    if symbol:
        span = symbol_span(file, text, symbol)
        if span is None:
            return ""
        text = span
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()
