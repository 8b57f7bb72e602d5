"""One served request: preset -> session order -> chain-walker (in a worker thread) -> the client.

The walker is anvil's own (one instance for the server's lifetime, so burns are shared by
every client and expire as in a run); every attempt is a ledger row stamped with the
server's run id, the repository `anvil serve` runs in, the client's user agent, the session
and the preset. The walker is synchronous (the adapters are): each request gets a worker
thread, and streamed bytes cross back to the event loop through a `Channel`.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from anvil.errors import AnvilError
from anvil.routing.request import stage_request
from anvil.routing.walker import CallSite, ChainExhausted, RequestRejected
from anvil.serve.channel import Channel
from anvil.serve.dialect import ServeError
from anvil.serve.sessions import session_key
from anvil.serve.verify import problem
from anvil.serve.window import END, ClientGone, CommittedFailure, CommitWindow

if TYPE_CHECKING:
    from anvil.providers.types import ChatRequest
    from anvil.routing.walker import Walker, WalkResult
    from anvil.serve.dialect import ClientRequest, Dialect
    from anvil.serve.presets import Preset, Presets
    from anvil.serve.sessions import SessionTable

STAGE = "serve"  # the ledger's stage column for served traffic (the preset has its own column)
_QUIET = ("\x00", "\x1b", "\r", "\n")


@dataclass(frozen=True)
class WindowSettings:
    max_chars: int = 2048  # characters of answer held back before the stream commits
    max_seconds: float = 4.0  # ... or seconds after the attempt's first event


@dataclass(frozen=True)
class Answer:
    """A whole response: an answer or an error, as JSON."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class Stream:
    """A committed stream: its headers and the bytes still to come (the first chunk included)."""

    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class Prepared:
    preset: Preset
    chain: list[Any]  # ResolvedModel, the session's model first
    request: ChatRequest
    session: str
    site: CallSite


def _clean(text: str, limit: int = 200) -> str:
    for ch in _QUIET:
        text = text.replace(ch, " ")
    return text.strip()[:limit]


def serve_error(exc: BaseException) -> ServeError:
    """A walker (or gateway) failure, in the neutral vocabulary the dialects render."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, CommittedFailure):
        return ServeError("server", f"anvil serve: {exc}; the answer above is incomplete "
                                    "(no other model's output is mixed into it)")
    if isinstance(exc, RequestRejected):
        return ServeError("invalid_request", exc.message)
    if isinstance(exc, ChainExhausted):
        kinds = {a.kind for a in exc.attempts if a.outcome == "error"}
        if kinds and kinds <= {"rate_limit", "quota"}:
            return ServeError("rate_limit", exc.message)
        if kinds & {"rate_limit", "overloaded"}:
            return ServeError("overloaded", exc.message)
        return ServeError("server", exc.message)
    if isinstance(exc, AnvilError):
        return ServeError("server", exc.message)
    traceback.print_exception(exc, file=sys.stderr)
    return ServeError("server", f"anvil serve: internal error ({type(exc).__name__}); see the server's log",
                      status=500)


class Gateway:
    def __init__(self, presets: Presets, walker: Walker, sessions: SessionTable, *, run_id: str, repo: str,
                 window: WindowSettings = WindowSettings(), threads: int = 256) -> None:
        self.presets, self.walker, self.sessions = presets, walker, sessions
        self.run_id, self.repo, self.window = run_id, repo, window
        # one thread per request under way: a blocked stream must not starve the others
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="anvil-serve")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ preparing a call

    def prepare(self, creq: ClientRequest, headers: Mapping[str, str]) -> Prepared:
        preset = self.presets.get(creq.model)
        policy = self.presets.config.policy.stage(preset.policy)
        c = creq.chat
        # the policy's timeout and effort, the client's messages, tools, limit and sampling
        chat = replace(stage_request(policy, c.messages, json_schema=c.json_schema, schema_name=c.schema_name,
                                     effort=c.reasoning_effort, max_output_tokens=c.max_output_tokens, tools=c.tools),
                       temperature=c.temperature, stop=c.stop, cache_system=c.cache_system)
        session = session_key(headers, creq.model, chat)
        chain = self.sessions.order(session, preset.chain, lambda rm: rm.id)
        site = CallSite(run_id=self.run_id, stage=STAGE, repo=self.repo,
                        client=_clean(headers.get("user-agent") or "unknown"), session=session, preset=preset.name)
        return Prepared(preset, chain, chat, session, site)

    def _walk(self, p: Prepared, window: CommitWindow | None) -> WalkResult:
        walk = self.walker.call(p.chain, p.request, p.site,
                                on_event=window.on_event if window is not None else None,
                                verify=partial(problem, request=p.request),
                                on_attempt=(lambda rm: window.attempt(rm.id)) if window is not None else None)
        self.sessions.served(p.session, walk.model.id)
        return walk

    # ------------------------------------------------------------ answering

    async def complete(self, dialect: Dialect, creq: ClientRequest, headers: Mapping[str, str]) -> Answer:
        """A whole (non-streamed) answer, or the error in the client's shape."""
        try:
            p = self.prepare(creq, headers)
            walk = await asyncio.get_running_loop().run_in_executor(self._pool, self._walk, p, None)
        except BaseException as exc:
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
                raise
            return _refused(dialect, serve_error(exc))
        return Answer(200, dialect.response(walk.result, walk.model.id, creq),
                      {"x-anvil-model": walk.model.id, "x-anvil-session": p.session})

    async def stream(self, dialect: Dialect, creq: ClientRequest, headers: Mapping[str, str]) -> Answer | Stream:
        """A streamed answer. Before anything is committed a failure is a plain HTTP error
        (an `Answer`); after, the stream itself says it (see `window`)."""
        try:
            p = self.prepare(creq, headers)
        except ServeError as err:
            return _refused(dialect, err)
        loop = asyncio.get_running_loop()
        channel = Channel(loop)
        window = CommitWindow(lambda model: dialect.renderer(model, creq), channel.put,
                              max_chars=self.window.max_chars, max_seconds=self.window.max_seconds)

        def work() -> None:
            try:
                walk = self._walk(p, window)
            except ClientGone:
                return
            except BaseException as exc:  # the worker thread must report everything
                window.fail(serve_error(exc))
                return
            window.finish(walk.result)

        loop.run_in_executor(self._pool, work)
        try:
            pending = await channel.take()
        except asyncio.CancelledError:
            window.gone = True
            raise
        if isinstance(pending[0], ServeError):
            return _refused(dialect, pending[0])

        async def body() -> AsyncIterator[bytes]:
            items = pending
            try:
                while True:
                    chunks = [i for i in items if isinstance(i, bytes)]
                    if chunks:
                        yield b"".join(chunks)  # what piled up while the client was being written to
                    if any(i is END for i in items):
                        return
                    items = await channel.take()
            finally:
                window.gone = True  # the client left (or the stream ended): stop the upstream

        return Stream({"x-anvil-model": window.model, "x-anvil-session": p.session}, body())


def _refused(dialect: Dialect, err: ServeError) -> Answer:
    headers = {"retry-after": f"{err.retry_after:.0f}"} if err.retry_after is not None else {}
    return Answer(dialect.error_status(err), dialect.error_body(err), headers)
