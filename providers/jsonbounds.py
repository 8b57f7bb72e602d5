"""JSON from a server or a model, decoded within bounds.

A deeply nested document (`[[[[...` a few thousand levels) makes `json.loads` raise
`RecursionError`, which is not a `ValueError`: it escaped the adapters' "malformed
chunk" handling, the walker wrote an `internal` row and the walk stopped instead of
moving on. `loads` refuses nesting deeper than `MAX_DEPTH` (no wire format or answer
schema anvil reads comes near it) with `JsonTooDeep`, a `ValueError`, so every caller's
existing malformed-JSON path handles it (an adapter: `stream_broken`, the next model).

The depth is only measured when the text has more brackets than `MAX_DEPTH` at all, so
the per-chunk cost on a normal stream is one `count`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 128

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JsonTooDeep(ValueError):
    pass


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (strings skipped)."""
    level = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            level += 1
            if level > deepest:
                deepest = level
        elif c in "]}":
            level -= 1
    return deepest


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    if text.count("[") + text.count("{") > max_depth:
        d = depth(text)
        if d > max_depth:
            raise JsonTooDeep(f"JSON nested {d} levels deep (the limit is {max_depth})")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH,
          decode: Callable[[str], Any] = json.loads) -> Any:
    """`json.loads` that raises `JsonTooDeep` (a ValueError) instead of recursing without bound."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    check_depth(text, max_depth)
    try:
        return decode(text)
    except RecursionError:
        raise JsonTooDeep("JSON nested too deeply to decode") from None
