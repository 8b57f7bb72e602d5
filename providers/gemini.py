"""Google Gemini API adapter (generativelanguage v1beta, API-key auth). wire.md section 4.

One call is `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`
(or `:generateContent` when `options.stream` / `request.extra["stream"]` is false),
over the shared `http.HttpClient`, with `sse.iter_sse` for the stream; the request
body is built in `gemini_body.py`. What this adapter gets
right that is easy to get wrong (wire.md TL;DR 7-9):

- the key travels in the `x-goog-api-key` header, never in the URL, so it
  cannot land in a log line, an error message or a recorded request path;
- SSE frames end in CRLF and there is no `[DONE]`: the stream is over after
  the chunk carrying `finishReason`; EOF before it is `stream_broken`;
- `usageMetadata` is a running snapshot: the last one wins, never a sum;
- a function call finishes with `STOP`, so the finish reason comes from the
  parts (`tool_calls`); `args` are objects; `thoughtSignature` is kept in
  `ToolCall.extra` and sent back on that part next turn;
- usage: input = promptTokenCount (+ toolUsePromptTokenCount; cached tokens
  are already inside), output = candidates + thoughts, reasoning = thoughts;
- a bad key is a 400 (`API_KEY_INVALID`); a 429 is either a daily quota
  (`PerDay` quotaId: never retried) or a per-minute limit whose
  `RetryInfo.retryDelay` becomes `retry_after`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from anvil.providers.errors import ErrorInfo, classify, is_context_overflow, parse_error_body
from anvil.providers.gemini_body import THINKING_BUDGETS, build_body  # noqa: F401 (re-exported)
from anvil.providers.http import Exchange, HttpClient, ListedModel
from anvil.providers.jsonbounds import loads as bounded_loads
from anvil.providers.sse import iter_sse
from anvil.providers.types import (
    ChatRequest,
    ChatResult,
    ErrorKind,
    FinishReason,
    OnEvent,
    ProviderSettings,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
GENERATED_ID_PREFIX = "gemini-call-"  # for calls Gemini gave no id (most 2.x calls)

_CONTENT_FILTER = {
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
}
# The model produced something unusable: worth a retry or the next model.
_BROKEN = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE"}


# --- response ---------------------------------------------------------------------------


def usage_from_metadata(meta: dict[str, Any] | None) -> Usage:
    m = meta or {}
    thoughts = int(m.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(m.get("promptTokenCount") or 0) + int(m.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(m.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=int(m.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


class ResponseFolder:
    """Folds GenerateContentResponse chunks (one, when not streamed) into a ChatResult."""

    def __init__(self, ex: Exchange, model: str, on_event: OnEvent | None,
                 clock: Callable[[], float], t0: float) -> None:
        self.ex, self.model, self.on_event, self.clock, self.t0 = ex, model, on_event, clock, t0
        self.ttft: float | None = None
        self.text: list[str] = []
        self.thoughts: list[str] = []
        self.calls: list[ToolCall] = []
        self.usage_meta: dict[str, Any] | None = None
        self.finish: str | None = None
        self.model_version: str | None = None
        self.response_id: str | None = None
        self._ids = itertools.count()

    def _emit(self, event: Any) -> None:
        if self.ttft is None:
            self.ttft = self.clock() - self.t0
            self.ex.mark_output()
        if self.on_event is not None:
            self.on_event(event)

    def _fail(self, kind: ErrorKind, info: ErrorInfo | str, **kw: Any) -> UpstreamError:
        err = self.ex.fail(kind, info, **kw)
        err.request_id = err.request_id or self.response_id
        if self.usage_meta:
            err.usage = self.usage()
        return err

    def feed(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:  # an error after HTTP 200 (wire.md 4.4, C50)
            info = parse_error_body(json.dumps(chunk))
            partial = sum(map(len, self.text))
            if partial or self.calls:
                info.message += f" (stream failed after {partial} chars of partial output; discarded)"
            raise self._fail(classify_gemini(None, info), info)
        self.model_version = chunk.get("modelVersion") or self.model_version
        self.response_id = chunk.get("responseId") or self.response_id
        if chunk.get("usageMetadata"):
            self.usage_meta = chunk["usageMetadata"]  # a snapshot: keep the last
        candidates = chunk.get("candidates") or []
        if not candidates:
            block = (chunk.get("promptFeedback") or {}).get("blockReason")
            if block:  # C49: no candidates at all
                raise self._fail("content_policy", f"prompt blocked by Gemini (blockReason {block})",
                                 status=self.ex.status)
            return
        cand = candidates[0]
        for part in (cand.get("content") or {}).get("parts") or []:
            if "functionCall" in part:
                fc = part["functionCall"] or {}
                extra: dict[str, Any] = {}
                if part.get("thoughtSignature"):
                    extra["thoughtSignature"] = part["thoughtSignature"]
                if fc.get("id"):
                    extra["gemini_call_id"] = fc["id"]
                args = fc.get("args")
                call = ToolCall(
                    id=fc.get("id") or f"{GENERATED_ID_PREFIX}{next(self._ids)}",
                    name=fc.get("name", ""),
                    arguments=args if isinstance(args, dict) else {},
                    extra=extra,
                )
                self._emit(ToolCallDelta(len(self.calls), call.name, json.dumps(call.arguments)))
                self.calls.append(call)
            elif part.get("text"):
                if part.get("thought"):
                    self.thoughts.append(part["text"])
                    self._emit(ReasoningDelta(part["text"]))
                else:
                    self.text.append(part["text"])
                    self._emit(TextDelta(part["text"]))
        if cand.get("finishReason"):
            self.finish = cand["finishReason"]

    def usage(self) -> Usage:
        return usage_from_metadata(self.usage_meta)

    def result(self) -> ChatResult:
        if self.finish is None:
            raise self._fail("stream_broken", "the Gemini stream ended before a chunk with finishReason "
                                              "(truncated response)")
        if self.finish in _BROKEN:
            raise self._fail("server", f"Gemini finished with {self.finish}")
        if self.finish == "MISSING_THOUGHT_SIGNATURE":
            raise self._fail("invalid_request", "Gemini finished with MISSING_THOUGHT_SIGNATURE "
                                                "(a thoughtSignature was not sent back)")
        reason: FinishReason
        if self.finish == "MAX_TOKENS":
            reason = "length"
        elif self.finish in _CONTENT_FILTER or self.finish.startswith("IMAGE_"):
            reason = "content_filter"
        else:
            reason = "tool_calls" if self.calls else "stop"
        usage = self.usage()
        if self.on_event is not None:
            self.on_event(UsageUpdate(usage))
        return ChatResult(
            text="".join(self.text),
            finish_reason=reason,
            usage=usage,
            served_model=self.model_version or self.model,
            tool_calls=tuple(self.calls),
            reasoning_text="".join(self.thoughts),
            request_id=self.response_id or self.ex.request_id,
            latency_s=self.clock() - self.t0,
            ttft_s=self.ttft,
        )


# --- errors -----------------------------------------------------------------------------

_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)s", re.I)


def parse_retry_delay(value: Any) -> float | None:
    """A protobuf Duration string (`"17s"`, `"0.5s"`) -> seconds."""
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", value)
    return float(m.group(1)) if m else None


def classify_gemini(status: int | None, info: ErrorInfo) -> ErrorKind:
    """Gemini's own rules first (wire.md 4.5), then the shared classification.

    A 429 says "You exceeded your current quota" for per-minute limits too, so the
    shared quota markers must not decide it: the quotaId does (`PerDay`: quota).
    """
    if "API_KEY_INVALID" in info.reasons:
        return "auth"  # a 400, not a 401
    if is_context_overflow(info):
        return "context_overflow"
    code = status if status not in (None, 200) else info.numeric_code
    if code == 429 or info.type == "RESOURCE_EXHAUSTED":
        daily = any("PerDay" in r for r in info.reasons) or "limit: 0" in info.message
        return "quota" if daily else "rate_limit"
    return classify(status, info)


def gemini_retry_after(
    info: ErrorInfo, headers: Mapping[str, str], fallback: Callable[[Mapping[str, str]], float | None]
) -> float | None:
    """`RetryInfo.retryDelay`, else "Please retry in 45.5s." in the message, else Retry-After."""
    err = info.body.get("error") if isinstance(info.body, dict) else None
    for d in (err.get("details") if isinstance(err, dict) else None) or []:
        if isinstance(d, dict) and "retryDelay" in d:
            delay = parse_retry_delay(d["retryDelay"])
            if delay is not None:
                return delay
    m = _RETRY_IN.search(info.message)
    return float(m.group(1)) if m else fallback(headers)


# --- the adapter -----------------------------------------------------------------------


class _Tail:
    """Passes stream chunks through and keeps what came after the last SSE event."""

    LIMIT = 65536

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._buf = bytearray()

    def __iter__(self) -> Any:
        for chunk in self._chunks:
            self._buf += chunk
            cut = max(self._buf.rfind(b"\n\n"), self._buf.rfind(b"\r\n\r\n"))
            if cut >= 0:
                del self._buf[: cut + 2]
            if len(self._buf) > self.LIMIT:
                del self._buf[: len(self._buf) - self.LIMIT]
            yield chunk

    @property
    def tail(self) -> str:
        return bytes(self._buf).decode("utf-8", "replace")



class GeminiChat:
    def __init__(self, settings: ProviderSettings, *, transport: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.http = HttpClient(settings, transport=transport, clock=clock)

    @property
    def base_url(self) -> str:
        base = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        return base.removesuffix("/" + API_VERSION)

    def url(self, model: str, stream: bool) -> str:
        method = "streamGenerateContent" if stream else "generateContent"
        return f"{self.base_url}/{API_VERSION}/models/{model.removeprefix('models/')}:{method}"

    def headers(self) -> dict[str, str]:
        # The key goes in a header, never in `?key=`: URLs end up in logs and error text.
        h = {"content-type": "application/json"}
        if self.settings.api_key:
            h["x-goog-api-key"] = self.settings.api_key
        return h

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        stream = bool(request.extra.get("stream", self.settings.options.get("stream", True)))
        body = build_body(request, self.settings)
        t0 = self.clock()
        with self.http.post_stream(self.url(request.model, stream), body, headers=self.headers(),
                                   timeout=request.timeout, model=request.model,
                                   output_tokens=request.max_output_tokens,
                                   params={"alt": "sse"} if stream else None) as ex:
            if ex.status >= 300:
                raise self._http_error(ex)
            folder = ResponseFolder(ex, request.model, on_event, self.clock, t0)
            if "text/event-stream" in ex.content_type:
                raw = _Tail(ex.iter_bytes())
                for ev in iter_sse(raw):
                    folder.feed(self._decode(ex, ev.data))
                    if folder.finish is not None:
                        break  # no [DONE]: the finishReason chunk is the last one
                else:
                    # The SDK also accepts an error body *without* `data:` inside the stream,
                    # pretty-printed over several lines; SSE parsing skips it, so look for it.
                    info = parse_error_body(raw.tail)
                    if folder.finish is None and info.is_json and isinstance(info.body, dict) \
                            and "error" in info.body:
                        folder.feed(info.body)
            else:
                for chunk in self._decode_whole(ex, ex.read_text()):
                    folder.feed(chunk)
            return folder.result()

    def _http_error(self, ex: Exchange) -> UpstreamError:
        # Gemini's wait lives in the body (RetryInfo), and only a rate limit has one.
        def wait(kind: ErrorKind, info: ErrorInfo, headers: Mapping[str, str]) -> float | None:
            return gemini_retry_after(info, headers, self.http.retry_after) if kind == "rate_limit" else None

        return ex.error(classify_gemini, retry_after=wait)

    @staticmethod
    def _decode(ex: Exchange, data: str) -> dict[str, Any]:
        try:
            obj = bounded_loads(data)
        except ValueError:
            shown = data.strip()[:200]
            if not shown:
                raise ex.fail("server", f"empty {ex.status} body from Gemini", status=ex.status) from None
            raise ex.fail("stream_broken", f"malformed or truncated Gemini chunk: {shown!r}") from None
        if not isinstance(obj, dict):
            raise ex.fail("server", f"unexpected Gemini JSON: {data[:200]!r}", status=ex.status)
        return obj

    @classmethod
    def _decode_whole(cls, ex: Exchange, text: str) -> list[dict[str, Any]]:
        """A non-SSE body: one response, or the JSON array a stream without alt=sse sends."""
        if text.lstrip().startswith("["):
            try:
                items = bounded_loads(text)
            except ValueError:
                raise ex.fail("stream_broken", f"malformed or truncated Gemini array: {text[:200]!r}") from None
            if all(isinstance(i, dict) for i in items):
                return items
        return [cls._decode(ex, text)]

    def list_models(self, timeout: float = 30.0) -> list[ListedModel]:
        """Models usable with generateContent (C51): `models/` stripped, every page read."""
        out: list[ListedModel] = []
        params: dict[str, str] = {"pageSize": "1000"}
        while True:
            doc = self.http.get_json(f"{self.base_url}/{API_VERSION}/models", headers=self.headers(),
                                     timeout=timeout, params=params, classify=classify_gemini) or {}
            for m in doc.get("models") or []:
                if isinstance(m, dict) and "generateContent" in (m.get("supportedGenerationMethods") or []):
                    out.append(ListedModel(str(m.get("name", "")).removeprefix("models/"),
                                           m.get("displayName"), m.get("inputTokenLimit"),
                                           m.get("outputTokenLimit")))
            token = doc.get("nextPageToken")
            if not token:
                return out
            params = {"pageSize": "1000", "pageToken": str(token)}

    def close(self) -> None:
        self.http.close()


def create(settings: ProviderSettings, *, transport: Any = None,
           clock: Callable[[], float] = time.monotonic) -> GeminiChat:
    return GeminiChat(settings, transport=transport, clock=clock)
