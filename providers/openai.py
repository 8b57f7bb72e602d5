"""OpenAI Chat Completions adapter (hand-rolled over httpx), also the engine of openai_compatible.

`OpenAIChat(settings, quirks=Quirks(...))` speaks `POST {base}/chat/completions`. Everything
that differs between api.openai.com and the OpenAI-compatible servers lives in `Quirks`
(openai_compatible.py holds the table of presets); the stream handling is this one copy.

Request: `max_completion_tokens` (OpenAI) or `max_tokens` (everyone else), `stream` with
`stream_options.include_usage`, `reasoning_effort` (or OpenRouter's `reasoning.effort`),
tools (parallel calls allowed), structured output via `response_format` json_schema
(`strict` only when the schema is already strict-compatible: a non-compliant schema
under strict mode is a 400 no other model fixes).

Response: SSE chunks (wire.md 3.4) through `anvil.providers.sse`; usage accepted on any
chunk (the final `choices: []` one, DeepSeek's finish chunk, Groq's `x_groq.usage`), last
non-null wins; `reasoning_content` and `reasoning` both read; tool-call fragments joined by
index; an `error` in a chunk (C23, OpenRouter `finish_reason: "error"` C53) raises even
after `[DONE]`; EOF before `[DONE]` without a finish reason is `stream_broken`; an answer
with no text and no tool calls (LM Studio's silent overflow, C68) is an error, not an
empty reply. A JSON body where a stream was asked for is read as a whole completion.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from anvil.providers.errors import ErrorInfo, classify, parse_error_body
from anvil.providers.fastpath import DeltaTemplate, drive_sse
from anvil.providers.http import Exchange, HttpClient, ListedModel, parse_duration
from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.types import (
    ChatRequest,
    ChatResult,
    ErrorKind,
    FinishReason,
    Message,
    OnEvent,
    ProviderSettings,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageUpdate,
)

if TYPE_CHECKING:
    from httpx import BaseTransport

_decode = json.JSONDecoder(parse_float=Decimal).decode  # exact `usage.cost`, no float detour


def _loads(text: str) -> Any:
    return bounded_loads(text, decode=_decode)  # too deep: a ValueError like any malformed chunk

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                                    "function_call": "tool_calls", "content_filter": "content_filter",
                                    "end_turn": "stop", "max_tokens": "length"}
_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)", re.I)


@dataclass(frozen=True)
class Quirks:
    """How one OpenAI-speaking server differs from api.openai.com."""

    name: str = "openai"
    base_url: str | None = "https://api.openai.com/v1"
    max_tokens_field: str = "max_completion_tokens"
    stream_options: bool = True  # send stream_options.include_usage (and expect usage)
    reasoning: str = "reasoning_effort"  # "reasoning_effort" | "openrouter" | "none"
    json_mode: str = "json_schema"  # "json_schema" | "json_object" | "none"
    needs_key: bool = True
    empty_completion: ErrorKind = "server"  # what an answer with no output at all is
    cache_control_parts: bool = False  # OpenRouter: forward Anthropic cache_control on system
    # Models that reject temperature and stop (OpenAI's reasoning models): never sent to them.
    no_sampling_models: str | None = r"^(o\d|gpt-5)"


def usage_from_openai(u: dict[str, Any]) -> Usage:
    """OpenAI-convention usage (prompt_tokens include cached) -> anvil Usage."""
    pd = u.get("prompt_tokens_details") or {}
    cd = u.get("completion_tokens_details") or {}
    cached = pd.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0
    return Usage(
        input_tokens=int(u.get("prompt_tokens") or 0),
        output_tokens=int(u.get("completion_tokens") or 0),
        cache_read_tokens=int(cached),
        cache_write_tokens=int(pd.get("cache_write_tokens") or 0),
        reasoning_tokens=int(cd.get("reasoning_tokens") or 0),
    )


def _part_text(part: Any) -> str:
    """The text of one part: a string, `{"text": ...}`, or a list of such (Mistral nests thinking)."""
    if isinstance(part, str):
        return part
    if isinstance(part, list):
        return "".join(_part_text(p) for p in part)
    if isinstance(part, dict):
        for key in ("text", "thinking", "content"):
            if key in part:
                return _part_text(part[key])
    return ""


def content_parts(parts: list[Any]) -> tuple[str, str]:
    """(answer text, reasoning) of a content list of typed parts, each joined with no separator.

    Mistral's reasoning models send `[{"type": "thinking", "thinking": [{"type": "text", ...}]},
    {"type": "text", "text": ...}]`; other servers send `{"type": "reasoning"}` parts. Parts of
    other types (images, references) carry no answer text.
    """
    text: list[str] = []
    thought: list[str] = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("thinking", "reasoning"):
            thought.append(_part_text(part.get("thinking", part.get("reasoning", part.get("text")))))
        elif kind in (None, "text", "output_text"):
            text.append(_part_text(part.get("text")))
    return "".join(text), "".join(thought)


def _is_strict_compatible(schema: Any) -> bool:
    """Every object closed and every property required (what OpenAI strict mode demands)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            props = schema.get("properties") or {}
            if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(props):
                return False
        return all(_is_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_is_strict_compatible(v) for v in schema)
    return True


class ChatStream:
    """Folds Chat Completions chunks (or one whole completion) into a ChatResult."""

    def __init__(self, ex: Exchange, on_event: OnEvent | None, clock: Callable[[], float], t0: float) -> None:
        self.ex, self.on_event, self.clock, self.t0 = ex, on_event, clock, t0
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[Any]] = {}  # index -> [id, name, [fragments]]
        self.finish: str | None = None
        self.usage_raw: dict[str, Any] | None = None
        self.model: str | None = None
        self.cost: Decimal | None = None
        self.ttft: float | None = None
        self.refused = False

    def _first(self) -> None:
        if self.ttft is None:
            self.ttft = self.clock() - self.t0
            self.ex.mark_output()

    def fail_on_error(self, obj: dict[str, Any]) -> None:
        err = obj.get("error")
        if err or obj.get("object") == "error":
            info = parse_error_body(json.dumps(obj, default=str))
            raise self.ex.fail(classify(None, info), info)

    def text_delta(self, text: str) -> None:
        if not text:
            return
        if self.ttft is None:
            self._first()
        self.text.append(text)
        if self.on_event:
            self.on_event(TextDelta(text))

    def reasoning_delta(self, thought: str) -> None:
        if not thought:
            return
        self._first()
        self.reasoning.append(thought)
        if self.on_event:
            self.on_event(ReasoningDelta(thought))

    def feed(self, obj: dict[str, Any]) -> str | None:
        """Apply one chunk; return its text when appending it was the chunk's only effect."""
        if "error" in obj or obj.get("object") == "error":
            self.fail_on_error(obj)
        if self.model is None and obj.get("model"):
            self.model = obj["model"]
        simple = True
        usage = obj.get("usage") or (obj.get("x_groq") or {}).get("usage")
        if usage:
            simple = False
            self.usage_raw = usage
            if self.on_event:
                self.on_event(UsageUpdate(usage_from_openai(usage)))
        choices = obj.get("choices") or ()
        content = None
        for choice in choices:
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if isinstance(content, list):  # typed parts (Mistral reasoning models): text and thinking
                simple = False
                text, thought_parts = content_parts(content)
                self.text_delta(text)
                self.reasoning_delta(thought_parts)
            elif content and isinstance(content, str):
                self.text_delta(content)
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought and isinstance(thought, str):
                simple = False
                self.reasoning_delta(thought)
            refusal = delta.get("refusal")
            if refusal and isinstance(refusal, str):  # structured-output refusal: said, not answered
                simple = False
                self.text_delta(refusal)
                self.refused = True
            if delta.get("tool_calls"):
                simple = False
                self._tool_deltas(delta["tool_calls"])
            if choice.get("finish_reason"):
                simple = False
                self.finish = choice["finish_reason"]
        return content if simple and len(choices) == 1 and isinstance(content, str) else None

    def _tool_deltas(self, deltas: list[dict[str, Any]]) -> None:
        self._first()
        for pos, d in enumerate(deltas):
            index = d.get("index", pos)
            slot = self.calls.setdefault(index, [None, None, []])
            fn = d.get("function") or {}
            if d.get("id"):
                slot[0] = d["id"]
            if fn.get("name"):
                slot[1] = fn["name"]
            args = fn.get("arguments")
            if isinstance(args, dict):  # whole-message form from some servers
                args = json.dumps(args)
            if args:
                slot[2].append(args)
            if self.on_event:
                self.on_event(ToolCallDelta(index, fn.get("name"), args or ""))

    def _tool_calls(self) -> tuple[ToolCall, ...]:
        out = []
        for index in sorted(self.calls):
            call_id, name, frags = self.calls[index]
            raw = "".join(frags)
            extra: dict[str, Any] = {}
            try:
                args = bounded_loads(raw) if raw.strip() else {}
                if not isinstance(args, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                args, extra = {}, {"raw_arguments": raw, "arguments_error": str(exc)}
            out.append(ToolCall(call_id or f"call_{index}", name or "", args, extra))
        return tuple(out)

    def result(self, request: ChatRequest, quirks: Quirks) -> ChatResult:
        usage = usage_from_openai(self.usage_raw) if self.usage_raw else Usage()
        if self.finish == "error":  # OpenRouter: the upstream failed mid-generation, no error body
            err = self.ex.fail("server", "the stream finished with finish_reason 'error'")
            err.usage = usage if self.usage_raw else None
            raise err
        if self.usage_raw and self.usage_raw.get("cost") is not None:
            self.cost = Decimal(str(self.usage_raw["cost"]))
        calls = self._tool_calls()
        text = "".join(self.text)
        finish = _FINISH.get(self.finish or "stop", "stop")
        if calls and finish == "stop":
            finish = "tool_calls"
        if self.refused:
            finish = "content_filter"
        if not text and not calls and finish == "stop":
            err = self.ex.fail(quirks.empty_completion,
                               f"empty completion ({usage.input_tokens} input tokens, no output):"
                               " possibly a silent context overflow")
            err.usage = usage
            raise err
        return ChatResult(
            text=text, finish_reason=finish, usage=usage, served_model=self.model or request.model,
            tool_calls=calls, reasoning_text="".join(self.reasoning), provider_cost=self.cost,
            request_id=self.ex.request_id, latency_s=self.clock() - self.t0, ttft_s=self.ttft,
        )


class OpenAIChat:
    """The Chat Completions adapter; `quirks` picks the server's dialect."""

    def __init__(self, settings: ProviderSettings, *, quirks: Quirks = Quirks(), transport: BaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.quirks = quirks
        self.clock = clock
        self.http = HttpClient(settings, transport=transport, clock=clock)

    @property
    def base_url(self) -> str:
        base = self.settings.base_url or self.quirks.base_url
        if not base:
            raise ValueError(f"provider {self.settings.name!r}: base_url is required for kind "
                             f"{self.settings.kind!r}")
        return base.rstrip("/")

    def headers(self) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if self.settings.api_key:
            h["authorization"] = f"Bearer {self.settings.api_key}"
        for k, v in (self.settings.options.get("headers") or {}).items():
            h[str(k)] = str(v)
        return h

    # --- request --------------------------------------------------------------
    def _message(self, m: Message) -> dict[str, Any]:
        if m.role == "tool":
            return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
        if m.role == "assistant" and m.tool_calls:
            return {"role": "assistant", "content": m.content or None, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in m.tool_calls]}
        if m.role == "system" and self.quirks.cache_control_parts:
            return {"role": "system", "content": [
                {"type": "text", "text": m.content, "cache_control": {"type": "ephemeral"}}]}
        return {"role": m.role, "content": m.content}

    def stream_wanted(self, request: ChatRequest) -> bool:
        return bool(request.extra.get("stream", self.settings.options.get("stream", True)))

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        q = self.quirks
        stream = self.stream_wanted(request)
        body: dict[str, Any] = {"model": request.model,
                                "messages": [self._message(m) for m in request.messages],
                                q.max_tokens_field: request.max_output_tokens, "stream": stream}
        if stream and q.stream_options:
            body["stream_options"] = {"include_usage": True}
        sampling = not (q.no_sampling_models and re.match(q.no_sampling_models, request.model))
        if request.temperature is not None and sampling:
            body["temperature"] = request.temperature
        if request.stop and sampling:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools]
            body["parallel_tool_calls"] = True
        if request.reasoning_effort:
            if q.reasoning == "reasoning_effort":
                body["reasoning_effort"] = request.reasoning_effort
            elif q.reasoning == "openrouter":
                body["reasoning"] = {"effort": request.reasoning_effort}
        if request.json_schema is not None and q.json_mode == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": request.schema_name, "schema": request.json_schema,
                "strict": _is_strict_compatible(request.json_schema)}}
        elif request.json_schema is not None and q.json_mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        body.update({k: v for k, v in request.extra.items() if k != "stream"})
        return body

    # --- exchange -------------------------------------------------------------
    def _classify(self, status: int | None, info: ErrorInfo) -> ErrorKind:
        return classify(status, info)

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        if self.quirks.needs_key:
            self.http.require_key(request.model)
        body = self.build_body(request)
        t0 = self.clock()
        with self.http.post_stream(f"{self.base_url}/chat/completions", body, headers=self.headers(),
                                   timeout=request.timeout, model=request.model,
                                   output_tokens=request.max_output_tokens) as ex:
            if ex.status >= 300:
                raise self._http_error(ex)
            state = ChatStream(ex, on_event, self.clock, t0)
            if "text/event-stream" in ex.content_type:
                self._consume_sse(ex, state, body.get("stream_options") is not None)
            else:
                self._consume_whole(ex, state)
            return state.result(request, self.quirks)

    def _http_error(self, ex: Exchange) -> Exception:
        err = ex.error(self._classify)
        if err.retry_after is None and err.kind == "rate_limit":
            m = _TRY_AGAIN.search(err.message)
            err.retry_after = parse_duration(m.group(1)) if m else None
        return err

    def _consume_sse(self, ex: Exchange, state: ChatStream, expect_usage: bool) -> None:
        template = DeltaTemplate('"content":"')  # most chunks: decoded without json.loads
        done = False

        def on_event(block: str, event: str | None, data: str) -> bool:
            nonlocal done
            if data.startswith("[DONE]"):
                done = True
                return False  # keep reading: nothing should follow, but an error chunk might
            try:
                obj = _loads(data)
            except ValueError:
                raise ex.fail("stream_broken", f"malformed or truncated chunk: {data[:200]!r}") from None
            if isinstance(obj, dict):
                plain = state.feed(obj)
                if plain is not None:
                    template.learn(block, plain)
            return False

        drive_sse(ex.iter_bytes(), template, state.text_delta, on_event)
        if not done and (state.finish is None or (expect_usage and state.usage_raw is None)):
            raise ex.fail("stream_broken", "the stream ended before [DONE] (truncated response)")

    def _consume_whole(self, ex: Exchange, state: ChatStream) -> None:
        text = ex.read_text()
        try:
            obj = _loads(text) if text.strip() else None
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            shown = parse_error_body(text).message
            raise ex.fail("server", f"unexpected {ex.status} body ({ex.content_type or 'no type'}): {shown}",
                          status=ex.status)
        state.fail_on_error(obj)
        if "choices" not in obj:
            raise ex.fail("server", f"a {ex.status} body without choices", status=ex.status)
        state.feed(obj)

    def list_models(self, timeout: float = 30.0) -> list[ListedModel]:
        doc = self.http.get_json(f"{self.base_url}/models", headers=self.headers(), timeout=timeout)
        out = []
        for m in (doc or {}).get("data") or []:
            if isinstance(m, dict) and m.get("id"):
                ctx = m.get("context_length") or (m.get("top_provider") or {}).get("context_length")
                out.append(ListedModel(m["id"], m.get("name"), int(ctx) if ctx else None))
        return out

    def close(self) -> None:
        self.http.close()


def create(settings: ProviderSettings, *, transport: BaseTransport | None = None,
           clock: Callable[[], float] = time.monotonic) -> OpenAIChat:
    return OpenAIChat(settings, quirks=Quirks(), transport=transport, clock=clock)
