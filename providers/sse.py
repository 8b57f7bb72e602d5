"""One byte-exact Server-Sent Events parser, shared by every SSE adapter.

API (providers B: this is all you need):

    from anvil.providers.sse import SSEEvent, iter_sse
    for ev in iter_sse(response_byte_chunks):   # Iterable[bytes], any chunking
        ev.event   # str | None: the `event:` name, None when the event had none
        ev.data    # str: the `data:` lines joined with "\\n", decoded as UTF-8

Rules (wire.md section 1):
- lines end at the raw bytes `\\r\\n`, `\\n` or `\\r`, split *before* decoding UTF-8,
  so U+2028 inside a JSON string never breaks a line (C70); a trailing `\\r` is
  held back until the next chunk tells whether a `\\n` follows;
- chunk boundaries may fall anywhere: mid-line, mid-UTF-8 sequence, between
  `\\r` and `\\n` (C69);
- an event ends at an empty line; several `data:` lines are joined with `\\n`;
  lines starting with `:` are comments (OpenRouter `: OPENROUTER PROCESSING`,
  DeepSeek `: keep-alive`) and are skipped; exactly one space after the colon
  is stripped; `id:` / `retry:` / unknown fields are ignored; an event with no
  `data:` line is not dispatched;
- at EOF an unterminated event that has data is still yielded ("yields what it
  has"): deciding that EOF came before the terminal event (`[DONE]`,
  `message_stop`, ...) is the adapter's job, and it raises
  `UpstreamError("stream_broken")`.

Performance: events are cut out of the buffer with `bytes.split(b"\\n\\n")`
after normalising line endings, and a one-line `data: ...` event takes a
fast path, so parsing costs a few hundred nanoseconds per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = ["SSEEvent", "iter_sse"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


def _parse_block(block: bytes) -> SSEEvent | None:
    """One event's lines (no empty line inside, except leading ones)."""
    if block[:6] == b"data: " and b"\n" not in block:  # the common case
        return SSEEvent(None, block[6:].decode("utf-8", "replace"))
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # empty (leading) line, or ":" comment
            continue
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace") or None
    if not data:
        return None
    return SSEEvent(event, b"\n".join(data).decode("utf-8", "replace"))


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Parse an SSE byte stream into events (see the module docstring)."""
    tail = b""  # bytes after the last complete event, line endings normalised
    held_cr = False  # the previous chunk ended in "\r": maybe half of "\r\n"
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if held_cr:
            chunk = b"\r" + chunk
            held_cr = False
        if chunk[-1] == 13:  # b"\r"
            chunk = chunk[:-1]
            held_cr = True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if tail:
            start = len(tail) - 1  # a "\n\n" may straddle the old tail and the chunk
            buf = tail + chunk
        else:
            start = 0
            buf = chunk
        end = buf.rfind(b"\n\n", start)
        if end < 0:
            tail = buf
            continue
        tail = buf[end + 2 :]
        for block in buf[:end].split(b"\n\n"):
            if block:
                ev = _parse_block(block)
                if ev is not None:
                    yield ev
    # EOF: a held "\r" was a line end; yield the unterminated event, if any.
    for block in tail.split(b"\n\n"):
        if block.strip(b"\n"):
            ev = _parse_block(block)
            if ev is not None:
                yield ev
