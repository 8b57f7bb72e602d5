"""Newline-delimited JSON (Ollama `/api/chat`): the same byte-level line rules as sse.py.

API:

    from anvil.providers.ndjson import iter_ndjson
    for obj in iter_ndjson(response_byte_chunks):   # Iterable[bytes], any chunking
        ...                                         # one parsed JSON value per line

- lines end at `\\n`, `\\r\\n` or `\\r`, split on raw bytes before decoding (U+2028 safe);
- blank lines are skipped;
- a line that is not valid JSON (a final partial line cut by EOF included) raises
  `UpstreamError("stream_broken")`; the adapter fills in provider and model.
- deciding that the stream ended before `done: true` is the adapter's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.types import UpstreamError

__all__ = ["iter_ndjson"]


def _load(line: bytes) -> Any:
    try:
        return bounded_loads(line)
    except ValueError:
        shown = line[:200].decode("utf-8", "replace")
        raise UpstreamError(
            "stream_broken", f"malformed or truncated NDJSON line: {shown!r}"
        ) from None


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Parse an NDJSON byte stream into one JSON value per non-blank line."""
    tail = b""
    held_cr = False
    for chunk in chunks:
        if not chunk:
            continue
        if held_cr:
            chunk = b"\r" + chunk
            held_cr = False
        if chunk[-1] == 13:
            chunk = chunk[:-1]
            held_cr = True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = tail + chunk if tail else chunk
        end = buf.rfind(b"\n")
        if end < 0:
            tail = buf
            continue
        tail = buf[end + 1 :]
        for line in buf[:end].split(b"\n"):
            if line.strip():
                yield _load(line)
    if tail.strip():
        yield _load(tail)
