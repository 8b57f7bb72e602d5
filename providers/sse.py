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

Fast forms: `iter_sse_batches(chunks)` yields, per network chunk, the list of
`(event, data)` tuples that chunk completed; `iter_sse_blocks(chunks)` yields the
raw event blocks (text) and `parse_block(block)` parses one. Adapters use them to
coalesce deltas that arrived together. Complete events are cut out of the
buffer with one decode and `str.split("\\n\\n")` per chunk, and the one-line
`data:` and two-line `event:`/`data:` shapes take a fast path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEEvent", "iter_sse", "iter_sse_batches", "iter_sse_blocks", "parse_block"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


def _parse_block(block: str) -> tuple[str | None, str] | None:
    """One event's lines (no empty line inside, except leading ones): the general path."""
    event: str | None = None
    data: list[str] = []
    for line in block.split("\n"):
        if not line or line[0] == ":":  # empty (leading) line, or a comment
            continue
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value or None
    if not data:
        return None
    return event, "\n".join(data)


def parse_block(block: str) -> tuple[str | None, str] | None:
    """One raw event block (from `iter_sse_blocks`) -> `(event, data)`, None if it has no data."""
    if block.startswith("data: "):  # the common OpenAI-style event
        if "\n" not in block:
            return None, block[6:]
    elif block.startswith("event: "):  # the common Anthropic-style event
        nl = block.find("\n")
        if nl > 0 and block.startswith("data: ", nl + 1) and block.find("\n", nl + 1) < 0:
            return block[7:nl] or None, block[nl + 7 :]
    return _parse_block(block)


def _blocks(text: str) -> list[str]:
    return [b for b in text.split("\n\n") if b and b != "\n"]


def iter_sse_blocks(chunks: Iterable[bytes]) -> Iterator[list[str]]:
    """The fastest form: for each network chunk, the raw event blocks it completed.

    A block is one event's text (decoded, line endings normalised to "\\n", without
    the blank line that ended it); `parse_block` turns it into `(event, data)`.
    Adapters use it to recognise repetitive delta events on their raw text
    (`anvil.providers.fastpath`) and to coalesce deltas that arrived together.
    """
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
                if not chunk:
                    continue
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
        # Decoding here is safe: a "\n" never sits inside a UTF-8 sequence, so the
        # complete events end on a character boundary; str.split("\n\n") is not
        # splitlines() and leaves U+2028 alone.
        blocks = _blocks(buf[:end].decode("utf-8", "replace"))
        if blocks:
            yield blocks
    # EOF: a held "\r" was a line end; yield the unterminated event, if any.
    blocks = _blocks(tail.decode("utf-8", "replace").strip("\n"))
    if blocks:
        yield blocks


def iter_sse_batches(chunks: Iterable[bytes]) -> Iterator[list[tuple[str | None, str]]]:
    """For each network chunk, the `(event, data)` pairs it completed."""
    for blocks in iter_sse_blocks(chunks):
        events = [e for e in map(parse_block, blocks) if e is not None]
        if events:
            yield events


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Parse an SSE byte stream into events (see the module docstring)."""
    for batch in iter_sse_batches(chunks):
        for event, data in batch:
            yield SSEEvent(event, data)
