"""Scripted-model renderer for the Anthropic Messages API (`POST /v1/messages`).

Implements the renderer contract of model.py. Streams follow wire.md 2.4 exactly
(message_start, content blocks with their deltas, a ping, message_delta with cumulative
usage, message_stop); usage is converted to Anthropic's convention, where
`input_tokens` excludes the cache reads and writes. Errors follow 2.5.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, cut_answer, cut_stream, text_pieces
from anvil.providers.scripted.server import RecordedRequest, Reply

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _usage(a: ScriptedAnswer) -> dict[str, Any]:
    assert a.input_tokens is not None and a.output_tokens is not None
    usage: dict[str, Any] = {
        "input_tokens": a.input_tokens - a.cache_read_tokens - a.cache_write_tokens,
        "cache_creation_input_tokens": a.cache_write_tokens,
        "cache_read_input_tokens": a.cache_read_tokens,
        "output_tokens": a.output_tokens,
    }
    if a.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": a.reasoning_tokens}
    return usage


def _msg_id(req: RecordedRequest, a: ScriptedAnswer) -> str:
    return f"msg_scripted_{abs(hash((req.body, a.text))) % 10**10:010d}"


def _headers(a: ScriptedAnswer, ctype: str) -> list[tuple[str, str]]:
    return [("content-type", ctype), ("request-id", a.request_id or "req_scripted")]


def _tool_id(i: int, call: Any) -> str:
    return call.id or f"toolu_scripted_{i:02d}"


def _rejection(req: RecordedRequest) -> Reply | None:
    """What the real API refuses: no version header (C74), sampling params under 2026-10-21 (C13)."""
    version = req.headers.get("anthropic-version")
    if not version:
        return _error(400, "invalid_request_error", "anthropic-version: header is required")
    body = req.json if isinstance(req.json, dict) else {}
    if version >= "2026-10-21":
        for param in ("temperature", "top_p", "top_k"):
            if param in body:
                return _error(400, "invalid_request_error", f"{param}: Extra inputs are not permitted")
    if not (req.headers.get("x-api-key") or req.headers.get("authorization")):
        return _error(401, "authentication_error", "x-api-key header is required")
    return None


def render(req: RecordedRequest, a: ScriptedAnswer) -> Reply:
    rejected = _rejection(req)
    if rejected is not None:
        return rejected
    stop = _STOP.get(a.finish_reason, a.finish_reason)
    if not req.stream:
        content: list[dict[str, Any]] = []
        if a.reasoning:
            content.append({"type": "thinking", "thinking": a.reasoning, "signature": "U2NyaXB0ZWQ="})
        if a.text:
            content.append({"type": "text", "text": a.text})
        for i, call in enumerate(a.tool_calls):
            content.append({"type": "tool_use", "id": _tool_id(i, call), "name": call.name,
                            "input": call.arguments})
        body = {"id": _msg_id(req, a), "type": "message", "role": "assistant", "model": a.model,
                "content": content, "stop_reason": stop, "stop_sequence": None, "usage": _usage(a)}
        return Reply.json(json.dumps(body), headers=_headers(a, "application/json"))

    events: list[bytes] = []

    def emit(name: str, payload: dict[str, Any]) -> None:
        events.append(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    start_usage = dict(_usage(a), output_tokens=1)
    start_usage.pop("output_tokens_details", None)
    emit("message_start", {"type": "message_start", "message": {
        "id": _msg_id(req, a), "type": "message", "role": "assistant", "content": [],
        "model": a.model, "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
    index = 0
    if a.reasoning:
        emit("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in text_pieces(a.reasoning):
            emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": {"type": "thinking_delta", "thinking": piece}})
        emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                     "delta": {"type": "signature_delta", "signature": "U2NyaXB0ZWQ="}})
        emit("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    if a.text:
        emit("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": {"type": "text", "text": ""}})
        emit("ping", {"type": "ping"})
        for piece in text_pieces(a.text):
            emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": {"type": "text_delta", "text": piece}})
        emit("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    for i, call in enumerate(a.tool_calls):
        emit("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": _tool_id(i, call), "name": call.name, "input": {}}})
        args = json.dumps(call.arguments)
        for frag in ["", args[: len(args) // 2], args[len(args) // 2 :]]:
            emit("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": {"type": "input_json_delta", "partial_json": frag}})
        emit("content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    final_usage: dict[str, object] = {"output_tokens": a.output_tokens}
    if a.reasoning_tokens:
        final_usage["output_tokens_details"] = {"thinking_tokens": a.reasoning_tokens}
    emit("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": final_usage})
    emit("message_stop", {"type": "message_stop"})
    return Reply.sse(events, headers=_headers(a, "text/event-stream; charset=utf-8") + [
        ("cache-control", "no-cache")])


def _error(status: int, etype: str, message: str, headers: list[tuple[str, str]] | None = None,
           details: dict[str, Any] | None = None) -> Reply:
    err: dict[str, Any] = {"type": etype, "message": message}
    if details:
        err["details"] = details
    body = {"type": "error", "error": err, "request_id": "req_scripted_error"}
    return Reply.json(json.dumps(body), status=status,
                      headers=[("content-type", "application/json"), ("request-id", "req_scripted_error"),
                               *(headers or [])])


_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "rate_limit_error", "Rate limit exceeded (scripted)."),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server": (500, "api_error", "Internal server error (scripted)."),
    "quota": (429, "rate_limit_error", "Monthly usage limit for your tier has been reached (scripted)."),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "model_not_found": (404, "not_found_error", "model: not found (scripted)"),
    "context_overflow": (400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
    "invalid_request": (400, "invalid_request_error", "invalid request (scripted)"),
    "content_policy": (400, "invalid_request_error", "Output blocked by content filtering policy (scripted)"),
}


def render_error(req: RecordedRequest, f: ScriptedFailure) -> Reply:
    if f.kind == "stream_cut":
        return cut_stream(render(req, cut_answer(req)), keep=5)
    status, etype, message = _ERRORS.get(f.kind, _ERRORS["server"])
    headers = [("retry-after", f"{f.retry_after:g}")] if f.retry_after is not None else []
    details = {"error_code": "enforced_spend_limit_reached"} if f.kind == "quota" else None
    return _error(status, etype, f.message or message, headers, details)
