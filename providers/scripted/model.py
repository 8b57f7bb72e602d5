"""The scripted model: plain answers in, each protocol's exact wire format out.

The pipeline tests and `anvil demo` script *what the model says*; this module renders it
in the wire format of whichever protocol the request arrived on, streamed or not as the
request asked, with usage in that protocol's own convention:

    from anvil.providers.scripted.model import ScriptedModel, ScriptedAnswer, ScriptedFailure

    model = ScriptedModel(
        ["first answer", "second answer"],           # served in turn (the last one repeats)
        usage={"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 1024},
        failures=[ScriptedFailure("rate_limit", retry_after=30)],   # served first, once each
    )
    srv.add_responder(model, match=Match(model="claude-x"))   # or Match(path=...)

`answers` may be a text, a list of texts / `ScriptedAnswer`s, or a function
`(RecordedRequest) -> str | ScriptedAnswer`. Usage numbers are in anvil's normalised
convention (types.Usage: input includes cache parts, output includes reasoning); each
renderer converts them (Anthropic: input without the cache parts). Missing numbers are
estimated from the request and answer sizes (~4 characters a token).

Renderer contract (one module per protocol, dispatched by path in `render_for`):

    anvil/providers/scripted/wire_<protocol>.py
        def render(req: RecordedRequest, answer: ScriptedAnswer) -> Reply
            # the success reply: SSE / NDJSON stream when req.stream, else one JSON body
        def render_error(req: RecordedRequest, failure: ScriptedFailure) -> Reply
            # failure.kind -> that protocol's status, headers (retry-after) and error body;
            # kind "stream_cut" -> a stream that stops mid-body: cut_stream(render(req,
        # cut_answer(req)), keep=N) with N chunks that include some output

    paths:  /v1/messages                         -> wire_anthropic
            .../chat/completions (incl. /api/v1) -> wire_openai
            ...:generateContent / :streamGenerateContent -> wire_gemini   (providers B)
            /api/chat                            -> wire_ollama            (providers B)

`text_pieces(text)` splits an answer into realistic word-sized deltas for streams.

Like the real services, the Anthropic renderer refuses a request without
`anthropic-version` (400), without `x-api-key` / `Authorization` (401), and one with
`temperature` / `top_p` / `top_k` under version 2026-10-21 (400): give scripted providers a
dummy key. OpenRouter paths (`/api/v1/...`) get processing comments and `usage.cost`.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from anvil.providers.scripted.server import RecordedRequest, Reply

__all__ = [
    "ScriptedAnswer",
    "ScriptedToolCall",
    "ScriptedFailure",
    "ScriptedModel",
    "render_for",
    "text_pieces",
    "protocol_for",
]


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None  # generated when None


@dataclass(frozen=True)
class ScriptedAnswer:
    """What the model says, and what it reports. Token counts: anvil's normalised convention."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    finish: str | None = None  # "stop" | "length" | "tool_calls"; derived when None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int | None = None
    model: str | None = None  # the served model id; default: the requested one
    cost: Decimal | None = None  # rendered as OpenRouter `usage.cost` when set
    request_id: str | None = None

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.tool_calls else "stop")


@dataclass(frozen=True)
class ScriptedFailure:
    """A failure served instead of an answer.

    kind: an ErrorKind ("rate_limit", "overloaded", "server", "quota", "auth",
    "model_not_found", "context_overflow", "invalid_request", "content_policy") or
    "stream_cut" (a stream closed mid-body). `times`: how many requests get it.
    """

    kind: str
    retry_after: float | None = None
    message: str | None = None
    times: int = 1


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def complete_usage(req: RecordedRequest, answer: ScriptedAnswer) -> ScriptedAnswer:
    """Fill in missing token counts and the served model."""
    reasoning = answer.reasoning_tokens
    if reasoning is None:
        reasoning = estimate_tokens(answer.reasoning) if answer.reasoning else 0
    output = answer.output_tokens
    if output is None:
        calls = "".join(json.dumps(c.arguments) + c.name for c in answer.tool_calls)
        output = estimate_tokens(answer.text + calls) + reasoning
    inp = answer.input_tokens
    if inp is None:
        inp = estimate_tokens(req.body.decode("utf-8", "replace")) + answer.cache_read_tokens
    return replace(answer, input_tokens=inp, output_tokens=output, reasoning_tokens=reasoning,
                   model=answer.model or req.model or "scripted-model")


_PIECE = re.compile(r"\s*\S+\s*|\s+")


def text_pieces(text: str) -> list[str]:
    """Word-sized deltas that join back to `text` exactly."""
    return _PIECE.findall(text) if text else []


def protocol_for(path: str) -> str | None:
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith("/chat/completions"):
        return "openai"
    if ":generateContent" in path or ":streamGenerateContent" in path:
        return "gemini"
    if path.endswith("/api/chat"):
        return "ollama"
    return None


def _renderer(req: RecordedRequest) -> Any:
    protocol = protocol_for(req.path)
    if protocol is None:
        raise LookupError(f"scripted model: no protocol speaks {req.method} {req.path}")
    try:
        return importlib.import_module(f"anvil.providers.scripted.wire_{protocol}")
    except ModuleNotFoundError as exc:
        raise LookupError(f"scripted model: no renderer for the {protocol} protocol yet "
                          f"(anvil/providers/scripted/wire_{protocol}.py: {exc})") from None


def cut_stream(full: Reply, keep: int) -> Reply:
    """`full` (a rendered stream) cut after `keep` chunks: the connection closes mid-body."""
    return Reply(status=200, headers=full.headers, chunks=(full.chunks or [full.body])[:keep],
                 framing="chunked", cut=True)


def cut_answer(req: RecordedRequest) -> ScriptedAnswer:
    """The answer a "stream_cut" failure starts to send."""
    return ScriptedAnswer(text="This answer is cut off", input_tokens=10, output_tokens=5,
                          model=req.model or "scripted-model")


def _unrenderable(message: str) -> Reply:
    return Reply.json({"error": {"message": message, "type": "scripted_unrenderable"}},
                      status=501)


def render_for(req: RecordedRequest, answer: ScriptedAnswer | ScriptedFailure) -> Reply:
    """Render an answer or a failure in the protocol of `req`."""
    try:
        module = _renderer(req)
    except LookupError as exc:
        return _unrenderable(str(exc))
    if isinstance(answer, ScriptedFailure):
        return module.render_error(req, answer)
    return module.render(req, complete_usage(req, answer))


AnswerSource = str | ScriptedAnswer | list | Callable[[RecordedRequest], str | ScriptedAnswer]


class ScriptedModel:
    """A callable responder for `ScriptedServer.add_responder` (see the module docstring)."""

    def __init__(
        self,
        answers: AnswerSource,
        *,
        usage: dict[str, int] | None = None,
        failures: list[ScriptedFailure] | tuple[ScriptedFailure, ...] = (),
        model: str | None = None,
        cost: Decimal | str | None = None,
    ) -> None:
        self._answers = answers
        self._usage = dict(usage or {})
        self._failures: list[tuple[ScriptedFailure, list[int]]] = [(f, [f.times]) for f in failures]
        self._model = model
        self._cost = Decimal(str(cost)) if cost is not None else None
        self._turn = 0
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []  # what this model was asked

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ScriptedModel:
        failures = [ScriptedFailure(**f) for f in doc.get("failures") or []]
        return cls(doc.get("answers", ""), usage=doc.get("usage"), failures=failures,
                   model=doc.get("model"), cost=doc.get("cost"))

    def _next_answer(self, req: RecordedRequest) -> ScriptedAnswer:
        src = self._answers
        if callable(src) and not isinstance(src, (str, ScriptedAnswer)):
            got = src(req)
        elif isinstance(src, list):
            got = src[min(self._turn, len(src) - 1)] if src else ""
        else:
            got = src
        self._turn += 1
        answer = got if isinstance(got, ScriptedAnswer) else ScriptedAnswer(text=str(got))
        extra: dict[str, Any] = {k: v for k, v in self._usage.items()
                                 if getattr(answer, k, None) in (None, 0)}
        if self._model and not answer.model:
            extra["model"] = self._model
        if self._cost is not None and answer.cost is None:
            extra["cost"] = self._cost
        return replace(answer, **extra) if extra else answer

    def __call__(self, req: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(req)
            for failure, left in self._failures:
                if left[0] > 0:
                    left[0] -= 1
                    return render_for(req, failure)
            answer = self._next_answer(req)
        return render_for(req, answer)
