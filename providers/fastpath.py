"""Skip `json.loads` for stream events that differ from a known one only in one string.

A long answer is tens of thousands of events like
`{"id":"x",...,"choices":[{"index":0,"delta":{"content":"<token>"},...}]}` whose bytes are
identical except the token. Decoding each with `json.loads` costs ~4 us; a
`DeltaTemplate` learns, from one fully decoded event whose only effect was "append
this text", the text before and after that string value, and then reads the next events
with two prefix/suffix checks and the C `scanstring` (~0.3 us).

It is exact, not a heuristic: an event matches only if it is the learned event's prefix,
then one complete JSON string literal, then the learned suffix. A JSON string literal is
self-delimiting, so such an event has the same structure and the same values as the
learned one except for that string: its meaning is the same "append this text". Anything
else (a finish reason, usage, a tool call, an error, another block index) falls back to
the full decoder.

    template = DeltaTemplate('"content":"')
    text = template.match(block)          # a raw SSE block (sse.iter_sse_blocks); None: decode it
    ...
    template.learn(block, decoded_text)   # after a full decode of a text-only event

The template works on the raw SSE block (`event:` line included), so a match also
means the same event name; a JSON string literal holds no raw line break, so the
block's line structure is the learned one too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from json.decoder import scanstring  # type: ignore[attr-defined]  # C accelerated; typeshed omits it
from typing import Any

from anvil.providers.sse import iter_sse_blocks, parse_block

__all__ = ["DeltaTemplate", "drive_sse"]


class DeltaTemplate:
    __slots__ = ("marker", "prefix", "suffix", "start", "tag")

    def __init__(self, marker: str) -> None:
        self.marker = marker  # e.g. '"content":"' (key, colon, opening quote, no spaces)
        self.prefix: str | None = None
        self.suffix = ""
        self.start = 0
        self.tag: Any = None  # what the caller needs to apply a match (a block index, ...)

    def match(self, data: str) -> str | None:
        prefix = self.prefix
        if prefix is None or not data.startswith(prefix):
            return None
        if not data.endswith(self.suffix):
            return None
        try:
            value, end = scanstring(data, self.start)
        except ValueError:
            return None
        return value if end + len(self.suffix) == len(data) else None

    def learn(self, data: str, value: str, tag: Any = None) -> None:
        """Remember `data` (already decoded; its only effect: append `value`) as the shape."""
        marker = self.marker
        i = data.find(marker)
        if i < 0 or data.find(marker, i + 1) >= 0:  # absent, or ambiguous
            return
        start = i + len(marker)
        try:
            decoded, end = scanstring(data, start)
        except ValueError:
            return
        if decoded != value:
            return
        self.prefix, self.suffix, self.start, self.tag = data[:start], data[end:], start, tag


def drive_sse(
    chunks: Iterable[bytes],
    template: DeltaTemplate,
    on_text: Callable[[str], None],
    on_event: Callable[[str, str | None, str], bool],
) -> bool:
    """Run an SSE byte stream through `template`, the way every SSE adapter does.

    Plain text deltas go to `on_text` (those of one network read joined into one call);
    every other event goes to `on_event(block, event_name, data)`, which decodes it,
    may `template.learn(block, ...)`, and returns True to stop reading. Returns whether
    `on_event` stopped the stream (False: EOF).
    """
    match = template.match
    for blocks in iter_sse_blocks(chunks):
        texts = list(map(match, blocks))
        if None not in texts:  # the common case: every event of this read is a plain delta
            on_text("".join(t for t in texts if t is not None))
            continue
        pending: list[str] = []  # flushed before any other event: order is kept
        for block in blocks:
            text = match(block)
            if text is not None:
                pending.append(text)
                continue
            if pending:
                on_text("".join(pending))
                pending = []
            parsed = parse_block(block)
            if parsed is not None and on_event(block, parsed[0], parsed[1]):
                return True
        if pending:
            on_text("".join(pending))
    return False
