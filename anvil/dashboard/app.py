"""The Starlette application: a token on every request, GET only, loopback only.

The token is generated per `anvil dashboard` process and printed in its URL; a
request without it (query `token=`) gets 401, so another local user or a web
page in the browser cannot read the runs. The Host header must name loopback,
so a DNS-rebinding page cannot reach the server under another name either.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from anvil.dashboard import pages
from anvil.dashboard.data import Dashboard

STATIC = Path(__file__).with_name("static")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
KEEPALIVE_S = 15.0
POLL_S = 0.25  # how often the live stream looks at the run's event log
_CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def create_app(dash: Dashboard, token: str, *, poll_s: float = POLL_S) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    link = pages.Links(token)

    def q(request: Request, name: str) -> str | None:
        return request.query_params.get(name) or None

    async def index(request: Request) -> Response:
        html = await asyncio.to_thread(pages.run_list, dash, link, repo=q(request, "repo"),
                                       status=q(request, "status"), since=q(request, "since"),
                                       until=q(request, "until"))
        return HTMLResponse(html)

    async def run_page(request: Request) -> Response:
        view = await asyncio.to_thread(dash.run, request.path_params["repo"], request.path_params["run"])
        if view is None:
            return HTMLResponse(pages.not_found(link, "no such run"), status_code=404)
        return HTMLResponse(pages.run_page(view, link))

    async def costs(request: Request) -> Response:
        html = await asyncio.to_thread(pages.costs_page, dash, link, repo=q(request, "repo"),
                                       since=q(request, "since"), until=q(request, "until"),
                                       demo=q(request, "demo") == "1")
        return HTMLResponse(html)

    async def memory(request: Request) -> Response:
        return HTMLResponse(await asyncio.to_thread(pages.memory_page, dash, link))

    async def events(request: Request) -> Response:
        repo = dash.repo(request.path_params["repo"])
        run_id = request.path_params["run"]
        if repo is None or run_id not in repo.store().ids():
            return PlainTextResponse("no such run\n", status_code=404)
        try:
            start = max(int(request.query_params.get("from", "0")), 0)
        except ValueError:
            start = 0
        stream = _event_stream(dash, repo.id, repo.store().root / run_id, start, poll_s, request.is_disconnected)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        return Response(path.read_bytes(), media_type=_CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    routes = [Route("/", index), Route("/run/{repo}/{run}", run_page), Route("/run/{repo}/{run}/events", events),
              Route("/costs", costs), Route("/memory", memory), Route("/static/{name}", static)]
    return _Guard(Starlette(routes=routes), token)


_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
                                         b"img-src 'self'; connect-src 'self'; form-action 'self'; "
                                         b"frame-ancestors 'none'")]


class _Guard:
    """ASGI wrapper: loopback Host, the token, GET/HEAD only; then the safety headers on every answer.
    (Plain ASGI, not BaseHTTPMiddleware, so the event stream is not buffered or cut.)"""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = None
        if request.url.hostname not in LOOPBACK_HOSTS:
            refusal = PlainTextResponse("forbidden host\n", status_code=403)
        elif not secrets.compare_digest(request.query_params.get("token", ""), self.token):
            refusal = PlainTextResponse("missing or wrong token: use the URL `anvil dashboard` printed\n",
                                        status_code=401)
        elif request.method not in ("GET", "HEAD"):
            refusal = PlainTextResponse("read-only\n", status_code=405)
        if refusal is not None:
            return await refusal(scope, receive, send)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _state_payload(dash: Dashboard, repo_id: str, run_dir: Path) -> str | None:
    view = dash.run(repo_id, run_dir.name)
    if view is None:
        return None
    return json.dumps({"status": view.status, "cost": pages.cost_text(view.dollars, view.unpriced),
                       "stages": {s.name: {"status": s.status, "model": s.model, "cost": pages.stage_cost(s)}
                                  for s in view.stages}})


async def _event_stream(dash: Dashboard, repo_id: str, run_dir: Path, start: int, poll_s: float,
                        disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    """Tail events.jsonl from line `start`: each new line an SSE message, a state snapshot after
    each batch, `end` once the run has stopped and its log has been read to the end."""
    log = run_dir / "events.jsonl"
    state = run_dir / "state.json"
    offset, seen, state_mtime, idle = 0, 0, -1.0, 0.0
    partial = b""
    yield "retry: 2000\n\n"
    while not await disconnected():
        new = False
        try:
            with log.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            data = partial + chunk
            *lines, partial = data.split(b"\n")  # a line still being written waits for its newline
            for line in lines:
                seen += 1
                if seen <= start or not line.strip():
                    continue
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    continue
                new = True
                yield f"data: {line.decode('utf-8', 'replace')}\n\n"
        try:
            mtime = state.stat().st_mtime
        except FileNotFoundError:
            mtime = state_mtime
        if new or mtime != state_mtime:
            state_mtime = mtime
            payload = await asyncio.to_thread(_state_payload, dash, repo_id, run_dir)
            if payload is not None:
                yield f"event: state\ndata: {payload}\n\n"
                if json.loads(payload)["status"] != "running":
                    yield "event: end\ndata: {}\n\n"
                    return
            idle = 0.0
        else:
            idle += poll_s
            if idle >= KEEPALIVE_S:  # a comment line keeps proxies and the browser from timing out
                idle = 0.0
                yield ": keep-alive\n\n"
        await asyncio.sleep(poll_s)
