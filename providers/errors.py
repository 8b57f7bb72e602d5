"""Shared error classification: HTTP status + error body -> `ErrorKind` (wire.md 8.5, 9.3).

API (adapters call these; add provider-specific checks first, then fall back):

    info = parse_error_body(text)            # any vendor envelope, or HTML / empty
    kind = classify(status, info)            # -> ErrorKind
    err  = make_error(kind, info.message, provider=..., model=..., status=..., ...)

- `ErrorInfo` reads every envelope seen in the wild: OpenAI `{"error":{message,type,
  code,param}}`, Anthropic `{"type":"error","error":{type,message,details}}`, Google RPC
  `{"error":{code,message,status,details}}`, OpenRouter `error.metadata.raw`, vLLM
  legacy top-level `{"object":"error",...}`, Ollama `{"error":"text"}`, and a body
  that is not JSON at all (Cloudflare HTML: its text, shortened).
- `classify` applies, in order: context-overflow detectors (structured codes, then
  the Anthropic, Gemini and generic regexes, also against `metadata.raw`; they run
  *before* the status so llama.cpp's HTTP-500 overflow is not a retryable 500),
  quota (insufficient_quota, spend limits, 402, "Request too large ... TPM"
  429/413, billing), auth (401/403, API_KEY_INVALID), content policy,
  model_not_found (404), rate_limit (429), overloaded (529, 503, overloaded_error),
  timeout (408), server (5xx, 409), invalid_request (other 4xx).
- `status=None` classifies an error that arrived inside a 200 stream by its type.
- `ProviderError` is an `UpstreamError` with the extras some callers want:
  `partial` (output was already streamed when it failed), `tokens_needed` /
  `context_limit` (parsed from overflow messages), `rate_limits` (the
  rate-limit response headers). The chain-walker can treat it as a plain
  `UpstreamError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from anvil.providers.types import ErrorKind, UpstreamError, Usage

__all__ = [
    "ErrorInfo",
    "ProviderError",
    "parse_error_body",
    "classify",
    "overflow_numbers",
    "is_context_overflow",
    "make_error",
]

_MAX_MESSAGE = 500


class ProviderError(UpstreamError):
    """An `UpstreamError` with optional details for smarter callers."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        partial: bool = False,
        tokens_needed: int | None = None,
        context_limit: int | None = None,
        rate_limits: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(kind, message, **kwargs)
        self.partial = partial  # some output was already handed to on_event
        self.tokens_needed = tokens_needed
        self.context_limit = context_limit
        self.rate_limits = rate_limits or {}


@dataclass
class ErrorInfo:
    """The parts of an error body that classification looks at."""

    message: str = ""
    type: str | None = None  # error.type / Google status / vLLM type
    code: str | None = None  # error.code as text ("insufficient_quota", "429", ...)
    numeric_code: int | None = None  # error.code when it is an HTTP-like number
    detail_code: str | None = None  # Anthropic error.details.error_code
    reasons: list[str] = field(default_factory=list)  # Google ErrorInfo reasons, quota ids
    raw: str | None = None  # OpenRouter error.metadata.raw (an upstream body)
    moderation: bool = False  # OpenRouter moderation metadata present
    is_json: bool = False
    body: Any = None  # the parsed JSON, for adapter-specific checks


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def parse_error_body(text: str | bytes | None) -> ErrorInfo:
    """Parse any vendor's error body; never raises."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text or ""
    try:
        body = json.loads(text)
    except ValueError:
        stripped = text.strip()
        if not stripped:
            return ErrorInfo(message="empty response body")
        title = re.search(r"<title>(.*?)</title>", stripped, re.I | re.S)
        return ErrorInfo(message=_short(title.group(1) if title else stripped))
    info = ErrorInfo(is_json=True, body=body)
    if not isinstance(body, dict):
        info.message = _short(text)
        return info
    err = body.get("error")
    if isinstance(err, str):  # Ollama, some proxies
        info.message = err
        return info
    if not isinstance(err, dict):
        if body.get("object") == "error" or "message" in body:  # vLLM legacy
            err = body
        else:
            info.message = _short(text)
            return info
    info.message = _text(err.get("message")) or _short(text)
    info.type = _text(err.get("type")) or _text(err.get("status"))
    code = err.get("code")
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        info.numeric_code = int(code)
    info.code = _text(code)
    details = err.get("details")
    if isinstance(details, dict):
        info.detail_code = _text(details.get("error_code"))
    elif isinstance(details, list):
        for d in details:
            if not isinstance(d, dict):
                continue
            if d.get("reason"):
                info.reasons.append(str(d["reason"]))
            for v in d.get("violations") or ():
                if isinstance(v, dict) and v.get("quotaId"):
                    info.reasons.append(str(v["quotaId"]))
    meta = err.get("metadata")
    if isinstance(meta, dict):
        if isinstance(meta.get("raw"), str):
            info.raw = meta["raw"]
        elif meta.get("raw") is not None:
            info.raw = json.dumps(meta["raw"])
        if meta.get("reasons") or meta.get("flagged_input"):
            info.moderation = True
    return info


# --- context overflow (wire.md 9.3, in order) -------------------------------------

_OVERFLOW_CODES = {"context_length_exceeded", "exceed_context_size_error", "context_window_exceeded"}
_ANTHROPIC_1 = re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum")
_ANTHROPIC_2 = re.compile(r"input length and .max_tokens. exceed context limit: (\d+) \+ (\d+) > (\d+)")
_GEMINI = re.compile(
    r"input token count \((\d+)\) exceeds the maximum number of tokens allowed \((\d+)\)"
)
_GENERIC = re.compile(
    r"maximum context length|context window|context length is only|exceeds the available"
    r" context size|context the overflows|greater than the context length|"
    r"context size has been exceeded",
    re.I,
)
# Numbers out of the generic messages, for tokens_needed / context_limit.
_LIMIT_IS = re.compile(r"(?:maximum context length|context length) is (?:only )?(\d+)", re.I)
_YOU_ASKED = re.compile(r"(?:resulted in|requested(?: about)?) (\d+) tokens", re.I)
_VLLM_NEW = re.compile(r"you passed (\d+) input tokens and requested (\d+) output tokens", re.I)


def is_context_overflow(info: ErrorInfo) -> bool:
    if (info.code in _OVERFLOW_CODES) or (info.type in _OVERFLOW_CODES):
        return True
    for text in (info.message, info.raw or ""):
        if (
            _ANTHROPIC_1.search(text)
            or _ANTHROPIC_2.search(text)
            or _GEMINI.search(text)
            or _GENERIC.search(text)
        ):
            return True
    return False


def overflow_numbers(info: ErrorInfo) -> tuple[int | None, int | None]:
    """(tokens the request needed, the model's limit), as far as the message says."""
    body = info.body.get("error") if isinstance(info.body, dict) else None
    if isinstance(body, dict) and "n_prompt_tokens" in body and "n_ctx" in body:  # llama.cpp
        return int(body["n_prompt_tokens"]), int(body["n_ctx"])
    for text in (info.message, info.raw or ""):
        if m := _ANTHROPIC_1.search(text):
            return int(m.group(1)), int(m.group(2))
        if m := _ANTHROPIC_2.search(text):
            return int(m.group(1)) + int(m.group(2)), int(m.group(3))
        if m := _GEMINI.search(text):
            return int(m.group(1)), int(m.group(2))
        if m := _VLLM_NEW.search(text):
            limit = _LIMIT_IS.search(text)
            return int(m.group(1)) + int(m.group(2)), int(limit.group(1)) if limit else None
        limit = _LIMIT_IS.search(text)
        asked = _YOU_ASKED.search(text)
        if limit or asked:
            return (int(asked.group(1)) if asked else None, int(limit.group(1)) if limit else None)
    return None, None


# --- the rest of the classification ----------------------------------------------

_QUOTA_MARKERS = re.compile(
    r"insufficient_quota|exceeded your current quota|credit balance is too low|"
    r"insufficient balance|requires more credits|billing",
    re.I,
)
_TOO_LARGE_FOR_WINDOW = re.compile(r"request too large.*(?:per min|\bTPM\b)", re.I | re.S)
_AUTH_MARKERS = {"invalid_api_key", "authentication_error", "permission_error", "API_KEY_INVALID",
                 "PERMISSION_DENIED", "UNAUTHENTICATED"}
_POLICY_MARKERS = re.compile(r"content[_ ]?(?:policy|filter)|moderation|safety system", re.I)

# The model's own malformed output, reported as a 400 (or inside a 200 stream): Groq's
# `tool_use_failed` is a bad tool call the model generated. Another attempt, or another model,
# can succeed, so it is `server` (retried, then the next model), not a request no model fixes.
_MODEL_FAULTS = frozenset({"tool_use_failed"})

_BY_TYPE: dict[str, ErrorKind] = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limit",
    "rate_limit_exceeded": "rate_limit",
    "api_error": "server",
    "server_error": "server",
    "internal_error": "server",
    "timeout_error": "timeout",
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "quota",
    "not_found_error": "model_not_found",
    "model_not_found": "model_not_found",
    "invalid_request_error": "invalid_request",
    "UNAVAILABLE": "overloaded",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "INTERNAL": "server",
}


def classify(status: int | None, info: ErrorInfo) -> ErrorKind:
    """The error kind for an HTTP status (None: an error inside a 200 stream) and body."""
    if is_context_overflow(info):
        return "context_overflow"
    marks = {m for m in (info.code, info.type, info.detail_code) if m} | set(info.reasons)
    if marks & _MODEL_FAULTS:
        return "server"
    if status is None or status == 200:
        status = info.numeric_code if info.numeric_code and info.numeric_code >= 400 else None
    per_minute = any("PerMinute" in r for r in info.reasons)  # Gemini: "exceeded your quota", retryable
    if (
        "insufficient_quota" in marks
        or "enforced_spend_limit_reached" in marks
        or "billing_error" in marks
        or status == 402
        or (_QUOTA_MARKERS.search(info.message) and not per_minute)
        or (status in (413, 429, None) and _TOO_LARGE_FOR_WINDOW.search(info.message))
        or any("PerDay" in r for r in info.reasons)
    ):
        return "quota"
    if status in (401, 403) and info.moderation:
        return "content_policy"
    if status in (401, 403) or marks & _AUTH_MARKERS:
        return "auth"
    if _POLICY_MARKERS.search(" ".join(marks)) or (
        status in (400, 403, None) and _POLICY_MARKERS.search(info.message)
    ):
        return "content_policy"
    if status == 404 or "model_not_found" in marks:
        return "model_not_found"
    if status == 429:
        return "rate_limit"
    if status in (529, 503) or "overloaded_error" in marks or "overloaded" in info.message.lower():
        return "overloaded"
    if status == 408:
        return "timeout"
    if status is not None and (status >= 500 or status == 409):
        return "server"
    if status is not None:
        return "invalid_request"
    for mark in (info.type, info.code):
        if mark in _BY_TYPE:
            return _BY_TYPE[mark]
    return "server"  # an unexplained error inside a stream


def make_error(
    kind: ErrorKind,
    info: ErrorInfo | str,
    *,
    provider: str = "",
    model: str = "",
    status: int | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
    usage: Usage | None = None,
    partial: bool = False,
    rate_limits: dict[str, str] | None = None,
) -> ProviderError:
    """Build the error, with overflow numbers filled in when the message has them."""
    if isinstance(info, str):
        info = ErrorInfo(message=info)
    needed, limit = overflow_numbers(info) if kind == "context_overflow" else (None, None)
    return ProviderError(
        kind,
        info.message,
        provider=provider,
        model=model,
        status=status,
        retry_after=retry_after,
        request_id=request_id,
        usage=usage,
        partial=partial,
        tokens_needed=needed,
        context_limit=limit,
        rate_limits=rate_limits,
    )
