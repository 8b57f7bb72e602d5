"""The Anthropic Messages dialect: `/v1/messages` requests in, Messages JSON and SSE out.

Usage is converted back to Anthropic's convention (input *without* the cache parts, which are
`cache_read_input_tokens` / `cache_creation_input_tokens`). Thinking blocks a client sends back
from an earlier turn are not forwarded: they are signed by the model that wrote them and no
other model (nor protocol) can take them. Sampling hints without an equivalent in anvil's
request (`top_p`, `top_k`) and `metadata` are not forwarded either; images, documents, server
tools and a forced `tool_choice` are refused with an error naming them.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from anvil.providers.types import (
    ChatRequest,
    Message,
    ReasoningEffort,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from anvil.serve.dialect import (
    ClientRequest,
    ServeError,
    StreamLedger,
    Untranslatable,
    as_dict,
    as_list,
    bad_request,
    positive_int,
    sse,
)

if TYPE_CHECKING:
    from anvil.providers.types import ChatResult, StreamEvent, Usage

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
ERROR_TYPES = {"invalid_request": "invalid_request_error", "auth": "authentication_error",
               "not_found": "not_found_error", "rate_limit": "rate_limit_error",
               "overloaded": "overloaded_error", "server": "api_error"}
IGNORED = ("top_p", "top_k", "metadata", "service_tier", "container", "mcp_servers")


def _effort(thinking: Any) -> ReasoningEffort | None:
    t = as_dict(thinking, "thinking")
    if t.get("type") != "enabled":
        return None
    budget = t.get("budget_tokens") or 0
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


def _text_of(content: Any, where: str) -> tuple[str, bool]:
    """A system prompt or tool result: a string or text blocks -> (text, cache breakpoint)."""
    if isinstance(content, str):
        return content, False
    parts, cache = [], False
    for i, block in enumerate(as_list(content, where)):
        b = as_dict(block, f"{where}[{i}]")
        if b.get("type") != "text":
            raise Untranslatable(f"{where}[{i}]: a {b.get('type')!r} block (only text crosses protocols)")
        parts.append(str(b.get("text", "")))
        cache = cache or bool(b.get("cache_control"))
    return "\n\n".join(parts), cache


def _messages(raw: list[Any]) -> list[Message]:
    out: list[Message] = []
    names: dict[str, str] = {}  # tool_use id -> tool name (Gemini needs it on the result)
    for i, item in enumerate(raw):
        m = as_dict(item, f"messages[{i}]")
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant"):
            raise bad_request(f"messages[{i}].role: expected user or assistant")
        if isinstance(content, str):
            out.append(Message(role, content))
            continue
        texts: list[str] = []
        calls: list[ToolCall] = []
        cache = False
        for j, block in enumerate(as_list(content, f"messages[{i}].content")):
            where = f"messages[{i}].content[{j}]"
            b = as_dict(block, where)
            kind = b.get("type")
            cache = cache or bool(b.get("cache_control"))
            if kind == "text":
                texts.append(str(b.get("text", "")))
            elif kind == "tool_use" and role == "assistant":
                call_id, name = str(b.get("id", "")), str(b.get("name", ""))
                names[call_id] = name
                calls.append(ToolCall(call_id, name, as_dict(b.get("input", {}), f"{where}.input")))
            elif kind == "tool_result" and role == "user":
                text, _ = _text_of(b.get("content", ""), f"{where}.content")
                if b.get("is_error"):
                    text = f"[tool error] {text}"
                call_id = str(b.get("tool_use_id", ""))
                out.append(Message("tool", text, tool_call_id=call_id, name=names.get(call_id)))
            elif kind in ("thinking", "redacted_thinking") and role == "assistant":
                continue  # signed by the model that thought it: see the module docstring
            else:
                raise Untranslatable(f"{where}: a {kind!r} block")
        if texts or calls:
            out.append(Message(role, "\n\n".join(texts), tool_calls=tuple(calls), cache=cache))
    return out


def _tools(raw: Any, choice: Any) -> tuple[ToolSpec, ...]:
    if choice is not None:
        kind = as_dict(choice, "tool_choice").get("type")
        if kind == "none":
            return ()
        if kind != "auto":
            raise Untranslatable(f"tool_choice {kind!r} (only auto and none are carried to every protocol)")
    specs = []
    for i, item in enumerate(as_list(raw or [], "tools")):
        t = as_dict(item, f"tools[{i}]")
        if t.get("type") not in (None, "custom") or "input_schema" not in t:
            raise Untranslatable(f"tools[{i}]: the server tool {t.get('type') or t.get('name')!r}")
        specs.append(ToolSpec(str(t.get("name", "")), str(t.get("description") or ""),
                              as_dict(t["input_schema"], f"tools[{i}].input_schema")))
    return tuple(specs)


def parse(body: Any) -> ClientRequest:
    b = as_dict(body, "request")
    model = b.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: required")
    messages: list[Message] = []
    if b.get("system"):
        text, cache = _text_of(b["system"], "system")
        messages.append(Message("system", text, cache=cache))
    messages += _messages(as_list(b.get("messages"), "messages"))
    stop = b.get("stop_sequences") or []
    temperature = b.get("temperature")
    chat = ChatRequest(
        model="", messages=tuple(messages), max_output_tokens=positive_int(b.get("max_tokens"), "max_tokens"),
        temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
        stop=tuple(str(s) for s in as_list(stop, "stop_sequences")),
        tools=_tools(b.get("tools"), b.get("tool_choice")),
        reasoning_effort=_effort(b["thinking"]) if b.get("thinking") else None,
        cache_system=any(m.cache for m in messages if m.role == "system"))
    return ClientRequest(model, chat, bool(b.get("stream")))


def _usage(u: Usage) -> dict[str, int]:
    return {"input_tokens": max(u.input_tokens - u.cache_read_tokens - u.cache_write_tokens, 0),
            "output_tokens": u.output_tokens, "cache_read_input_tokens": u.cache_read_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens}


def _message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def response(result: ChatResult, model: str, creq: ClientRequest | None = None) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": result.text}] if result.text else []
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in result.tool_calls]
    return {"id": _message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": STOP_REASONS[result.finish_reason], "stop_sequence": None,
            "usage": _usage(result.usage)}


def _event(kind: str, **fields: Any) -> bytes:
    return sse(json.dumps({"type": kind, **fields}, separators=(",", ":")), kind)


class Renderer:
    """One Messages stream: message_start, content blocks, message_delta, message_stop."""

    def __init__(self, model: str, creq: ClientRequest | None = None) -> None:
        self.model = model
        self.block = -1  # index of the open content block, -1 when none
        self.open: tuple[str, int] | None = None  # ("text", 0) or ("tool", upstream index)
        self.seen = StreamLedger()

    def start(self, usage: Usage | None) -> bytes:
        u = _usage(usage) if usage is not None else {"input_tokens": 0, "output_tokens": 0}
        msg: dict[str, Any] = {"id": _message_id(), "type": "message", "role": "assistant", "model": self.model,
                               "content": [], "stop_reason": None, "stop_sequence": None,
                               "usage": {**u, "output_tokens": 1}}
        return _event("message_start", message=msg) + _event("ping")

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return _event("content_block_stop", index=self.block)

    def _open(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block += 1
        self.open = key
        return out + _event("content_block_start", index=self.block, content_block=block)

    def _text(self, text: str) -> bytes:
        out = b"" if self.open == ("text", 0) else self._open(("text", 0), {"type": "text", "text": ""})
        self.seen.text.append(text)
        return out + _event("content_block_delta", index=self.block, delta={"type": "text_delta", "text": text})

    def _tool(self, call_id: str, name: str, fragment: str, key: tuple[str, int]) -> bytes:
        out = b""
        if self.open != key:
            out = self._open(key, {"type": "tool_use", "id": call_id, "name": name, "input": {}})
        if fragment:
            out += _event("content_block_delta", index=self.block,
                          delta={"type": "input_json_delta", "partial_json": fragment})
        return out

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._text(event.text) if event.text else b""
        if isinstance(event, ToolCallDelta):
            ordinal, new = self.seen.tool_ordinal(event.index)
            if new or self.open == ("tool", event.index):
                return self._tool("toolu_" + secrets.token_hex(12), event.name or "", event.arguments_fragment,
                                  ("tool", event.index))
            # a fragment for a call whose block is closed cannot be sent any more: finish() has it whole
            return b""
        return b""  # reasoning is not forwarded; usage goes out in message_delta

    def finish(self, result: ChatResult) -> bytes:
        out = b""
        rest = self.seen.missing_text(result)
        if rest:
            out += self._text(rest)
        for n, call in enumerate(self.seen.missing_calls(result)):
            key = ("tool", -1 - n)  # not an upstream index: these came with the result only
            self.seen.tool_ordinal(-1 - n)
            out += self._tool(call.id, call.name, json.dumps(call.arguments), key)
        out += self._close()
        out += _event("message_delta", delta={"stop_reason": STOP_REASONS[result.finish_reason],
                                              "stop_sequence": None}, usage=_usage(result.usage))
        return out + _event("message_stop")

    def error(self, err: ServeError) -> bytes:
        return _event("error", error={"type": ERROR_TYPES[err.kind], "message": err.message})


def error_body(err: ServeError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": ERROR_TYPES[err.kind], "message": err.message}}


def error_status(err: ServeError) -> int:
    return 529 if err.kind == "overloaded" else err.status


def model_list(names: list[tuple[str, str]]) -> dict[str, Any]:
    data = [{"type": "model", "id": n, "display_name": d, "created_at": "2026-01-01T00:00:00Z"} for n, d in names]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


class AnthropicDialect:
    name = "anthropic"
    parse = staticmethod(parse)
    response = staticmethod(response)
    renderer = Renderer
    error_body = staticmethod(error_body)
    error_status = staticmethod(error_status)
    model_list = staticmethod(model_list)


ANTHROPIC = AnthropicDialect()
