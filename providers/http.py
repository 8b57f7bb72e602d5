"""Shared HTTP plumbing for every httpx adapter: client, streaming POST, headers, redaction.

API (providers B: build on these, do not copy them):

    http = HttpClient(settings, transport=transport, clock=clock)   # one per adapter
    with http.post_stream(url, json_body, headers=..., timeout=request.timeout,
                          model=request.model) as ex:              # ex: Exchange
        ex.status, ex.headers, ex.request_id
        if ex.status >= 400: raise ex.error(classify_fn)           # reads + classifies body
        #   (optional retry_after=fn(kind, info, headers) when the wait is in the body)
        for chunk in ex.iter_bytes(): ...                          # errors mapped, deadline kept
        text = ex.read_text()                                      # a non-streamed body
    http.get_json(url, headers=..., timeout=...)                   # model listings

- httpx exceptions become `UpstreamError`: connect failures -> `connection`, read / write /
  pool timeouts and the whole-exchange deadline (`ChatRequest.timeout`, measured with the
  injected clock) -> `timeout`, a body cut mid-stream (chunked body never terminated,
  C35; peer reset mid-body) -> `stream_broken`. `ex.mark_output()` records that output
  was handed on, so the error says `partial=True`.
- `retry_after_seconds(headers, now=time.time)`: `retry-after-ms`, then `retry-after` as
  seconds or as an HTTP date (against the injected wall clock).
- `parse_duration("6m0s") == 360.0`: OpenAI's `x-ratelimit-reset-*` durations.
- `rate_limit_headers(headers)`: the `*ratelimit*` headers, for `ProviderError.rate_limits`.
- `redact(text, secrets)`: removes the key itself and any `Bearer ...`, `x-api-key: ...`,
  `key=...` value from text bound for an error message, a log or a recorded request;
  `redact_headers(headers, secrets)` blanks credential headers for a recorded exchange.
- `connect_timeout` comes from `settings.options["connect_timeout"]` (default 10 s).
- `http.require_key(model)`: an `auth` error before any request when there is no key.
- `ListedModel`: what `list_models()` of an adapter returns.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from anvil.providers.errors import ErrorInfo, ProviderError, make_error, parse_error_body
from anvil.providers.errors import classify as default_classify
from anvil.providers.types import ErrorKind, ProviderSettings, UpstreamError

if TYPE_CHECKING:
    from httpx import BaseTransport, Response

__all__ = [
    "HttpClient",
    "Exchange",
    "ListedModel",
    "retry_after_seconds",
    "parse_duration",
    "rate_limit_headers",
    "redact",
    "redact_headers",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
# Bounds on what a server may send (settings: a provider's options.max_response_bytes and
# options.max_error_body_bytes). A response is capped at 1 KB per output token asked for
# (a streamed token costs 100-250 bytes of SSE), at least 8 MB; 32 MB when the caller does
# not say. An error body is read up to 64 KB: the message is in its first few hundred bytes,
# and a 20 MB one took 27 s through the classifiers.
RESPONSE_BYTES_PER_TOKEN = 1024
MIN_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ListedModel:
    """One entry of a provider's model listing."""

    id: str
    display_name: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None


# --- redaction ------------------------------------------------------------------

_REDACTIONS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)((?:x-api-key|x-goog-api-key|api[-_]?key|authorization)[\"']?\s*[:=]\s*[\"']?)"
                   r"(?!bearer\s)[^\s\"',;&]+"),
        r"\1[redacted]",
    ),
    (re.compile(r"(?i)([?&]key=)[^&\s\"']+"), r"\1[redacted]"),
    (re.compile(r"\bsk-(?:ant-|or-v1-|proj-)?[A-Za-z0-9_\-]{12,}"), "sk-[redacted]"),
]


def redact(text: str, secrets: tuple[str | None, ...] | list[str | None] = ()) -> str:
    """`text` with every secret and every credential-looking value replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key",
                               "api-key", "openai-organization", "openai-project", "cookie", "set-cookie"})


def redact_headers(
    headers: Mapping[str, str], secrets: tuple[str | None, ...] | list[str | None] = ()
) -> dict[str, str]:
    """Headers safe to record: credential headers blanked, the rest scrubbed of secrets."""
    return {k: "[redacted]" if k.lower() in SENSITIVE_HEADERS else redact(v, secrets) for k, v in headers.items()}


# --- headers --------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """`6m0s` -> 360.0, `1.2s` -> 1.2, `12ms` -> 0.012; None when it is not one."""
    if not text:
        return None
    text = text.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if "ratelimit" in k.lower()}


# --- the exchange ---------------------------------------------------------------


class Exchange:
    """One open HTTP response, with httpx errors mapped to `UpstreamError`."""

    def __init__(self, client: HttpClient, response: Response, *, model: str, deadline: float,
                 max_bytes: int = DEFAULT_RESPONSE_BYTES) -> None:
        self._client = client
        self._response = response
        self.model = model
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.received = 0
        self.status: int = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.partial = False  # set by mark_output(): output already handed on

    @property
    def request_id(self) -> str | None:
        h = self.headers
        return h.get("request-id") or h.get("x-request-id") or h.get("x-generation-id")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").lower()

    def mark_output(self) -> None:
        self.partial = True

    def fail(self, kind: ErrorKind, info: ErrorInfo | str, *, status: int | None = None,
             retry_after: float | None = None) -> ProviderError:
        """An error for this exchange (provider, model, request id, partial filled in)."""
        if isinstance(info, ErrorInfo):
            info.message = self._client.redact(info.message)
        else:
            info = self._client.redact(info)
        return make_error(
            kind,
            info,
            provider=self._client.settings.name,
            model=self.model,
            status=status,
            retry_after=retry_after,
            request_id=self.request_id,
            partial=self.partial,
            rate_limits=rate_limit_headers(self.headers),
        )

    def iter_bytes(self) -> Iterator[bytes]:
        import httpx

        clock = self._client.clock
        try:
            for chunk in self._response.iter_bytes():
                self.received += len(chunk)
                if self.received > self.max_bytes:
                    raise self.fail("stream_broken", f"the response passed the {self.max_bytes:,}-byte cap "
                                    "(options.max_response_bytes); the rest was not read")
                yield chunk
                if clock() > self.deadline:
                    raise self.fail("timeout", "the whole exchange took longer than its timeout")
        except httpx.TimeoutException as exc:
            raise self.fail("timeout", f"no data within the read timeout ({type(exc).__name__})") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise self.fail("stream_broken", f"connection lost mid-response: {exc}") from None
        except httpx.TransportError as exc:
            raise self.fail("connection", f"{type(exc).__name__}: {exc}") from None
        except httpx.HTTPError as exc:  # a body that cannot be decoded (bad gzip, ...)
            raise self.fail("stream_broken", f"unreadable response body: {type(exc).__name__}: {exc}") from None

    def read_bytes(self) -> bytes:
        return b"".join(self.iter_bytes())

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8", "replace")

    def read_capped(self, limit: int) -> str:
        """At most `limit` bytes of the body (an error body: the rest is never read); "" if it broke."""
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in self.iter_bytes():
                parts.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except UpstreamError:
            if not parts:
                return ""
        return b"".join(parts)[:limit].decode("utf-8", "replace")

    def error(
        self,
        classify: Callable[[int | None, ErrorInfo], ErrorKind],
        *,
        retry_after: Callable[[ErrorKind, ErrorInfo, Mapping[str, str]], float | None] | None = None,
    ) -> ProviderError:
        """Read an error response's body and classify it.

        `retry_after(kind, info, headers)` overrides the header-based wait (Gemini's
        `RetryInfo` lives in the body, for example).
        """
        text = self.read_capped(self._client.max_error_body_bytes)
        info = parse_error_body(text)
        kind = classify(self.status, info)
        if retry_after is None:
            wait = self._client.retry_after(self.headers)
        else:
            wait = retry_after(kind, info, self.headers)
        return self.fail(kind, info, status=self.status, retry_after=wait)


def is_loopback(url: str | None) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, ::1 or localhost."""
    import ipaddress
    from urllib.parse import urlsplit

    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpClient:
    """An httpx client for one provider, created lazily and reused (keep-alive)."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        transport: BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.wall_clock = wall_clock
        self.connect_timeout = float(settings.options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
        opts = settings.options
        self.max_response_bytes = int(opts["max_response_bytes"]) if opts.get("max_response_bytes") else None
        self.max_error_body_bytes = int(opts.get("max_error_body_bytes") or DEFAULT_ERROR_BODY_BYTES)
        self._client: Any = None
        self._lock = threading.Lock()

    def redact(self, text: str) -> str:
        return redact(text, (self.settings.api_key,))

    def require_key(self, model: str) -> None:
        """Fail before any request when the provider needs a key and has none."""
        if not self.settings.api_key:
            raise make_error("auth", f"no API key for provider {self.settings.name!r} (set its key "
                             "environment variable or key file)", provider=self.settings.name, model=model)

    def retry_after(self, headers: Mapping[str, str]) -> float | None:
        return retry_after_seconds(headers, self.wall_clock)

    def client(self) -> Any:
        with self._lock:  # one adapter may serve several threads
            if self._client is None:
                import httpx

                # options.keepalive: false = a fresh connection per request (llama.cpp's server
                # drops some kept-alive connections after a streamed answer; see openai_compatible).
                keep = self.settings.options.get("keepalive", True) is not False
                limits = httpx.Limits(max_connections=100, max_keepalive_connections=20 if keep else 0)
                # A proxy from the environment must never see loopback traffic (a local Ollama,
                # the embedded llama.cpp server, the scripted server): it would break them.
                # Plain-http servers (local ones) never use TLS: skip loading the CA bundle (~70 ms).
                plain_http = (self.settings.base_url or "").startswith("http://")
                self._client = httpx.Client(transport=self.transport, follow_redirects=False, limits=limits,
                                            trust_env=not is_loopback(self.settings.base_url),
                                            verify=not plain_http)
            return self._client

    def response_cap(self, output_tokens: int | None) -> int:
        if self.max_response_bytes:
            return self.max_response_bytes
        if output_tokens:
            return max(MIN_RESPONSE_BYTES, RESPONSE_BYTES_PER_TOKEN * output_tokens)
        return DEFAULT_RESPONSE_BYTES

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _timeout(self, timeout: float) -> Any:
        import httpx

        return httpx.Timeout(timeout, connect=min(self.connect_timeout, timeout))

    @contextmanager
    def post_stream(
        self,
        url: str,
        json_body: Any,
        *,
        headers: Mapping[str, str],
        timeout: float,
        model: str,
        params: Mapping[str, str] | None = None,
        method: str = "POST",
        output_tokens: int | None = None,
    ) -> Iterator[Exchange]:
        """Send the request; yield the open response as an `Exchange`.

        `output_tokens` (the request's max output) sizes the response cap."""
        import httpx

        deadline = self.clock() + timeout
        kwargs: dict[str, Any] = {"headers": dict(headers), "timeout": self._timeout(timeout)}
        if json_body is not None:
            kwargs["json"] = json_body
        if params:
            kwargs["params"] = dict(params)
        name = self.settings.name
        try:
            cm = self.client().stream(method, url, **kwargs)
            response = cm.__enter__()
        except httpx.TimeoutException as exc:
            raise make_error("timeout", self.redact(f"no response within {timeout:g}s ({type(exc).__name__})"),
                             provider=name, model=model) from None
        except (httpx.ConnectError, httpx.NetworkError, httpx.UnsupportedProtocol, httpx.ProxyError) as exc:
            raise make_error("connection", self.redact(f"cannot reach {url}: {exc}"),
                             provider=name, model=model) from None
        except httpx.RemoteProtocolError as exc:
            raise make_error("connection", self.redact(f"bad response from {url}: {exc}"),
                             provider=name, model=model) from None
        try:
            yield Exchange(self, response, model=model, deadline=deadline,
                           max_bytes=self.response_cap(output_tokens))
        finally:
            try:
                cm.__exit__(None, None, None)
            except httpx.HTTPError:
                pass

    def get_json(self, url: str, *, headers: Mapping[str, str], timeout: float = 30.0,
                 params: Mapping[str, str] | None = None,
                 classify: Callable[[int | None, ErrorInfo], ErrorKind] | None = None) -> Any:
        """GET a JSON document (model listings); errors classified like chat errors."""
        import json


        with self.post_stream(url, None, headers=headers, timeout=timeout, model="",
                              params=params, method="GET") as ex:
            if ex.status >= 400:
                raise ex.error(classify or default_classify)
            text = ex.read_text()
            try:
                return json.loads(text)
            except ValueError:
                raise ex.fail("server", f"not JSON: {text[:200]!r}", status=ex.status) from None
