"""The provider contract: what every adapter takes, returns and raises.

A provider never knows about stages, budgets or the ledger. It does one
exchange with one model and reports what happened: a `ChatResult` with a
normalised `Usage`, or an `UpstreamError` whose `kind` tells the chain-walker
what to do next.

Usage convention (DESIGN.md 4), the same for every adapter:

- `input_tokens` is the *whole* input, cache reads and writes included;
- `cache_read_tokens` and `cache_write_tokens` are parts of `input_tokens`;
- `output_tokens` includes reasoning; `reasoning_tokens` is part of it.

Anthropic reports input without the cache parts, OpenAI and Gemini with them:
each adapter converts, so nothing downstream ever bills a cached token twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, Protocol, get_args

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]

# The kinds of failure the chain-walker knows how to handle (DESIGN.md 6).
ErrorKind = Literal[
    "rate_limit",  # 429 that will clear by itself: wait retry_after, or burn the model
    "overloaded",  # 529 / 503 "overloaded": back off, then the next model
    "server",  # 5xx, odd 200 bodies
    "timeout",  # no answer (or no next byte) within the timeout
    "connection",  # refused, reset, DNS, TLS
    "stream_broken",  # EOF before the terminal event, truncated JSON
    "quota",  # billing, spend limit, daily quota, insufficient_quota: never retried
    "auth",  # bad or missing key
    "model_not_found",  # 404 unknown model, `ollama pull` needed
    "context_overflow",  # prompt too long for this model's window
    "content_policy",  # refusal / safety block of the request
    "invalid_request",  # malformed request: no other model will fix it
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model made. `arguments` is always a parsed object.

    `extra` carries what must be sent back unchanged on the next turn
    (Gemini's `thoughtSignature`, for example).
    """

    id: str
    name: str
    arguments: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role == "tool": which call this answers
    name: str | None = None  # for role == "tool": the tool's name (Gemini needs it)
    cache: bool = False  # a prompt-cache breakpoint after this message (stable prefix)


@dataclass(frozen=True)
class ChatRequest:
    """One call to one model. Adapters translate it to their wire format."""

    model: str  # the provider's own model name, as sent on the wire
    messages: tuple[Message, ...]
    max_output_tokens: int = 4096
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    json_schema: dict[str, Any] | None = None  # structured output, when supported
    schema_name: str = "answer"
    reasoning_effort: ReasoningEffort | None = None
    cache_system: bool = True  # put a cache breakpoint after the system prompt
    timeout: float = 120.0  # seconds for the whole exchange; also the read timeout
    context_window: int | None = None  # Ollama needs num_ctx; llama.cpp checks it
    extra: dict[str, Any] = field(default_factory=dict)  # per-provider passthrough

    def with_model(self, model: str) -> ChatRequest:
        return replace(self, model=model)

    @property
    def system(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role == "system")


@dataclass(frozen=True)
class Usage:
    """Normalised token counts (see the module docstring for the convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: FinishReason
    usage: Usage
    served_model: str  # the model id the server says it used (not an alias)
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning_text: str = ""
    provider_cost: Decimal | None = None  # USD, when the provider reports it
    request_id: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None  # time to first token, when streamed


# --- stream events handed to the caller's callback while a call is under way ---


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    name: str | None
    arguments_fragment: str


@dataclass(frozen=True)
class UsageUpdate:
    usage: Usage


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | UsageUpdate
OnEvent = Callable[[StreamEvent], None]


class UpstreamError(Exception):
    """A failed exchange, classified for the chain-walker.

    `message` is the provider's own message (never containing the key).
    `retry_after` is in seconds, from `retry-after-ms`, `retry-after` or
    Gemini's `RetryInfo.retryDelay`, when the provider said.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self.kind: ErrorKind = kind
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after
        self.request_id = request_id
        self.usage = usage  # tokens billed before the failure, if any were reported
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p) or "provider"
        status = f" HTTP {self.status}" if self.status is not None else ""
        wait = f" (retry after {self.retry_after:g}s)" if self.retry_after is not None else ""
        return f"{where}: {self.kind}{status}: {self.message}{wait}"


@dataclass(frozen=True)
class ProviderSettings:
    """What an adapter needs to know about its provider entry in models.yaml.

    `options` holds kind-specific settings (Anthropic `api_version`, the
    openai_compatible `quirks` preset, a CLI's `binary`, ...).
    """

    name: str
    kind: str
    base_url: str | None = None
    api_key: str | None = None  # resolved from the environment or the key file; never logged
    options: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """The whole provider contract: one call in, one result (or error) out.

    Adapters always stream when the wire allows it, hand each delta to
    `on_event`, and return the assembled result with its usage. A stream that
    ends before its terminal event raises `UpstreamError("stream_broken")`,
    never a short answer.
    """

    settings: ProviderSettings

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult: ...
