"""Ollama native adapter: `POST /api/chat`, NDJSON streaming. wire.md section 6.1.

Ollama's traps (wire.md TL;DR 11-12) and what this adapter does about them:

- the default context window is small and a longer prompt is **silently
  truncated**: every request carries `options.num_ctx` (the request's
  `context_window`, else `options.num_ctx` of the provider settings, else
  8192), and a `prompt_eval_count` that reaches num_ctx is reported as
  `context_overflow` instead of handing back an answer to half a prompt;
- the stream is NDJSON; `done: true` carries the metrics (durations in ns),
  and EOF before it is `stream_broken`;
- an error in the middle of a stream is a `{"error": "..."}` line under HTTP 200;
- tool arguments are objects; tool calls finish with `done_reason: "stop"`, so
  the finish reason comes from the message (`tool_calls`);
- an unknown model is a 404 whose fix is `ollama pull <model>`: the message says so.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anvil.providers.errors import ErrorInfo, classify, is_context_overflow, parse_error_body
from anvil.providers.http import Exchange, HttpClient, ListedModel
from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.ndjson import iter_ndjson
from anvil.providers.types import (
    ChatRequest,
    ChatResult,
    ErrorKind,
    FinishReason,
    OnEvent,
    ProviderSettings,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
)

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
DEFAULT_NUM_CTX = 8192
# How close to num_ctx prompt_eval_count may come before we call it truncation:
# Ollama cuts an overlong prompt down to (about) num_ctx tokens.
TRUNCATION_MARGIN = 16


def num_ctx_for(request: ChatRequest, settings: ProviderSettings) -> int:
    """The window to ask for; `options.max_num_ctx` caps it (KV-cache memory grows with it)."""
    wanted = int(request.context_window or settings.options.get("num_ctx") or DEFAULT_NUM_CTX)
    cap = settings.options.get("max_num_ctx")
    return min(wanted, int(cap)) if cap else wanted


def think_value(request: ChatRequest, settings: ProviderSettings) -> bool | str | None:
    """`think`: an effort string for models that take one (gpt-oss), else a bool."""
    if "think" in settings.options:
        return settings.options["think"]
    if request.reasoning_effort is None:
        return None
    if request.model.startswith("gpt-oss"):
        return "low" if request.reasoning_effort == "minimal" else request.reasoning_effort
    return request.reasoning_effort != "minimal"


def build_body(request: ChatRequest, settings: ProviderSettings, *, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    names_by_id: dict[str, str] = {}
    for m in request.messages:
        if m.role == "tool":
            name = m.name or names_by_id.get(m.tool_call_id or "", "")
            messages.append({"role": "tool", "tool_name": name, "content": m.content})
            continue
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            msg["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
            names_by_id.update({c.id: c.name for c in m.tool_calls})
        messages.append(msg)
    options: dict[str, Any] = {"num_ctx": num_ctx_for(request, settings), "num_predict": request.max_output_tokens}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.stop:
        options["stop"] = list(request.stop)
    body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream, "options": options}
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    if request.json_schema is not None:
        body["format"] = request.json_schema
    think = think_value(request, settings)
    if think is not None:
        body["think"] = think
    if settings.options.get("keep_alive") is not None:
        body["keep_alive"] = settings.options["keep_alive"]
    return body


@dataclass
class Metrics:
    """The `done: true` line's numbers; durations converted from ns to seconds."""

    prompt_eval_count: int = 0
    eval_count: int = 0
    total_duration_s: float = 0.0
    load_duration_s: float = 0.0
    prompt_eval_duration_s: float = 0.0
    eval_duration_s: float = 0.0

    @property
    def tokens_per_second(self) -> float | None:
        return self.eval_count / self.eval_duration_s if self.eval_duration_s > 0 else None

    @classmethod
    def from_done(cls, line: dict[str, Any]) -> Metrics:
        ns = lambda key: int(line.get(key) or 0) / 1e9  # noqa: E731
        return cls(
            prompt_eval_count=int(line.get("prompt_eval_count") or 0),
            eval_count=int(line.get("eval_count") or 0),
            total_duration_s=ns("total_duration"),
            load_duration_s=ns("load_duration"),
            prompt_eval_duration_s=ns("prompt_eval_duration"),
            eval_duration_s=ns("eval_duration"),
        )


class LineFolder:
    """Folds /api/chat objects (NDJSON lines, or the one non-stream body) into a result."""

    def __init__(self, ex: Exchange, model: str, num_ctx: int, on_event: OnEvent | None,
                 clock: Callable[[], float], t0: float) -> None:
        self.ex, self.model, self.num_ctx, self.on_event, self.clock, self.t0 = ex, model, num_ctx, on_event, clock, t0
        self.ttft: float | None = None
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: list[ToolCall] = []
        self.done: dict[str, Any] | None = None
        self.served_model: str | None = None
        self.metrics: Metrics | None = None

    def _emit(self, event: Any) -> None:
        if self.ttft is None:
            self.ttft = self.clock() - self.t0
            self.ex.mark_output()
        if self.on_event is not None:
            self.on_event(event)

    def feed(self, line: Any) -> None:
        if not isinstance(line, dict):
            raise self.ex.fail("server", f"unexpected NDJSON value from Ollama: {str(line)[:200]!r}")
        if "error" in line:  # C60: an error line under HTTP 200
            info = parse_error_body(json.dumps(line))
            partial = sum(map(len, self.text))
            if partial:
                info.message += f" (stream failed after {partial} chars of partial output; discarded)"
            raise self.ex.fail(classify_ollama(None, info), info)
        self.served_model = line.get("model") or self.served_model
        msg = line.get("message") or {}
        if msg.get("thinking"):
            self.thinking.append(msg["thinking"])
            self._emit(ReasoningDelta(msg["thinking"]))
        if msg.get("content"):
            self.text.append(msg["content"])
            self._emit(TextDelta(msg["content"]))
        for tc in msg.get("tool_calls") or []:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):  # some chat templates leak a JSON string: accept it
                try:
                    args = bounded_loads(args)
                except ValueError:
                    args = {"_raw": args}
            call = ToolCall(id=tc.get("id") or f"ollama-call-{len(self.calls)}", name=fn.get("name", ""),
                            arguments=args if isinstance(args, dict) else {})
            self._emit(ToolCallDelta(len(self.calls), call.name, json.dumps(call.arguments)))
            self.calls.append(call)
        if line.get("done"):
            self.done = line

    def result(self) -> ChatResult:
        if self.done is None:
            raise self.ex.fail("stream_broken", "the Ollama stream ended before its done:true line "
                                                "(truncated response)")
        self.metrics = metrics = Metrics.from_done(self.done)
        usage = Usage(input_tokens=metrics.prompt_eval_count, output_tokens=metrics.eval_count)
        if metrics.prompt_eval_count >= self.num_ctx - TRUNCATION_MARGIN:
            err = self.ex.fail(
                "context_overflow",
                f"the prompt filled the whole context window (prompt_eval_count "
                f"{metrics.prompt_eval_count} vs num_ctx {self.num_ctx}): Ollama silently truncated it, "
                f"so the answer was discarded",
            )
            err.usage = usage
            err.context_limit = self.num_ctx
            raise err
        reason: FinishReason = "length" if self.done.get("done_reason") == "length" else (
            "tool_calls" if self.calls else "stop")
        if self.on_event is not None:
            self.on_event(UsageUpdate(usage))
        return ChatResult(
            text="".join(self.text),
            finish_reason=reason,
            usage=usage,
            served_model=self.served_model or self.model,
            tool_calls=tuple(self.calls),
            reasoning_text="".join(self.thinking),
            request_id=self.ex.request_id,
            latency_s=self.clock() - self.t0,
            ttft_s=self.ttft,
        )


def classify_ollama(status: int | None, info: ErrorInfo) -> ErrorKind:
    """Ollama's `{"error": "<text>"}` bodies: no codes, only status and text."""
    low = info.message.lower()
    if status == 404 or _NOT_FOUND.search(info.message):
        return "model_not_found"
    if "does not support" in low:
        return "model_not_found"  # this model cannot do tools / thinking: the next one may
    if is_context_overflow(info) or re.search(r"context (?:length|window|size)", low):
        return "context_overflow"
    if status in (None, 200):
        return "server"  # "an error was encountered while running the model"
    if status == 499:
        return "connection"
    if "server busy" in low or "max queue" in low:
        return "overloaded"
    if re.search(r"usage limit|quota|billing|upgrade to continue", low):
        return "quota"  # Ollama cloud's plan limits: waiting will not clear them
    return classify(status, info)


_NOT_FOUND = re.compile(r"model [\"']?([^\"'\s]+)[\"']? not found", re.I)


def pull_hint(info: ErrorInfo, model: str) -> None:
    """Add the fix to a model-not-found message: `ollama pull <model>`."""
    m = _NOT_FOUND.search(info.message)
    info.message += f" (run `ollama pull {m.group(1) if m else model}`)"


# --- the adapter -----------------------------------------------------------------------


class OllamaChat:
    def __init__(self, settings: ProviderSettings, *, transport: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.http = HttpClient(settings, transport=transport, clock=clock)
        self.last_metrics: Metrics | None = None  # the last call's done-line numbers (tok/s)

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/v1")

    def headers(self) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if self.settings.api_key:  # Ollama cloud, or a proxy in front of a remote server
            h["authorization"] = f"Bearer {self.settings.api_key}"
        return h

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        stream = bool(request.extra.get("stream", self.settings.options.get("stream", True)))
        num_ctx = num_ctx_for(request, self.settings)
        body = build_body(request, self.settings, stream=stream)
        try:
            return self._exchange(request, body, num_ctx, on_event)
        except UpstreamError as exc:
            # reasoning_effort is a hint: a model that cannot think should still answer,
            # so `think` is dropped and the request sent once more (nothing was streamed).
            if "think" in body and "does not support thinking" in exc.message and not getattr(exc, "partial", False):
                body.pop("think")
                return self._exchange(request, body, num_ctx, on_event)
            raise

    def _exchange(self, request: ChatRequest, body: dict[str, Any], num_ctx: int,
                  on_event: OnEvent | None) -> ChatResult:
        t0 = self.clock()
        with self.http.post_stream(f"{self.base_url}/api/chat", body, headers=self.headers(),
                                   timeout=request.timeout, model=request.model,
                                   output_tokens=request.max_output_tokens) as ex:
            if ex.status >= 300:
                raise self._http_error(ex, request.model)
            folder = LineFolder(ex, request.model, num_ctx, on_event, self.clock, t0)
            try:
                for line in iter_ndjson(ex.iter_bytes()):
                    folder.feed(line)
                    if folder.done is not None:
                        break
            except UpstreamError as exc:
                if exc.provider:  # already an error of this exchange
                    raise
                raise ex.fail(exc.kind, exc.message) from None  # a malformed line: fill in who
            result = folder.result()
            self.last_metrics = folder.metrics
            return result

    def _http_error(self, ex: Exchange, model: str) -> UpstreamError:
        err = http_error_for(ex, model)
        if err.kind == "rate_limit":
            err.retry_after = self.http.retry_after(ex.headers)
        return err

    def list_models(self, timeout: float = 10.0) -> list[ListedModel]:
        doc = self.http.get_json(f"{self.base_url}/api/tags", headers=self.headers(), timeout=timeout,
                                 classify=classify_ollama) or {}
        return [ListedModel(str(m.get("name") or m.get("model") or ""))
                for m in doc.get("models") or [] if isinstance(m, dict)]

    def close(self) -> None:
        self.http.close()


def create(settings: ProviderSettings, *, transport: Any = None,
           clock: Callable[[], float] = time.monotonic) -> OllamaChat:
    return OllamaChat(settings, transport=transport, clock=clock)


def http_error_for(ex: Exchange, model: str) -> UpstreamError:
    """An Ollama HTTP error response, classified (with the `ollama pull` hint on a 404)."""
    try:
        text = ex.read_text()
    except UpstreamError:
        text = ""
    info = parse_error_body(text)
    kind = classify_ollama(ex.status, info)
    if kind == "model_not_found" and "does not support" not in info.message:
        pull_hint(info, model)
    return ex.fail(kind, info, status=ex.status)

