"""Anthropic Messages API adapter (hand-rolled over httpx; wire.md 2).

Request: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version` (pinned to
`2023-06-01`, configurable with `settings.options["api_version"]`; under `2026-10-21` and
later `temperature` is never sent, C13). System prompt as text blocks with a
`cache_control` breakpoint when `request.cache_system`; messages marked `cache=True` get
one on their last block (at most 4 breakpoints in all: the latest ones win). Tool results
become `tool_result` blocks in a user turn; the thinking blocks of a tool-using turn ride
along on the first ToolCall's `extra["anthropic_thinking"]` and are sent back unchanged.
`reasoning_effort` -> extended thinking with a token budget below `max_tokens` (or
`output_config.effort` with `settings.options["thinking"] = "effort"`). A JSON schema is
asked for in the system prompt (Anthropic has no portable response_format).

Response: SSE events through `anvil.providers.sse`: `ping` and unknown events ignored,
text / thinking / signature / tool-input deltas assembled (the first `input_json_delta`
is often ""), `message_delta.usage` overwrites (it is cumulative), `event: error` after
200 raises its kind, EOF before `message_stop` is `stream_broken`. Usage converted to
anvil's convention: input = input_tokens + cache_creation + cache_read.
`stop_reason: model_context_window_exceeded` (C17) raises `context_overflow` with the
usage, so the walker moves to a model with a larger window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from anvil.providers.errors import classify, parse_error_body
from anvil.providers.fastpath import DeltaTemplate, drive_sse
from anvil.providers.http import Exchange, HttpClient, ListedModel
from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.types import (
    ChatRequest,
    ChatResult,
    FinishReason,
    Message,
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

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_VERSION = "2023-06-01"
_NO_SAMPLING_FROM = "2026-10-21"
_MAX_BREAKPOINTS = 4
_THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
_STOP: dict[str, FinishReason] = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
                                  "max_tokens": "length", "tool_use": "tool_calls",
                                  "refusal": "content_filter"}
_EPHEMERAL = {"type": "ephemeral"}


def _one_usage(u: dict[str, Any]) -> Usage:
    write = int(u.get("cache_creation_input_tokens") or 0)
    read = int(u.get("cache_read_input_tokens") or 0)
    details = u.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(u.get("input_tokens") or 0) + write + read,
        output_tokens=int(u.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def usage_from_anthropic(u: dict[str, Any]) -> Usage:
    """The call's whole usage. With server-side compaction the top level counts only the
    message pass: each `usage.iterations` entry of type `compaction` is billed on top of it."""
    usage = _one_usage(u)
    for it in u.get("iterations") or ():
        if isinstance(it, dict) and it.get("type") == "compaction":
            usage = usage + _one_usage(it)
    return usage


class _Turn:
    """Folds stream events (or a whole message) into a ChatResult."""

    def __init__(self, ex: Exchange, on_event: OnEvent | None, clock: Callable[[], float], t0: float) -> None:
        self.ex, self.on_event, self.clock, self.t0 = ex, on_event, clock, t0
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.done = False
        self.ttft: float | None = None

    def _first(self) -> None:
        if self.ttft is None:
            self.ttft = self.clock() - self.t0
            self.ex.mark_output()

    def text_delta(self, index: int, text: str) -> None:
        if not text:
            return
        if self.ttft is None:
            self._first()
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = {"type": "text"}
        block.setdefault("parts", []).append(text)
        if self.on_event and text:
            self.on_event(TextDelta(text))

    def event(self, name: str | None, obj: dict[str, Any]) -> str | None:
        """Apply one event; return its text when appending it was the event's only effect."""
        kind = name or obj.get("type")
        if kind == "content_block_delta":
            index = obj.get("index", 0)
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text", "")
                self.text_delta(index, text)
                return text
            block = self.blocks.setdefault(index, {"type": "text"})
            if dtype == "input_json_delta":
                frag = delta.get("partial_json", "")
                self._first()
                block.setdefault("fragments", []).append(frag)
                if self.on_event:
                    self.on_event(ToolCallDelta(index, None, frag))
            elif dtype == "thinking_delta":
                text = delta.get("thinking", "")
                self._first()
                block.setdefault("parts", []).append(text)
                if self.on_event and text:
                    self.on_event(ReasoningDelta(text))
            elif dtype == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "content_block_start":
            block = dict(obj.get("content_block") or {})
            self.blocks[obj.get("index", len(self.blocks))] = block
            if block.get("type") == "tool_use" and self.on_event:
                self.on_event(ToolCallDelta(obj.get("index", 0), block.get("name"), ""))
        elif kind == "message_start":
            message = obj.get("message") or {}
            self.model = message.get("model")
            self.usage = dict(message.get("usage") or {})
        elif kind == "message_delta":
            self.usage.update(obj.get("usage") or {})  # cumulative: overwrite
            self.stop_reason = (obj.get("delta") or {}).get("stop_reason") or self.stop_reason
            if self.on_event:
                self.on_event(UsageUpdate(usage_from_anthropic(self.usage)))
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            info = parse_error_body(json.dumps(obj))
            raise self.ex.fail(classify(None, info), info)
        # ping, content_block_stop and unknown events: nothing to do
        return None

    def whole(self, message: dict[str, Any]) -> None:
        self.model = message.get("model")
        self.usage = dict(message.get("usage") or {})
        self.stop_reason = message.get("stop_reason")
        for i, block in enumerate(message.get("content") or []):
            self.blocks[i] = dict(block)
        self.done = True

    def result(self, request: ChatRequest) -> ChatResult:
        usage = usage_from_anthropic(self.usage)
        if self.stop_reason == "model_context_window_exceeded":
            err = self.ex.fail("context_overflow",
                               "generation stopped at the model's context window (model_context_window_exceeded)")
            err.usage = usage
            raise err
        text: list[str] = []
        thinking_text: list[str] = []
        thinking_blocks: list[dict[str, Any]] = []
        calls: list[ToolCall] = []
        for index in sorted(self.blocks):
            block = self.blocks[index]
            btype = block.get("type")
            body = block.get(btype, "") if btype in ("text", "thinking") else ""
            body = (body or "") + "".join(block.get("parts", ()))
            if btype == "text":
                text.append(body)
            elif btype == "thinking":
                thinking_text.append(body)
                thinking_blocks.append({"type": "thinking", "thinking": body,
                                        "signature": block.get("signature", "")})
            elif btype == "redacted_thinking":
                thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
            elif btype == "tool_use":
                calls.append(self._tool_call(block))
        if calls and thinking_blocks:
            first = calls[0]
            calls[0] = ToolCall(first.id, first.name, first.arguments,
                                {**first.extra, "anthropic_thinking": thinking_blocks})
        finish = _STOP.get(self.stop_reason or "end_turn", "stop")
        return ChatResult(
            text="".join(text), finish_reason=finish, usage=usage,
            served_model=self.model or request.model, tool_calls=tuple(calls),
            reasoning_text="".join(thinking_text), request_id=self.ex.request_id,
            latency_s=self.clock() - self.t0, ttft_s=self.ttft,
        )

    @staticmethod
    def _tool_call(block: dict[str, Any]) -> ToolCall:
        if "fragments" in block:
            raw = "".join(block["fragments"])
            try:
                args = bounded_loads(raw) if raw.strip() else {}
            except ValueError as exc:
                return ToolCall(block.get("id", ""), block.get("name", ""), {},
                                {"raw_arguments": raw, "arguments_error": str(exc)})
        else:
            args = block.get("input") or {}
        return ToolCall(block.get("id", ""), block.get("name", ""), args if isinstance(args, dict) else {})


class AnthropicChat:
    def __init__(self, settings: ProviderSettings, *, transport: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.http = HttpClient(settings, transport=transport, clock=clock)
        self.api_version = str(settings.options.get("api_version") or DEFAULT_API_VERSION)

    @property
    def base_url(self) -> str:
        base = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        return base[:-3] if base.endswith("/v1") else base

    def headers(self) -> dict[str, str]:
        h = {"content-type": "application/json", "anthropic-version": self.api_version,
             "x-api-key": self.settings.api_key or ""}
        beta = self.settings.options.get("beta")
        if beta:
            h["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        return h

    # --- request --------------------------------------------------------------
    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cached: list[dict[str, Any]] = []  # blocks that want a breakpoint, oldest first
        for m in request.messages:
            if m.role == "system":
                continue
            role, blocks = self._blocks(m)
            if out and out[-1]["role"] == role == "user":
                out[-1]["content"].extend(blocks)  # tool results and the text after them: one turn
            else:
                out.append({"role": role, "content": blocks})
            if m.cache and blocks:
                cached.append(blocks[-1])
        budget = _MAX_BREAKPOINTS - (1 if request.cache_system and request.system else 0)
        for block in cached[-budget:] if budget > 0 else []:
            block["cache_control"] = dict(_EPHEMERAL)
        return out

    @staticmethod
    def _blocks(m: Message) -> tuple[str, list[dict[str, Any]]]:
        if m.role == "tool":
            return "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}]
        blocks: list[dict[str, Any]] = []
        if m.role == "assistant" and m.tool_calls:
            blocks.extend(dict(b) for b in m.tool_calls[0].extra.get("anthropic_thinking") or ())
        if m.content:
            blocks.append({"type": "text", "text": m.content})
        for call in m.tool_calls:
            blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        return ("assistant" if m.role == "assistant" else "user"), blocks

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        stream = bool(request.extra.get("stream", self.settings.options.get("stream", True)))
        body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_output_tokens,
                                "messages": self._messages(request)}
        system = request.system
        if request.json_schema is not None:
            system = (system + "\n\n" if system else "") + (
                "Reply with only a JSON value (no prose, no code fence) that matches this JSON schema:\n"
                + json.dumps(request.json_schema))
        if system:
            block: dict[str, Any] = {"type": "text", "text": system}
            if request.cache_system:
                block["cache_control"] = dict(_EPHEMERAL)
            body["system"] = [block]
        thinking = False
        if request.reasoning_effort:
            if self.settings.options.get("thinking") == "effort":
                effort = "low" if request.reasoning_effort == "minimal" else request.reasoning_effort
                body["output_config"] = {"effort": effort}
            else:
                budget = min(_THINKING_BUDGET[request.reasoning_effort], request.max_output_tokens - 1)
                if budget >= 1024:
                    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
                    thinking = True
        if request.temperature is not None and not thinking and self.api_version < _NO_SAMPLING_FROM:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                             for t in request.tools]
        if stream:
            body["stream"] = True
        body.update({k: v for k, v in request.extra.items() if k != "stream"})
        return body

    # --- exchange -------------------------------------------------------------
    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        self.http.require_key(request.model)
        body = self.build_body(request)
        t0 = self.clock()
        with self.http.post_stream(f"{self.base_url}/v1/messages", body, headers=self.headers(),
                                   timeout=request.timeout, model=request.model,
                                   output_tokens=request.max_output_tokens) as ex:
            if ex.status >= 300:
                raise ex.error(classify)
            turn = _Turn(ex, on_event, self.clock, t0)
            if "text/event-stream" in ex.content_type:
                self._consume_sse(ex, turn)
            else:
                self._whole(ex, turn)
            return turn.result(request)

    @staticmethod
    def _consume_sse(ex: Exchange, turn: _Turn) -> None:
        template = DeltaTemplate('"text":"')  # most events: decoded without json.loads

        def on_event(block: str, event: str | None, data: str) -> bool:
            if event == "ping":
                return False
            try:
                obj = bounded_loads(data)
            except ValueError:
                raise ex.fail("stream_broken", f"malformed or truncated event: {data[:200]!r}") from None
            if isinstance(obj, dict):
                plain = turn.event(event, obj)
                if plain is not None:
                    template.learn(block, plain, obj.get("index", 0))
            return turn.done

        try:
            if not drive_sse(ex.iter_bytes(), template, lambda text: turn.text_delta(template.tag, text), on_event):
                raise ex.fail("stream_broken", "the stream ended before message_stop (truncated response)")
        except UpstreamError as err:
            if err.usage is None and turn.usage:  # message_start already said what the input cost
                err.usage = usage_from_anthropic(turn.usage)
            raise

    @staticmethod
    def _whole(ex: Exchange, turn: _Turn) -> None:
        text = ex.read_text()
        try:
            obj = bounded_loads(text) if text.strip() else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or obj.get("type") == "error" or "content" not in obj:
            info = parse_error_body(text)
            kind = classify(None, info) if isinstance(obj, dict) and "error" in obj else "server"
            raise ex.fail(kind, f"unexpected {ex.status} body ({ex.content_type or 'no type'}): {info.message}",
                          status=ex.status)
        turn.whole(obj)

    def list_models(self, timeout: float = 30.0) -> list[ListedModel]:
        out: list[ListedModel] = []
        params: dict[str, str] = {"limit": "100"}
        while True:
            doc = self.http.get_json(f"{self.base_url}/v1/models", headers=self.headers(),
                                     timeout=timeout, params=params) or {}
            for m in doc.get("data") or []:
                if isinstance(m, dict) and m.get("id"):
                    out.append(ListedModel(m["id"], m.get("display_name"), m.get("max_input_tokens"),
                                           m.get("max_tokens")))
            if not doc.get("has_more") or not doc.get("last_id"):
                return out
            params = {"limit": "100", "after_id": str(doc["last_id"])}

    def close(self) -> None:
        self.http.close()


def create(settings: ProviderSettings, *, transport: Any = None,
           clock: Callable[[], float] = time.monotonic) -> AnthropicChat:
    return AnthropicChat(settings, transport=transport, clock=clock)
