"""The OpenAI Responses dialect (`/v1/responses`): what the Codex CLI speaks.

Request: `instructions` + `input` items (messages, `function_call`, `function_call_output`,
and the freeform `custom_tool_call` / `custom_tool_call_output` of Codex's apply_patch tool)
-> anvil's `ChatRequest`. A `custom` tool (free text in, like apply_patch) crosses to other
protocols as a function taking one string, `input`; its calls come back as `custom_tool_call`
items again. `reasoning` items sent back from earlier turns are not forwarded (they belong to
the model that wrote them, often encrypted); images, files, hosted tools (web_search, file
search, ...) and a forced `tool_choice` are refused with an error naming them. Stateless:
`previous_response_id` is refused (anvil keeps no responses), so clients send the whole input.

Output: a `response` object, or its event stream (response.created, output items with text /
argument deltas, response.completed or response.incomplete), usage in OpenAI's convention.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from anvil.providers.types import ChatRequest, Message, TextDelta, ToolCall, ToolCallDelta, ToolSpec
from anvil.serve import openai_dialect as _openai
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
from anvil.serve.openai_dialect import DEFAULT_MAX_TOKENS, EFFORTS

if TYPE_CHECKING:
    from anvil.providers.types import ChatResult, StreamEvent, Usage

CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string", "description": "the tool's raw input"}},
                "required": ["input"]}


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for i, part in enumerate(as_list(content, where)):
        p = as_dict(part, f"{where}[{i}]")
        if p.get("type") not in ("input_text", "output_text", "text"):
            raise Untranslatable(f"{where}[{i}]: a {p.get('type')!r} part (only text crosses protocols)")
        parts.append(str(p.get("text", "")))
    return "".join(parts)


def _messages(instructions: Any, raw: Any) -> list[Message]:
    out: list[Message] = [Message("system", str(instructions))] if instructions else []
    if isinstance(raw, str):
        return [*out, Message("user", raw)]
    names: dict[str, str] = {}
    for i, item in enumerate(as_list(raw, "input")):
        it = as_dict(item, f"input[{i}]")
        kind = it.get("type") or "message"
        where = f"input[{i}]"
        if kind == "message":
            role = it.get("role")
            text = _text(it.get("content", ""), f"{where}.content")
            if role in ("system", "developer"):
                out.append(Message("system", text))
            elif role in ("user", "assistant"):
                out.append(Message(role, text))
            else:
                raise bad_request(f"{where}.role: expected user, assistant, system or developer")
        elif kind in ("function_call", "custom_tool_call"):
            call_id, name = str(it.get("call_id", "")), str(it.get("name", ""))
            names[call_id] = name
            if kind == "function_call":
                try:
                    args = json.loads(it.get("arguments") or "{}")
                except json.JSONDecodeError:
                    raise bad_request(f"{where}.arguments: not valid JSON") from None
            else:
                args = {"input": str(it.get("input", ""))}
            call = ToolCall(call_id, name, as_dict(args, f"{where}.arguments"))
            if out and out[-1].role == "assistant":
                prev = out.pop()  # one assistant turn: its text and every call it made
                out.append(Message("assistant", prev.content, tool_calls=(*prev.tool_calls, call)))
            else:
                out.append(Message("assistant", "", tool_calls=(call,)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = str(it.get("call_id", ""))
            out.append(Message("tool", _text(it.get("output", ""), f"{where}.output"), tool_call_id=call_id,
                               name=names.get(call_id)))
        elif kind == "reasoning":
            continue  # see the module docstring
        else:
            raise Untranslatable(f"{where}: a {kind!r} item")
    return out


def _tools(raw: Any, choice: Any) -> tuple[ToolSpec, ...]:
    if choice not in (None, "auto"):
        if choice == "none":
            return ()
        raise Untranslatable(f"tool_choice {choice if isinstance(choice, str) else 'naming a tool'!r} "
                             "(only auto and none are carried to every protocol)")
    specs = []
    for i, item in enumerate(as_list(raw or [], "tools")):
        t = as_dict(item, f"tools[{i}]")
        kind = t.get("type")
        if kind == "function":
            specs.append(ToolSpec(str(t.get("name", "")), str(t.get("description") or ""),
                                  as_dict(t.get("parameters") or {"type": "object", "properties": {}},
                                          f"tools[{i}].parameters")))
        elif kind == "custom":
            fmt = t.get("format") or {}
            note = f"\n\nThe input follows this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}" \
                if isinstance(fmt, dict) and fmt.get("definition") else ""
            specs.append(ToolSpec(str(t.get("name", "")), str(t.get("description") or "") + note, CUSTOM_INPUT))
        else:
            raise Untranslatable(f"tools[{i}]: the hosted tool {kind!r}")
    return tuple(specs)


def _schema(text: Any) -> tuple[dict[str, Any] | None, str]:
    fmt = as_dict(text, "text").get("format") if text else None
    if not fmt:
        return None, "answer"
    f = as_dict(fmt, "text.format")
    if f.get("type") == "json_schema":
        return as_dict(f.get("schema") or {"type": "object"}, "text.format.schema"), str(f.get("name") or "answer")
    if f.get("type") == "json_object":
        return {"type": "object"}, "answer"
    if f.get("type") == "text":
        return None, "answer"
    raise Untranslatable(f"text.format {f.get('type')!r}")


def parse(body: Any) -> ClientRequest:
    b = as_dict(body, "request")
    model = b.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("model: required")
    if b.get("previous_response_id"):
        raise Untranslatable("previous_response_id (anvil serve keeps no responses: send the whole input)")
    effort = (as_dict(b.get("reasoning") or {}, "reasoning")).get("effort")
    if effort is not None and effort not in EFFORTS:
        effort = "high" if effort == "xhigh" else None  # "none": no effort asked
    limit = b.get("max_output_tokens")
    schema, schema_name = _schema(b.get("text"))
    temperature = b.get("temperature")
    chat = ChatRequest(
        model="", messages=tuple(_messages(b.get("instructions"), b.get("input", []))),
        max_output_tokens=positive_int(limit, "max_output_tokens") if limit is not None else DEFAULT_MAX_TOKENS,
        temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
        tools=_tools(b.get("tools"), b.get("tool_choice")), json_schema=schema, schema_name=schema_name,
        reasoning_effort=effort)
    custom = frozenset(str(t.get("name", "")) for t in as_list(b.get("tools") or [], "tools")
                       if isinstance(t, dict) and t.get("type") == "custom")
    return ClientRequest(model, chat, bool(b.get("stream")), custom_tools=custom)


def _usage(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens,
            "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.total_tokens}


def _call_item(call_id: str, name: str, arguments: str, custom: bool, status: str = "completed") -> dict[str, Any]:
    if custom:
        try:
            raw = str(json.loads(arguments).get("input", "")) if arguments else ""
        except (json.JSONDecodeError, AttributeError):
            raw = arguments
        return {"type": "custom_tool_call", "id": "ctc_" + call_id, "call_id": call_id, "name": name,
                "input": raw, "status": status}
    return {"type": "function_call", "id": "fc_" + call_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _envelope(rid: str, model: str, created: int, status: str, output: list[dict[str, Any]],
              usage: dict[str, Any] | None, incomplete: bool = False,
              error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": created, "status": status, "model": model,
            "output": output, "usage": usage, "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "instructions": None,
            "metadata": {}, "temperature": None, "top_p": None}


def response(result: ChatResult, model: str, creq: ClientRequest) -> dict[str, Any]:
    custom = creq.custom_tools
    output: list[dict[str, Any]] = []
    if result.text:
        output.append(_message_item("msg_" + secrets.token_hex(12), result.text))
    output += [_call_item(c.id, c.name, json.dumps(c.arguments), c.name in custom) for c in result.tool_calls]
    length = result.finish_reason == "length"
    return _envelope("resp_" + secrets.token_hex(12), model, int(time.time()), "incomplete" if length else "completed",
                     output, _usage(result.usage), incomplete=length)


class Renderer:
    """One Responses event stream (see the module docstring)."""

    def __init__(self, model: str, creq: ClientRequest) -> None:
        self.model, self.custom = model, creq.custom_tools
        self.id, self.created = "resp_" + secrets.token_hex(12), int(time.time())
        self.seq = 0
        self.output: list[dict[str, Any]] = []  # finished items
        self.open: dict[str, Any] | None = None  # the item under way: {"kind", "key", "id", "name", "parts"}
        self.seen = StreamLedger()

    def _ev(self, kind: str, **fields: Any) -> bytes:
        obj = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse(json.dumps(obj, separators=(",", ":")), kind)

    def start(self, usage: Usage | None) -> bytes:
        env = _envelope(self.id, self.model, self.created, "in_progress", [], None)
        return self._ev("response.created", response=env) + self._ev("response.in_progress", response=env)

    def _close(self) -> bytes:
        o = self.open
        if o is None:
            return b""
        self.open = None
        index = len(self.output)
        text = "".join(o["parts"])
        if o["kind"] == "text":
            item = _message_item(o["id"], text)
            part = item["content"][0]
            out = self._ev("response.output_text.done", item_id=o["id"], output_index=index, content_index=0,
                           text=text, logprobs=[])
            out += self._ev("response.content_part.done", item_id=o["id"], output_index=index, content_index=0,
                            part=part)
        else:
            item = _call_item(o["id"], o["name"], text, o["name"] in self.custom)
            if item["type"] == "function_call":
                out = self._ev("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                               name=o["name"], arguments=text)
            else:
                out = self._ev("response.custom_tool_call_input.done", item_id=item["id"], output_index=index,
                               input=item["input"])
        self.output.append(item)
        return out + self._ev("response.output_item.done", output_index=index, item=item)

    def _text(self, text: str) -> bytes:
        out = b""
        if self.open is None or self.open["kind"] != "text":
            out = self._close()
            item_id = "msg_" + secrets.token_hex(12)
            self.open = {"kind": "text", "key": None, "id": item_id, "name": "", "parts": []}
            index = len(self.output)
            out += self._ev("response.output_item.added", output_index=index,
                            item={**_message_item(item_id, "", "in_progress"), "content": []})
            out += self._ev("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
                            part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        self.open["parts"].append(text)
        self.seen.text.append(text)
        return out + self._ev("response.output_text.delta", item_id=self.open["id"], output_index=len(self.output),
                              content_index=0, delta=text, logprobs=[])

    def _tool(self, key: int, call_id: str, name: str, fragment: str) -> bytes:
        out = b""
        if self.open is None or self.open["key"] != key:
            out = self._close()
            self.open = {"kind": "tool", "key": key, "id": call_id, "name": name, "parts": []}
            item = _call_item(call_id, name, "", name in self.custom, "in_progress")
            out += self._ev("response.output_item.added", output_index=len(self.output), item=item)
        if fragment:
            self.open["parts"].append(fragment)
            if name not in self.custom and self.open["name"] not in self.custom:
                out += self._ev("response.function_call_arguments.delta", item_id="fc_" + self.open["id"],
                                output_index=len(self.output), delta=fragment)
        return out

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta) and event.text:
            return self._text(event.text)
        if isinstance(event, ToolCallDelta):
            _, new = self.seen.tool_ordinal(event.index)
            if new or (self.open is not None and self.open["key"] == event.index):
                return self._tool(event.index, "call_" + secrets.token_hex(12), event.name or "",
                                  event.arguments_fragment)
        return b""

    def finish(self, result: ChatResult) -> bytes:
        out = b""
        rest = self.seen.missing_text(result)
        if rest:
            out += self._text(rest)
        for n, call in enumerate(self.seen.missing_calls(result)):
            self.seen.tool_ordinal(-1 - n)
            out += self._tool(-1 - n, call.id, call.name, json.dumps(call.arguments))
        out += self._close()
        length = result.finish_reason == "length"
        env = _envelope(self.id, self.model, self.created, "incomplete" if length else "completed", self.output,
                        _usage(result.usage), incomplete=length)
        return out + self._ev("response.incomplete" if length else "response.completed", response=env)

    def error(self, err: ServeError) -> bytes:
        error = {"code": _openai.error_body(err)["error"]["code"] or "server_error", "message": err.message}
        env = _envelope(self.id, self.model, self.created, "failed", self.output, None, error=error)
        return self._ev("response.failed", response=env)


class ResponsesDialect:
    name = "responses"
    parse = staticmethod(parse)
    response = staticmethod(response)
    renderer = Renderer
    error_body = staticmethod(_openai.error_body)
    error_status = staticmethod(_openai.error_status)
    model_list = staticmethod(_openai.model_list)


RESPONSES = ResponsesDialect()
