"""What the scripted server sends and records: `Reply`, `RecordedRequest`, `Match`.

See server.py for how they are used. `Reply` builds byte-exact HTTP responses (head and
body framing); `RecordedRequest` is one request as received; `Match` picks requests.
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["Reply", "RecordedRequest", "Match"]


@dataclass
class RecordedRequest:
    """One request as the server received it. `headers` keys are lower-case."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None

    @property
    def model(self) -> str | None:
        if isinstance(self.json, dict) and isinstance(self.json.get("model"), str):
            return self.json["model"]
        if "/models/" in self.path and ":" in self.path:  # Gemini: /v1beta/models/{m}:method
            return self.path.split("/models/", 1)[1].split(":", 1)[0]
        return None

    @property
    def stream(self) -> bool:
        if ":streamGenerateContent" in self.path:
            return True
        if isinstance(self.json, dict):
            default = self.path.endswith("/api/chat")  # Ollama streams by default
            return bool(self.json.get("stream", default))
        return False


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str | None = None
    framing: Literal["length", "chunked", "close"] = "length"
    chunks: list[bytes] | None = None
    chunk_size: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    stall: float = 0.0
    cut: bool = False

    # --- builders ---------------------------------------------------------------
    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] = (),
             **kw: Any) -> Reply:
        text = obj if isinstance(obj, (str, bytes)) else json.dumps(obj)
        body = text.encode() if isinstance(text, str) else text
        hs = list(headers)
        if not any(k.lower() == "content-type" for k, _ in hs):
            hs.insert(0, ("content-type", "application/json"))
        return cls(status=status, headers=hs, body=body, **kw)

    @classmethod
    def sse(cls, body: str | bytes | Iterable[str | bytes], headers: Iterable[tuple[str, str]] = (),
            **kw: Any) -> Reply:
        """A chunked SSE stream; a str/bytes body is split into one HTTP chunk per event."""
        if isinstance(body, (str, bytes)):
            raw = body.encode() if isinstance(body, str) else body
            chunks = _split_events(raw)
        else:
            chunks = [c.encode() if isinstance(c, str) else c for c in body]
        hs = list(headers)
        if not any(k.lower() == "content-type" for k, _ in hs):
            hs.insert(0, ("content-type", "text/event-stream"))
        return cls(status=200, headers=hs, chunks=chunks, framing="chunked", **kw)

    @classmethod
    def ndjson(cls, lines: Iterable[str | bytes | dict], **kw: Any) -> Reply:
        chunks = []
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            b = line.encode() if isinstance(line, str) else line
            chunks.append(b if b.endswith(b"\n") else b + b"\n")
        return cls(headers=[("content-type", "application/x-ndjson")], chunks=chunks,
                   framing="chunked", **kw)

    @classmethod
    def parse(cls, text: str | bytes, **kw: Any) -> Reply:
        """A wire.md case: `HTTP/1.1 429 Too Many Requests`, headers, blank line, body.

        Streams (text/event-stream, x-ndjson) become chunked, one HTTP chunk per event/line.
        """
        raw = text.encode() if isinstance(text, str) else text
        raw = raw.lstrip(b"\n")
        head, _, body = raw.partition(b"\n\n")
        lines = head.decode().split("\n")
        _, status, *reason = lines[0].rstrip("\r").split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.rstrip("\r").partition(":")
            headers.append((name.strip(), value.strip()))
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        reply = cls(status=int(status), headers=headers, body=body,
                    reason=reason[0] if reason else "")
        if "event-stream" in ctype:
            reply = replace(reply, chunks=_split_events(body), framing="chunked")
        elif "ndjson" in ctype:
            reply = replace(reply, chunks=[ln + b"\n" for ln in body.split(b"\n") if ln],
                            framing="chunked")
        elif body.endswith(b"\n"):  # the line break before a markdown fence is not body
            reply = replace(reply, body=body[:-1])
        return replace(reply, **kw) if kw else reply

    # --- wire ---------------------------------------------------------------------
    def head_bytes(self) -> bytes:
        reason = self.reason
        if reason is None:
            try:
                reason = http.HTTPStatus(self.status).phrase
            except ValueError:
                reason = ""
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        names = {k.lower() for k, _ in self.headers}
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self._framing() == "chunked" and "transfer-encoding" not in names:
            lines.append("transfer-encoding: chunked")
        if self._framing() == "length" and "content-length" not in names:
            lines.append(f"content-length: {len(self.body_bytes())}")
        if (self._framing() == "close" or self.cut) and "connection" not in names:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def body_bytes(self) -> bytes:
        return b"".join(self.chunks) if self.chunks is not None else self.body

    def _framing(self) -> str:
        if self.chunk_size and self.framing == "length":
            return "chunked"
        return self.framing

    def body_pieces(self) -> list[bytes]:
        if self.chunk_size:
            data = self.body_bytes()
            return [data[i : i + self.chunk_size] for i in range(0, len(data), self.chunk_size)]
        if self.chunks is not None:
            return list(self.chunks)
        return [self.body] if self.body else []


def _split_events(raw: bytes) -> list[bytes]:
    """Split an SSE body after each blank line (any line ending), keeping every byte."""
    out, start, i = [], 0, 0
    while True:
        j = min((k for k in (raw.find(b"\n\n", i), raw.find(b"\r\n\r\n", i)) if k >= 0), default=-1)
        if j < 0:
            break
        end = j + (2 if raw[j:j + 2] == b"\n\n" else 4)
        out.append(raw[start:end])
        start = i = end
    if start < len(raw):
        out.append(raw[start:])
    return out


@dataclass
class Match:
    method: str | None = None
    path: str | None = None  # prefix of the path (no query)
    model: str | None = None
    when: Callable[[RecordedRequest], bool] | None = None

    def fits(self, req: RecordedRequest) -> bool:
        return (
            (self.method is None or req.method == self.method.upper())
            and (self.path is None or req.path.startswith(self.path))
            and (self.model is None or req.model == self.model)
            and (self.when is None or bool(self.when(req)))
        )
