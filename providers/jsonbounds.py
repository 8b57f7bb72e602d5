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
from itertools import accumulate
from typing import Any

MAX_DEPTH = 128

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooDeep(ValueError):
    pass


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (strings skipped), at C speed: strings
    and everything but brackets are cut out by regex, the running level summed by accumulate."""
    kept = _NOT_BRACKETS.sub("", _STRINGS.sub("", text) if '"' in text else text)
    return max(0, max(accumulate(map(_STEP.__getitem__, kept)), default=0))


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
