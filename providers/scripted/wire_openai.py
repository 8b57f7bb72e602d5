"""Scripted-model renderer for OpenAI Chat Completions and the OpenAI-compatible servers.

Implements the renderer contract of model.py for any path ending in `/chat/completions`
(`/v1/...` for OpenAI, vLLM, llama.cpp, LM Studio, Ollama /v1; `/api/v1/...` for
OpenRouter). Streams follow wire.md 3.4: a role chunk, content / reasoning / tool-call
deltas, a finish chunk, and, when the request asked with `stream_options.include_usage`
(or always, on OpenRouter), a final `choices: []` usage chunk, then `data: [DONE]`; when
it did not ask, usage rides on the finish chunk, as Mistral and vLLM send it.
Usage is in OpenAI's convention (prompt_tokens include cached tokens). OpenRouter paths
also get `: OPENROUTER PROCESSING` comments and `usage.cost`.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, cut_answer, cut_stream, text_pieces
from anvil.providers.scripted.server import RecordedRequest, Reply


def _is_openrouter(req: RecordedRequest) -> bool:
    return req.path.startswith("/api/v1/")


def _usage(req: RecordedRequest, a: ScriptedAnswer) -> dict[str, Any]:
    assert a.input_tokens is not None and a.output_tokens is not None
    usage: dict[str, Any] = {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": a.reasoning_tokens or 0},
    }
    if a.cache_write_tokens:
        usage["prompt_tokens_details"]["cache_write_tokens"] = a.cache_write_tokens
    if a.cost is not None:
        usage["cost"] = "__COST__"  # replaced by the exact decimal text below
    return usage


def _dumps(obj: Any, a: ScriptedAnswer) -> str:
    text = json.dumps(obj, separators=(",", ":"))
    if a.cost is not None:
        text = text.replace('"__COST__"', str(a.cost))
    return text


def _reasoning_field(req: RecordedRequest) -> str:
    return "reasoning" if _is_openrouter(req) else "reasoning_content"


def _call_id(i: int, call: Any) -> str:
    return call.id or f"call_scripted_{i:02d}"


def render(req: RecordedRequest, a: ScriptedAnswer) -> Reply:
    cid = f"chatcmpl-scripted{abs(hash((req.body, a.text))) % 10**8:08d}"
    headers = [("x-request-id", a.request_id or "req_scripted")]
    if _is_openrouter(req):
        headers.append(("x-generation-id", f"gen-{cid}"))
    finish = a.finish_reason
    if not req.stream:
        message: dict[str, Any] = {"role": "assistant", "content": a.text or None, "refusal": None}
        if a.reasoning:
            message[_reasoning_field(req)] = a.reasoning
        if a.tool_calls:
            message["tool_calls"] = [
                {"id": _call_id(i, c), "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for i, c in enumerate(a.tool_calls)]
        body = {"id": cid, "object": "chat.completion", "created": 1761000000, "model": a.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": _usage(req, a)}
        return Reply.json(_dumps(body, a), headers=headers)

    head = {"id": cid, "object": "chat.completion.chunk", "created": 1761000000, "model": a.model}
    events: list[bytes] = []
    if _is_openrouter(req):
        events.append(b": OPENROUTER PROCESSING\n\n")

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
        obj = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                   "finish_reason": finish_reason}])
        events.append(f"data: {_dumps(obj, a)}\n\n".encode())

    chunk({"role": "assistant", "content": ""})
    for piece in text_pieces(a.reasoning):
        chunk({_reasoning_field(req): piece})
    for piece in text_pieces(a.text):
        chunk({"content": piece})
    for i, call in enumerate(a.tool_calls):
        args = json.dumps(call.arguments)
        chunk({"tool_calls": [{"index": i, "id": _call_id(i, call), "type": "function",
                               "function": {"name": call.name, "arguments": ""}}]})
        for frag in (args[: len(args) // 2], args[len(args) // 2 :]):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
    opts = req.json.get("stream_options") if isinstance(req.json, dict) else None
    if _is_openrouter(req) or (isinstance(opts, dict) and opts.get("include_usage")):
        chunk({}, finish)
        obj = dict(head, choices=[], usage=_usage(req, a))
        events.append(f"data: {_dumps(obj, a)}\n\n".encode())
    else:
        # Servers that were not asked (Mistral, vLLM, many others) put usage on the finish chunk.
        obj = dict(head, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
                   usage=_usage(req, a))
        events.append(f"data: {_dumps(obj, a)}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    return Reply.sse(events, headers=[("content-type", "text/event-stream")] + headers)


_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "rate_limit": (429, "tokens", "rate_limit_exceeded",
                   "Rate limit reached for scripted-model on tokens per min (TPM): Limit 30000, "
                   "Used 29000, Requested 2000. Please try again in 2s."),
    "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
    "server": (500, "server_error", None,
               "The server had an error while processing your request. Sorry about that!"),
    "quota": (429, "insufficient_quota", "insufficient_quota",
              "You exceeded your current quota, please check your plan and billing details."),
    "auth": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-scri****test."),
    "model_not_found": (404, "invalid_request_error", "model_not_found",
                        "The model `scripted` does not exist or you do not have access to it."),
    "context_overflow": (400, "invalid_request_error", "context_length_exceeded",
                         "This model's maximum context length is 128000 tokens. However, your messages "
                         "resulted in 130517 tokens. Please reduce the length of the messages."),
    "invalid_request": (400, "invalid_request_error", None, "Invalid request (scripted)."),
    "content_policy": (400, "invalid_request_error", "content_policy_violation",
                       "Your request was rejected as a result of our safety system."),
}


def render_error(req: RecordedRequest, f: ScriptedFailure) -> Reply:
    if f.kind == "stream_cut":
        return cut_stream(render(req, cut_answer(req)), keep=3)
    status, etype, code, message = _ERRORS.get(f.kind, _ERRORS["server"])
    headers = [("x-request-id", "req_scripted_error")]
    if f.retry_after is not None:
        headers.append(("retry-after", f"{f.retry_after:g}"))
    body = {"error": {"message": f.message or message, "type": etype, "param": None, "code": code}}
    return Reply.json(json.dumps(body), status=status, headers=headers)
