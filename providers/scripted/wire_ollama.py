"""Scripted-model renderer for Ollama's native `/api/chat` (wire.md 6.1).

Implements the renderer contract of model.py:

- streamed (the default, unless the request says `"stream": false`): NDJSON
  (`application/x-ndjson`), one object per line ending in `\\n`: `message.thinking`
  deltas, `message.content` deltas, tool calls whole in one line (`arguments` an
  object, with `id` and `function.index` as newer servers send), then the `done: true`
  line with `done_reason` and the metrics (`prompt_eval_count`, `eval_count`,
  durations in nanoseconds);
- not streamed: one `application/json` object carrying both message and metrics;
- errors are `{"error": "<text>"}` with a status: 404 "model ... not found, try pulling
  it first", 503 when the queue is full, ...; a "context_overflow" failure is rendered
  the way Ollama really overflows: HTTP 200 and a *silently truncated* prompt whose
  `prompt_eval_count` equals the request's `num_ctx`.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, text_pieces
from anvil.providers.scripted.server import RecordedRequest, Reply

_CREATED = "2025-10-26T17:15:24.%06dZ"
_NS_PER_TOKEN = 2_900_000  # ~345 tok/s: a fast local GPU, so durations look plausible


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _num_ctx(req: RecordedRequest) -> int | None:
    options = req.json.get("options") if isinstance(req.json, dict) else None
    value = options.get("num_ctx") if isinstance(options, dict) else None
    return int(value) if isinstance(value, int) else None


def _metrics(a: ScriptedAnswer, prompt_tokens: int) -> dict[str, Any]:
    assert a.output_tokens is not None
    prompt_ns = prompt_tokens * _NS_PER_TOKEN // 10
    eval_ns = max(1, a.output_tokens) * _NS_PER_TOKEN
    load_ns = 3_753_500
    return {
        "total_duration": load_ns + prompt_ns + eval_ns,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": a.output_tokens,
        "eval_duration": eval_ns,
    }


def _tool_calls(a: ScriptedAnswer) -> list[dict[str, Any]]:
    return [{"id": c.id or f"call_scripted_{i:02d}",
             "function": {"index": i, "name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(a.tool_calls)]


def render(req: RecordedRequest, a: ScriptedAnswer, *, prompt_tokens: int | None = None) -> Reply:
    model = a.model
    assert a.input_tokens is not None
    done = {"done_reason": "length" if a.finish_reason == "length" else "stop", "done": True,
            **_metrics(a, a.input_tokens if prompt_tokens is None else prompt_tokens)}
    if not req.stream:
        message: dict[str, Any] = {"role": "assistant", "content": a.text}
        if a.reasoning:
            message["thinking"] = a.reasoning
        if a.tool_calls:
            message["tool_calls"] = _tool_calls(a)
        body = {"model": model, "created_at": _CREATED % 0, "message": message, **done}
        return Reply.json(json.dumps(body, separators=(",", ":")) + "\n",
                          headers=[("content-type", "application/json; charset=utf-8")])
    lines: list[bytes] = []
    n = 0

    def emit(message: dict[str, Any], **extra: Any) -> None:
        nonlocal n
        n += 1
        lines.append(_line({"model": model, "created_at": _CREATED % (n * 12000),
                            "message": {"role": "assistant", "content": "", **message}, **extra}))

    for piece in text_pieces(a.reasoning):
        emit({"thinking": piece}, done=False)
    for piece in text_pieces(a.text):
        emit({"content": piece}, done=False)
    if a.tool_calls:
        emit({"tool_calls": _tool_calls(a)}, done=False)
    emit({}, **done)
    return Reply.ndjson(lines)


_ERRORS: dict[str, tuple[int, str]] = {
    "model_not_found": (404, 'model "{model}" not found, try pulling it first'),
    "overloaded": (503, "server busy, please try again.  maximum pending requests exceeded"),
    "server": (500, "an error was encountered while running the model"),
    "auth": (401, "unauthorized"),
    "rate_limit": (429, "too many requests, please slow down"),
    "quota": (429, "you have reached your usage limit, please upgrade to continue"),
    "invalid_request": (400, "invalid request (scripted)"),
    "content_policy": (400, "request refused by content policy (scripted)"),
}


def render_error(req: RecordedRequest, f: ScriptedFailure) -> Reply:
    model = req.model or "scripted-model"
    if f.kind == "context_overflow":
        # Ollama does not fail: it cuts the prompt to num_ctx tokens and answers anyway.
        num_ctx = _num_ctx(req) or 2048
        a = ScriptedAnswer(text="An answer to half a prompt.", input_tokens=num_ctx * 2, output_tokens=8,
                           reasoning_tokens=0, model=model)
        return render(req, a, prompt_tokens=num_ctx)
    if f.kind == "stream_cut":
        first = _line({"model": model, "created_at": _CREATED % 1,
                       "message": {"role": "assistant", "content": "This answer"}, "done": False})
        return Reply(status=200, headers=[("content-type", "application/x-ndjson")], chunks=[first],
                     framing="chunked", cut=True)
    status, message = _ERRORS.get(f.kind, _ERRORS["server"])
    headers = [("content-type", "application/json; charset=utf-8")]
    if f.retry_after is not None:
        headers.append(("retry-after", f"{f.retry_after:g}"))
    text = f.message or message.format(model=model)
    return Reply.json(json.dumps({"error": text}), status=status, headers=headers)
