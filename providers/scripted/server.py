"""The scripted vendor server: a real HTTP/1.1 server on 127.0.0.1 that sends byte-exact replies.

Used by every provider test, the pipeline end-to-end tests and `anvil demo`. Written on raw
sockets (socketserver, one thread per connection, keep-alive) so a script controls every byte:
fixed bodies with content-length, chunked streams (one HTTP chunk per SSE event, or per N
bytes), a stream cut mid-body (socket closed without the `0\\r\\n\\r\\n` terminator), stalls,
non-standard statuses with empty reason phrases (`HTTP/1.1 529 `), odd 200 bodies.

    from anvil.providers.scripted.server import ScriptedServer, Reply, Match

    with ScriptedServer(time_scale=0.01) as srv:          # port 0: a free port
        srv.url                                           # "http://127.0.0.1:PORT"
        srv.add(Reply.parse(CASE_TEXT))                   # served once, to any request
        srv.queue([Reply.parse(C07), Reply.parse(C01)], match="/v1/messages")  # in order
        srv.add(Reply.json({"ok": 1}), match=Match(path="/v1/models"), times=None)  # forever
        srv.add_responder(fn, match=Match(model="m1"))    # fn(RecordedRequest) -> Reply
        ...
        srv.requests        # every RecordedRequest: method, path, query, headers, body, json
        srv.unmatched       # requests nothing was scripted for (they got HTTP 599)

Matching: `match` is a `Match` (method, path prefix, model name from the JSON body or the
Gemini path, optional predicate `when(req) -> bool`), a path-prefix string, or None (any
request). Routes are tried in the order they were added; the first one whose match fits and
that still has something to serve answers. `add`/`queue` replies are served `times` times
each (default once; None = forever); responders answer forever unless `times` is given.
An unmatched request gets `HTTP 599` with a JSON error naming what arrived, so a test
fails loudly (and `srv.unmatched` lists it). `Reply`, `RecordedRequest` and `Match` live in
reply.py and are re-exported here.

`Reply` fields: status, reason (None = the standard phrase, "" = none), headers (in order,
sent as given), body, framing ("length" | "chunked" | "close"), chunks (one HTTP chunk
each), chunk_size (split body into chunks of that many bytes, e.g. 1 for C69), delay
(before the head), chunk_delay (before each chunk), stall (after the last chunk, before
the end), cut (close without finishing the body). Delays are multiplied by the server's
`time_scale`. Builders: `Reply.json(obj_or_text, status=, headers=)`,
`Reply.sse(body, headers=)` (chunked, one chunk per event), `Reply.ndjson(lines)`,
`Reply.parse(text)` (a wire.md case written as head + blank line + body).

Standalone: `python -m anvil.providers.scripted.server --port 0 --script FILE.yaml` prints
`SCRIPTED_SERVER_URL=http://127.0.0.1:PORT` and serves until interrupted; see
`load_script` for the YAML shape.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from anvil.providers.scripted.reply import Match, RecordedRequest, Reply

__all__ = ["ScriptedServer", "Reply", "Match", "RecordedRequest", "load_script"]

_MAX_HEAD = 65536


@dataclass
class _Route:
    match: Match
    replies: deque = field(default_factory=deque)  # [Reply, remaining or None]
    responder: Callable[[RecordedRequest], Reply] | None = None
    remaining: int | None = None  # for a responder

    def take(self, req: RecordedRequest) -> Reply | None:
        if self.responder is not None:
            if self.remaining is not None:
                if self.remaining <= 0:
                    return None
                self.remaining -= 1
            return self.responder(req)
        while self.replies:
            entry = self.replies[0]
            if entry[1] is None:
                return entry[0]
            if entry[1] > 0:
                entry[1] -= 1
                if entry[1] == 0:
                    self.replies.popleft()
                return entry[0]
            self.replies.popleft()
        return None


def _as_match(match: Match | str | None) -> Match:
    if match is None:
        return Match()
    if isinstance(match, str):
        return Match(path=match)
    return match


class _Conn:
    """Byte reading on a socket that gives up when the server stops."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock, self.stop, self.buf = sock, stop, bytearray()
        sock.settimeout(0.2)

    def _fill(self) -> bool:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
            return True
        return False

    def read_until(self, sep: bytes) -> bytes | None:
        while (i := self.buf.find(sep)) < 0:
            if len(self.buf) > _MAX_HEAD or not self._fill():
                return None
        out = bytes(self.buf[:i])
        del self.buf[: i + len(sep)]
        return out

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_request(self) -> RecordedRequest | None:
        head = self.read_until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size_line := self.read_until(b"\r\n")) is not None:
                size = int(size_line.split(b";")[0] or b"0", 16)
                data = self.read_exact(size + 2)
                if data is None:
                    return None
                if size == 0:
                    break
                parts.append(data[:-2])
            body = b"".join(parts)
        else:
            body = self.read_exact(int(headers.get("content-length", "0") or 0)) or b""
        url = urlsplit(target)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return RecordedRequest(method.upper(), url.path, dict(parse_qsl(url.query)), headers, body, parsed)


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, owner._stop)
        with owner._lock:
            owner._conns.add(sock)
        try:
            self._serve(owner, sock, conn)
        finally:
            with owner._lock:
                owner._conns.discard(sock)

    def _serve(self, owner: ScriptedServer, sock: socket.socket, conn: _Conn) -> None:
        while not owner._stop.is_set():
            req = conn.read_request()
            if req is None:
                return
            reply = owner._reply_for(req)
            if not owner._send(sock, reply) or reply.cut or reply._framing() == "close":
                return
            if req.headers.get("connection", "").lower() == "close":
                return


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of concurrent clients (benchmarks/serve_load.py,
    # 50 at once) overflowed it and some connections were reset
    request_queue_size = 256
    # Daemon threads, so a server nobody stopped never keeps a process alive; stop()
    # still joins every connection thread it started.
    daemon_threads = True
    block_on_close = False
    owner: ScriptedServer

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  daemon=True, name=f"scripted-conn-{self.owner.port}")
        with self.owner._lock:
            self.owner._threads = [t for t in self.owner._threads if t.is_alive()] + [thread]
        thread.start()


class ScriptedServer:
    """See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, time_scale: float = 1.0) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the scripted server only listens on loopback")
        self.host, self.port, self.time_scale = "127.0.0.1", port, time_scale
        self.requests: list[RecordedRequest] = []
        self.unmatched: list[RecordedRequest] = []
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> ScriptedServer:
        self._server = _TCPServer((self.host, self.port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"scripted-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop.set()
        with self._lock:
            for sock in self._conns:  # wake the connection threads now, not at their next poll
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- scripting --------------------------------------------------------------------
    def add(self, reply: Reply, match: Match | str | None = None, *, times: int | None = 1) -> None:
        with self._lock:
            self._routes.append(_Route(_as_match(match), deque([[reply, times]])))

    def queue(self, replies: Iterable[Reply], match: Match | str | None = None) -> None:
        with self._lock:
            self._routes.append(_Route(_as_match(match), deque([r, 1] for r in replies)))

    def add_responder(self, fn: Callable[[RecordedRequest], Reply], match: Match | str | None = None,
                      *, times: int | None = None) -> None:
        with self._lock:
            self._routes.append(_Route(_as_match(match), responder=fn, remaining=times))

    def clear(self) -> None:
        with self._lock:
            self._routes.clear()
            self.requests.clear()
            self.unmatched.clear()

    # --- serving ------------------------------------------------------------------------
    def _reply_for(self, req: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(req)
            for route in self._routes:
                if route.match.fits(req):
                    reply = route.take(req)
                    if reply is not None:
                        return reply
            self.unmatched.append(req)
        what = f"{req.method} {req.path}" + (f" model={req.model}" if req.model else "")
        return Reply.json({"error": {"message": f"scripted server: nothing scripted for {what}",
                                     "type": "scripted_unmatched", "code": "scripted_unmatched"}},
                          status=599, reason="Unscripted")

    def _sleep(self, seconds: float) -> bool:
        """Sleep `seconds * time_scale`; False when the server is stopping."""
        if seconds > 0:
            return not self._stop.wait(seconds * self.time_scale)
        return not self._stop.is_set()

    def _send(self, sock: socket.socket, reply: Reply) -> bool:
        try:
            if not self._sleep(reply.delay):
                return False
            sock.sendall(reply.head_bytes())
            chunked = reply._framing() == "chunked"
            for piece in reply.body_pieces():
                if not self._sleep(reply.chunk_delay):
                    return False
                if chunked:
                    if not piece:
                        continue
                    sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    sock.sendall(piece)
            if not self._sleep(reply.stall):
                return False
            if reply.cut:
                sock.shutdown(socket.SHUT_RDWR)
                return False
            if chunked:
                sock.sendall(b"0\r\n\r\n")
            return True
        except OSError:
            return False


def load_script(path: str, server: ScriptedServer) -> None:
    """Load a YAML script into `server`.

    ```yaml
    time_scale: 1.0
    routes:
      - match: {method: POST, path: /v1/messages, model: claude-x}   # all optional
        replies:                                  # served in order, once each
          - {status: 429, headers: {retry-after: "2"}, body: '{"error": {...}}'}
          - {case: "HTTP/1.1 200 OK\\ncontent-type: application/json\\n\\n{...}"}
      - match: {path: /v1/chat/completions}
        model:                                    # a ScriptedModel (see model.py)
          answers: ["first answer", "second answer"]
          usage: {input_tokens: 100, output_tokens: 20}
    ```
    """
    import yaml

    from anvil.providers.scripted.model import ScriptedModel

    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    server.time_scale = float(doc.get("time_scale", server.time_scale))
    for route in doc.get("routes") or []:
        m = route.get("match") or {}
        match = Match(method=m.get("method"), path=m.get("path"), model=m.get("model"))
        if "model" in route:
            server.add_responder(ScriptedModel.from_dict(route["model"]), match)
            continue
        replies = []
        for r in route.get("replies") or []:
            if "case" in r:
                replies.append(Reply.parse(r["case"]))
            else:
                replies.append(Reply.json(r.get("body", ""), status=int(r.get("status", 200)),
                                          headers=list((r.get("headers") or {}).items())))
        server.queue(replies, match)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m anvil.providers.scripted.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="YAML script (see load_script)")
    parser.add_argument("--time-scale", type=float, default=None)
    args = parser.parse_args(argv)
    server = ScriptedServer(port=args.port)
    if args.script:
        load_script(args.script, server)
    if args.time_scale is not None:
        server.time_scale = args.time_scale
    server.start()
    print(f"SCRIPTED_SERVER_URL={server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
