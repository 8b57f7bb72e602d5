"""The OpenAI Chat Completions dialect: `/v1/chat/completions` in, chat.completion JSON and SSE out.

Usage goes back in OpenAI's convention (prompt tokens include the cached ones, completion
tokens include reasoning), which is anvil's own. Sampling hints without an equivalent in
anvil's request (`top_p`, `seed`, penalties, `logit_bias`, `user`, `store`, `metadata`,
`parallel_tool_calls`) are not forwarded; images, audio, files, `n` > 1, logprobs and a forced
`tool_choice` are refused with an error naming them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from anvil.providers.types import ChatRequest, Message, TextDelta, ToolCall, ToolCallDelta, ToolSpec
from anvil.routing.request import DEFAULT_MAX_OUTPUT
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

DEFAULT_MAX_TOKENS = DEFAULT_MAX_OUTPUT  # when the client names none (the walker still caps it at the model's own)
ERROR_TYPES = {"invalid_request": ("invalid_request_error", None), "auth": ("invalid_request_error", "invalid_api_key"),
               "not_found": ("invalid_request_error", "model_not_found"), "rate_limit": ("rate_limit_error", None),
               "overloaded": ("server_error", "overloaded"), "server": ("server_error", None)}
EFFORTS = ("minimal", "low", "medium", "high")


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(as_list(content, where)):
        p = as_dict(part, f"{where}[{i}]")
        if p.get("type") not in ("text", "input_text", "output_text"):
            raise Untranslatable(f"{where}[{i}]: a {p.get('type')!r} part (only text crosses protocols)")
        parts.append(str(p.get("text", "")))
    return "".join(parts)


def _calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    calls = []
    for i, item in enumerate(as_list(raw, where)):
        c = as_dict(item, f"{where}[{i}]")
        fn = as_dict(c.get("function"), f"{where}[{i}].function")
        args = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError:
            raise bad_request(f"{where}[{i}].function.arguments: not valid JSON") from None
        args_obj = as_dict(parsed, f"{where}[{i}] arguments")
        calls.append(ToolCall(str(c.get("id", "")), str(fn.get("name", "")), args_obj))
    return tuple(calls)


def _messages(raw: list[Any]) -> list[Message]:
    out: list[Message] = []
    names: dict[str, str] = {}
    for i, item in enumerate(raw):
        m = as_dict(item, f"messages[{i}]")
        role, where = m.get("role"), f"messages[{i}].content"
        if role in ("system", "developer"):
            out.append(Message("system", _text(m.get("content"), where)))
        elif role == "user":
            out.append(Message("user", _text(m.get("content"), where)))
        elif role == "assistant":
            calls = _calls(m["tool_calls"], f"messages[{i}].tool_calls") if m.get("tool_calls") else ()
            names.update({c.id: c.name for c in calls})
            out.append(Message("assistant", _text(m.get("content"), where), tool_calls=calls))
        elif role == "tool":
            call_id = str(m.get("tool_call_id", ""))
            out.append(Message("tool", _text(m.get("content"), where), tool_call_id=call_id, name=names.get(call_id)))
        else:
            raise Untranslatable(f"messages[{i}]: the role {role!r}")
    return out


def _tools(raw: Any, choice: Any) -> tuple[ToolSpec, ...]:
    if choice is not None and choice != "auto":
        if choice == "none":
            return ()
        raise Untranslatable(f"tool_choice {choice if isinstance(choice, str) else 'naming a function'!r} "
                             "(only auto and none are carried to every protocol)")
    specs = []
    for i, item in enumerate(as_list(raw or [], "tools")):
        t = as_dict(item, f"tools[{i}]")
        if t.get("type") != "function":
            raise Untranslatable(f"tools[{i}]: a {t.get('type')!r} tool")
        fn = as_dict(t.get("function"), f"tools[{i}].function")
        specs.append(ToolSpec(str(fn.get("name", "")), str(fn.get("description") or ""),
                              as_dict(fn.get("parameters") or {"type": "object", "properties": {}},
                                      f"tools[{i}].function.parameters")))
    return tuple(specs)


def _schema(fmt: Any) -> tuple[dict[str, Any] | None, str]:
    if fmt is None:
        return None, "answer"
    f = as_dict(fmt, "response_format")
    kind = f.get("type")
    if kind == "json_schema":
        js = as_dict(f.get("json_schema"), "response_format.json_schema")
        return as_dict(js.get("schema") or {"type": "object"}, "response_format.json_schema.schema"), \
            str(js.get("name") or "answer")
    if kind == "json_object":
        return {"type": "object"}, "answer"
    if kind == "text":
        return None, "answer"
    raise Untranslatable(f"response_format {kind!r}")


def parse(body: Any) -> ClientRequest:
    b = as_dict(body, "request")
    model = b.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: required")
    if (b.get("n") or 1) != 1:
        raise Untranslatable("n > 1 (one answer per request)")
    if b.get("logprobs") or b.get("audio") or b.get("modalities") not in (None, ["text"]):
        raise Untranslatable("logprobs / audio output")
    limit = b.get("max_completion_tokens") or b.get("max_tokens")
    stop = b.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(str(s) for s in as_list(stop or [], "stop"))
    effort = b.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise bad_request(f"reasoning_effort: expected one of {', '.join(EFFORTS)}")
    schema, schema_name = _schema(b.get("response_format"))
    temperature = b.get("temperature")
    chat = ChatRequest(
        model="", messages=tuple(_messages(as_list(b.get("messages"), "messages"))),
        max_output_tokens=positive_int(limit, "max_tokens") if limit is not None else DEFAULT_MAX_TOKENS,
        temperature=float(temperature) if isinstance(temperature, (int, float)) else None, stop=stops,
        tools=_tools(b.get("tools"), b.get("tool_choice")), json_schema=schema, schema_name=schema_name,
        reasoning_effort=effort)
    options = b.get("stream_options") or {}
    return ClientRequest(model, chat, bool(b.get("stream")),
                         include_usage=bool(as_dict(options, "stream_options").get("include_usage")))


def _usage(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def _call_json(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}


def response(result: ChatResult, model: str, creq: ClientRequest | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.tool_calls:
        message["tool_calls"] = [_call_json(c) for c in result.tool_calls]
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": result.finish_reason,
                                         "logprobs": None}],
            "usage": _usage(result.usage)}


class Renderer:
    """One chat.completion.chunk stream, ended by `data: [DONE]`."""

    def __init__(self, model: str, creq: ClientRequest | None = None) -> None:
        self.model, self.include_usage = model, creq.include_usage if creq is not None else True
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.seen = StreamLedger()

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        obj = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return sse(json.dumps(obj, separators=(",", ":")))

    def start(self, usage: Usage | None) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def _tool(self, ordinal: int, new: bool, call_id: str, name: str, fragment: str) -> bytes:
        call: dict[str, Any] = {"index": ordinal, "function": {"arguments": fragment}}
        if new:
            call.update(id=call_id, type="function")
            call["function"]["name"] = name
        return self._chunk({"tool_calls": [call]})

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta) and event.text:
            self.seen.text.append(event.text)
            return self._chunk({"content": event.text})
        if isinstance(event, ToolCallDelta):
            ordinal, new = self.seen.tool_ordinal(event.index)
            if not new and not event.arguments_fragment:
                return b""
            return self._tool(ordinal, new, "call_" + secrets.token_hex(12), event.name or "",
                              event.arguments_fragment)
        return b""

    def finish(self, result: ChatResult) -> bytes:
        out = b""
        rest = self.seen.missing_text(result)
        if rest:
            out += self._chunk({"content": rest})
        for n, call in enumerate(self.seen.missing_calls(result)):
            ordinal, _ = self.seen.tool_ordinal(-1 - n)
            out += self._tool(ordinal, True, call.id, call.name, json.dumps(call.arguments))
        out += self._chunk({}, result.finish_reason)
        if self.include_usage:
            obj = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                   "choices": [], "usage": _usage(result.usage)}
            out += sse(json.dumps(obj, separators=(",", ":")))
        return out + sse("[DONE]")

    def error(self, err: ServeError) -> bytes:
        return sse(json.dumps(error_body(err), separators=(",", ":")))


def error_body(err: ServeError) -> dict[str, Any]:
    kind, code = ERROR_TYPES[err.kind]
    return {"error": {"message": err.message, "type": kind, "param": None, "code": code}}


def error_status(err: ServeError) -> int:
    return err.status


def model_list(names: list[tuple[str, str]]) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "anvil"}
                                       for n, _ in names]}


class OpenAIDialect:
    name = "openai"
    parse = staticmethod(parse)
    response = staticmethod(response)
    renderer = Renderer
    error_body = staticmethod(error_body)
    error_status = staticmethod(error_status)
    model_list = staticmethod(model_list)


OPENAI = OpenAIDialect()
