"""Scripted-model renderer for the Gemini API (`:generateContent` / `:streamGenerateContent`).

Implements the renderer contract of model.py. Replies look like generativelanguage
v1beta's (wire.md 4.3-4.5):

- streamed (`:streamGenerateContent?alt=sse`): `data: {...}` events framed with CRLF CRLF,
  text parts as deltas, `usageMetadata` a running snapshot (only the last chunk complete),
  `finishReason` on the last chunk, and no `[DONE]`;
- not streamed: one pretty-printed JSON body, as the real API sends;
- usage in Gemini's convention: `promptTokenCount` includes cached tokens,
  `candidatesTokenCount` excludes `thoughtsTokenCount`;
- function calls whole in one part, `args` an object, with a `thoughtSignature`;
- errors are Google RPC envelopes: a per-minute 429 with `RetryInfo.retryDelay`, a
  `PerDay` quota 429, `API_KEY_INVALID` as a 400, a 503 `UNAVAILABLE`, a blocked prompt
  as a 200 with `promptFeedback.blockReason` and no candidates.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, text_pieces
from anvil.providers.scripted.server import RecordedRequest, Reply

_SIGNATURE = "c2NyaXB0ZWQtdGhvdWdodC1zaWduYXR1cmU="  # base64("scripted-thought-signature")
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_JSON = ("content-type", "application/json; charset=UTF-8")
_SSE = ("content-type", "text/event-stream")


def _usage(a: ScriptedAnswer, final: bool = True) -> dict[str, Any]:
    assert a.input_tokens is not None and a.output_tokens is not None
    reasoning = a.reasoning_tokens or 0
    usage: dict[str, Any] = {"promptTokenCount": a.input_tokens}
    if not final:  # mid-stream snapshots only know the prompt
        usage["totalTokenCount"] = a.input_tokens
        return usage
    usage["candidatesTokenCount"] = max(0, a.output_tokens - reasoning)
    usage["totalTokenCount"] = a.input_tokens + a.output_tokens
    if a.cache_read_tokens:
        usage["cachedContentTokenCount"] = a.cache_read_tokens
    if reasoning:
        usage["thoughtsTokenCount"] = reasoning
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": a.input_tokens}]
    return usage


def _call_parts(a: ScriptedAnswer) -> list[dict[str, Any]]:
    parts = []
    for call in a.tool_calls:
        fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if call.id:
            fc["id"] = call.id
        parts.append({"functionCall": fc, "thoughtSignature": _SIGNATURE})
    return parts


def _response_id(req: RecordedRequest, a: ScriptedAnswer) -> str:
    return a.request_id or f"scripted{abs(hash((req.body, a.text))) % 10**10:010d}"


def _chunk(parts: list[dict[str, Any]] | None, a: ScriptedAnswer, rid: str, *, finish: str | None,
           final_usage: bool) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model"}, "index": 0}
    if parts:
        cand["content"] = {"parts": parts, "role": "model"}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], "usageMetadata": _usage(a, final_usage),
            "modelVersion": a.model, "responseId": rid}


def _event(obj: dict[str, Any]) -> bytes:
    # The real API's spacing: `"key": value` pairs, CRLF CRLF after each event.
    return b"data: " + json.dumps(obj, separators=(",", ": ")).encode() + b"\r\n\r\n"


def render(req: RecordedRequest, a: ScriptedAnswer) -> Reply:
    rid = _response_id(req, a)
    finish = _FINISH.get(a.finish_reason, "STOP")
    if not req.stream:
        parts: list[dict[str, Any]] = []
        if a.reasoning:
            parts.append({"text": a.reasoning, "thought": True})
        if a.text:
            parts.append({"text": a.text})
        parts += _call_parts(a)
        body = _chunk(parts, a, rid, finish=finish, final_usage=True)
        return Reply.json(json.dumps(body, indent=2), headers=[_JSON])

    events: list[bytes] = []
    for piece in text_pieces(a.reasoning):
        events.append(_event(_chunk([{"text": piece, "thought": True}], a, rid, finish=None, final_usage=False)))
    pieces = text_pieces(a.text)
    for piece in pieces[:-1] if not a.tool_calls else pieces:
        events.append(_event(_chunk([{"text": piece}], a, rid, finish=None, final_usage=False)))
    last: list[dict[str, Any]] = _call_parts(a)
    if pieces and not a.tool_calls:
        last = [{"text": pieces[-1]}]
    events.append(_event(_chunk(last, a, rid, finish=finish, final_usage=True)))
    return Reply.sse(events, headers=[_SSE])


def _rpc(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> str:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return json.dumps({"error": err}, indent=2)


def _quota_details(quota_id: str, model: str, retry_after: float | None) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = [{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": "10",
        }],
    }]
    if retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"})
    return details


def render_error(req: RecordedRequest, f: ScriptedFailure) -> Reply:
    model = req.model or "scripted-model"
    if f.kind == "stream_cut":
        a = ScriptedAnswer(text="This answer is cut", input_tokens=10, output_tokens=5, model=model)
        first = _event(_chunk([{"text": "This answer"}], a, "scriptedCut", finish=None, final_usage=False))
        return Reply(status=200, headers=[_SSE], chunks=[first], framing="chunked", cut=True)
    if f.kind == "content_policy":  # a blocked prompt is a 200 without candidates
        body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                "modelVersion": model, "responseId": "scriptedBlocked"}
        if req.stream:
            return Reply.sse([_event(body)], headers=[_SSE])
        return Reply.json(json.dumps(body, indent=2), headers=[_JSON])
    if f.kind == "rate_limit":
        wait = f.retry_after if f.retry_after is not None else 17
        text = _rpc(429, "RESOURCE_EXHAUSTED",
                    f.message or f"You exceeded your current quota (scripted). Please retry in {wait:g}s.",
                    _quota_details("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", model, wait))
        return Reply.json(text, status=429, headers=[_JSON])
    if f.kind == "quota":
        text = _rpc(429, "RESOURCE_EXHAUSTED",
                    f.message or "You exceeded your current quota, please check your plan and billing details.",
                    _quota_details("GenerateRequestsPerDayPerProjectPerModel-FreeTier", model, None))
        return Reply.json(text, status=429, headers=[_JSON])
    table: dict[str, tuple[int, str, str, list[dict[str, Any]] | None]] = {
        "auth": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                 [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                   "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
        "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", None),
        "server": (500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                                    "https://developers.generativeai.google/guide/troubleshooting", None),
        "model_not_found": (404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                                              "supported for generateContent. Call ListModels to see the list "
                                              "of available models and their supported methods.", None),
        "context_overflow": (400, "INVALID_ARGUMENT", "The input token count (1200293) exceeds the maximum "
                                                      "number of tokens allowed (1048576).", None),
        "invalid_request": (400, "INVALID_ARGUMENT", "Invalid JSON payload received (scripted).", None),
    }
    code, status, message, details = table.get(f.kind, table["server"])
    headers = [_JSON]
    if f.retry_after is not None and f.kind != "rate_limit":
        headers.append(("retry-after", f"{f.retry_after:g}"))
    return Reply.json(_rpc(code, status, f.message or message, details), status=code, headers=headers)
