"""OpenAI Responses API (`POST {base}/responses`), chosen with `settings.options["api"] = "responses"`.

Request (wire.md 3.8): `instructions` (the system prompt), `input` items (messages,
`function_call`, `function_call_output`), `max_output_tokens`, `reasoning.effort`, flat
function tools, `text.format` json_schema for structured output, `store: false`.

Stream: named events; text from `response.output_text.delta`, reasoning summaries from
`response.reasoning_summary_text.delta`, function calls from `response.output_item.added`
+ `response.function_call_arguments.delta` (or the finished item). The stream ends on
`response.completed` / `response.incomplete` / `response.failed` (no `[DONE]`); missing
optional events are fine (C38); EOF before a terminal event is `stream_broken`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anvil.providers.errors import classify, parse_error_body
from anvil.providers.http import Exchange
from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.openai import ChatStream, OpenAIChat, Quirks, _is_strict_compatible
from anvil.providers.sse import iter_sse
from anvil.providers.types import ChatRequest, ChatResult, Message, OnEvent, ProviderSettings

if TYPE_CHECKING:
    from httpx import BaseTransport

_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def usage_from_responses(u: dict[str, Any]) -> dict[str, Any]:
    """Responses usage -> the Chat Completions shape ChatStream understands."""
    return {
        "prompt_tokens": u.get("input_tokens") or 0,
        "completion_tokens": u.get("output_tokens") or 0,
        "prompt_tokens_details": {
            "cached_tokens": (u.get("input_tokens_details") or {}).get("cached_tokens") or 0,
            "cache_write_tokens": (u.get("input_tokens_details") or {}).get("cache_write_tokens") or 0},
        "completion_tokens_details": {
            "reasoning_tokens": (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0},
    }


class OpenAIResponses(OpenAIChat):
    """Same client, headers and result folding as Chat Completions; another wire shape."""

    @staticmethod
    def _items(m: Message) -> list[dict[str, Any]]:
        if m.role == "tool":
            return [{"type": "function_call_output", "call_id": m.tool_call_id or "", "output": m.content}]
        items: list[dict[str, Any]] = []
        if m.content:
            items.append({"role": m.role, "content": m.content})
        for c in m.tool_calls:
            items.append({"type": "function_call", "call_id": c.id, "name": c.name,
                          "arguments": json.dumps(c.arguments)})
        return items

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "input": [], "max_output_tokens": request.max_output_tokens,
                                "stream": True, "store": False}
        if request.system:
            body["instructions"] = request.system
        for m in request.messages:
            if m.role != "system":
                body["input"].extend(self._items(m))
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.reasoning_effort:
            body["reasoning"] = {"effort": request.reasoning_effort}
        if request.tools:
            body["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                              "parameters": t.parameters} for t in request.tools]
        if request.json_schema is not None:
            body["text"] = {"format": {"type": "json_schema", "name": request.schema_name,
                                       "schema": request.json_schema,
                                       "strict": _is_strict_compatible(request.json_schema)}}
        body.update(request.extra)
        return body

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        self.http.require_key(request.model)
        t0 = self.clock()
        with self.http.post_stream(f"{self.base_url}/responses", self.build_body(request),
                                   headers=self.headers(), timeout=request.timeout, model=request.model,
                                   output_tokens=request.max_output_tokens) as ex:
            if ex.status >= 300:
                raise self._http_error(ex)
            state = ChatStream(ex, on_event, self.clock, t0)
            terminal = None
            for ev in iter_sse(ex.iter_bytes()):
                try:
                    obj = bounded_loads(ev.data)
                except ValueError:
                    raise ex.fail("stream_broken", f"malformed or truncated event: {ev.data[:200]!r}") from None
                kind = ev.event or obj.get("type")
                self._event(ex, state, kind, obj)
                if kind in _TERMINAL:
                    terminal = kind
                    break
            if terminal is None:
                raise ex.fail("stream_broken", "the stream ended before response.completed (truncated)")
            return state.result(request, self.quirks)

    def _event(self, ex: Exchange, state: ChatStream, kind: str | None, obj: dict[str, Any]) -> None:
        if kind == "response.output_text.delta":
            state.feed({"choices": [{"delta": {"content": obj.get("delta", "")}}]})
        elif kind == "response.reasoning_summary_text.delta":
            state.feed({"choices": [{"delta": {"reasoning": obj.get("delta", "")}}]})
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = obj.get("item") or {}
            if item.get("type") == "function_call":
                index = obj.get("output_index", 0)
                slot = state.calls.get(index)
                args = item.get("arguments", "") if kind.endswith("done") and not (slot and slot[2]) else ""
                state.feed({"choices": [{"delta": {"tool_calls": [{
                    "index": index, "id": item.get("call_id"), "function": {"name": item.get("name"),
                                                                            "arguments": args}}]}}]})
        elif kind == "response.function_call_arguments.delta":
            state.feed({"choices": [{"delta": {"tool_calls": [{
                "index": obj.get("output_index", 0), "function": {"arguments": obj.get("delta", "")}}]}}]})
        elif kind in _TERMINAL:
            response = obj.get("response") or {}
            if kind == "response.failed":
                info = parse_error_body(json.dumps({"error": response.get("error") or {}}))
                raise ex.fail(classify(None, info), info)
            state.model = response.get("model") or state.model
            if response.get("usage"):
                state.usage_raw = usage_from_responses(response["usage"])
            reason = (response.get("incomplete_details") or {}).get("reason")
            state.finish = {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
                reason or "", "tool_calls" if state.calls else "stop")
        elif kind == "error":
            info = parse_error_body(json.dumps({"error": obj}))
            raise ex.fail(classify(None, info), info)


__all__ = ["OpenAIResponses", "usage_from_responses"]


def create(settings: ProviderSettings, *, transport: BaseTransport | None = None,
           clock: Callable[[], float] = time.monotonic) -> OpenAIResponses:
    return OpenAIResponses(settings, quirks=Quirks(), transport=transport, clock=clock)
