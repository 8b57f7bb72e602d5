"""Claude Code as a provider: `claude -p --output-format json|stream-json`.

The prompt goes in on stdin (`claude -p` reads it from there when no argument
is given), the system prompt through `--system-prompt`. The CLI prints one
result object (json) or JSONL events ending with that same object
(stream-json, which needs `--verbose` in print mode).

The result object, as documented for headless mode and the Agent SDK's
`SDKResultMessage` (code.claude.com/docs headless "--output-format json";
the SDK reference; field names confirmed against several independent parsers):

    {"type": "result", "subtype": "success" | "error_max_turns" | "error_during_execution",
     "is_error": false, "duration_ms": 2300, "duration_api_ms": 2100, "num_turns": 1,
     "result": "...", "session_id": "...", "total_cost_usd": 0.0123,
     "usage": {"input_tokens": 4, "cache_creation_input_tokens": 1200,
               "cache_read_input_tokens": 9000, "output_tokens": 85, ...},
     "modelUsage": {"claude-sonnet-4-5-20250929": {"inputTokens": ..., "outputTokens": ..., "costUSD": ...}},
     "stop_reason": "end_turn", "api_error_status": 429 (newer versions, on API failures)}

A failed API call still arrives as `subtype: "success"` with `is_error: true`
and the message in `result`, so both are checked. `usage.input_tokens` follows
the Anthropic API convention (cache parts excluded): converted here.
`total_cost_usd` is what the CLI itself says the run cost; it becomes
`provider_cost` (a Decimal, via its decimal string, never a float sum).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from anvil.providers.anthropic import usage_from_anthropic  # the CLI reports Anthropic's usage shape
from anvil.providers.cli_base import (
    api_key_env_to_drop,
    cli_failure,
    extra_args,
    parse_json_object,
    render_prompt,
    resolve_binary,
    run_cli,
    scratch_cwd,
)
from anvil.providers.types import (
    ChatRequest,
    ChatResult,
    OnEvent,
    ProviderSettings,
    TextDelta,
    UpstreamError,
    UsageUpdate,
)

if TYPE_CHECKING:
    from httpx import BaseTransport

INSTALL_HINT = "npm install -g @anthropic-ai/claude-code"


def create(
    settings: ProviderSettings, *, transport: BaseTransport | None = None, clock: Callable[[], float] = time.monotonic
) -> ClaudeCliProvider:
    # `transport` is accepted for make_provider's uniform signature; a CLI has no HTTP.
    return ClaudeCliProvider(settings, clock=clock)


def cost_from(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def served_model(result: dict[str, Any], fallback: str) -> str:
    """The model that produced most of the output, per `modelUsage`."""
    by_model = result.get("modelUsage")
    if isinstance(by_model, dict) and by_model:
        return max(
            by_model,
            key=lambda name: int((by_model[name] or {}).get("outputTokens") or 0),
        )
    return fallback


class ClaudeCliProvider:
    def __init__(self, settings: ProviderSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock

    def _argv(self, binary: str, request: ChatRequest, stream: bool) -> list[str]:
        argv = [binary, "-p", "--output-format", "stream-json" if stream else "json"]
        if stream:
            argv += ["--verbose", "--include-partial-messages"]
        if request.model:
            argv += ["--model", request.model]
        if request.system and not _system_too_long(request):
            argv += ["--system-prompt", request.system]
        return argv + extra_args(self.settings)

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        name = self.settings.name
        binary = resolve_binary(self.settings, "claude", INSTALL_HINT, model=request.model)
        stream = str(self.settings.options.get("output_format", "json")) == "stream-json"
        state = _StreamState(on_event)
        out = run_cli(
            self._argv(binary, request, stream),
            render_prompt(request, include_system=_system_too_long(request)),
            timeout=request.timeout,
            provider=name,
            model=request.model,
            cwd=scratch_cwd(self.settings, request),
            unset_env=api_key_env_to_drop(self.settings, ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")),
            on_line=state.feed if stream else None,
            clock=self._clock,
        )
        result = state.result if stream else parse_json_object(out.stdout)
        if result is None or result.get("type", "result") != "result":
            if out.returncode != 0:
                raise cli_failure(binary, provider=name, model=request.model,
                                  returncode=out.returncode, message=out.stdout[-500:], stderr=out.stderr)
            raise UpstreamError(
                "stream_broken",
                "claude printed no result object (output ended early)",
                provider=name,
                model=request.model,
            )
        usage = usage_from_anthropic(result.get("usage") or {})
        cost = cost_from(result.get("total_cost_usd"))
        if result.get("is_error") or str(result.get("subtype", "success")) != "success":
            err = cli_failure(
                binary,
                provider=name,
                model=request.model,
                returncode=out.returncode,
                message=_error_text(result),
                stderr=out.stderr,
            )
            status = result.get("api_error_status")
            if isinstance(status, int):
                err.status = status
                if err.kind == "server" and status in _STATUS_KINDS:
                    err.kind = _STATUS_KINDS[status]  # the text said nothing, the status does
            err.usage = usage
            raise err
        text = result.get("result")
        if not isinstance(text, str):
            text = json.dumps(result.get("structured_output")) if result.get("structured_output") is not None else ""
        if on_event is not None:
            if not state.emitted and text:
                on_event(TextDelta(text))
            on_event(UsageUpdate(usage))
        return ChatResult(
            text=text,
            finish_reason="length" if result.get("stop_reason") == "max_tokens" else "stop",
            usage=usage,
            served_model=served_model(result, state.init_model or request.model),
            provider_cost=cost,
            request_id=result.get("session_id"),
            latency_s=out.latency_s,
            ttft_s=state.ttft if stream else None,
        )


# One argv string may not exceed 128 KiB on Linux (MAX_ARG_STRLEN): a longer system
# prompt travels on stdin with the rest.
_MAX_ARG_CHARS = 100_000
_STATUS_KINDS: dict[int, Any] = {429: "rate_limit", 401: "auth", 403: "auth", 404: "model_not_found",
                                 529: "overloaded", 503: "overloaded", 400: "invalid_request",
                                 402: "quota", 408: "timeout"}


def _system_too_long(request: ChatRequest) -> bool:
    return len(request.system.encode("utf-8")) > _MAX_ARG_CHARS


def _error_text(result: dict[str, Any]) -> str:
    parts = []
    if isinstance(result.get("result"), str):
        parts.append(result["result"])
    errors = result.get("errors")
    if isinstance(errors, list):
        parts += [e if isinstance(e, str) else json.dumps(e) for e in errors]
    subtype = result.get("subtype")
    if subtype and subtype != "success":
        parts.append(f"({subtype})")
    return " ".join(parts) or "claude reported an error"


class _StreamState:
    """Reads `--output-format stream-json` lines as they arrive."""

    def __init__(self, on_event: OnEvent | None) -> None:
        self.on_event = on_event
        self.result: dict[str, Any] | None = None
        self.init_model: str | None = None
        self.streamed_text = False  # partial deltas seen: whole-message events are then skipped
        self.emitted = False  # any text handed to on_event
        self.ttft: float | None = None
        self._t0 = time.monotonic()

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return  # the CLI occasionally prints a non-JSON notice; not part of the answer
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.init_model = event.get("model") or self.init_model
        elif kind == "stream_event":  # --include-partial-messages: raw Anthropic stream events
            inner = event.get("event") or {}
            delta = inner.get("delta") or {}
            if inner.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                self._emit(delta.get("text") or "")
        elif kind == "assistant" and not self.streamed_text:
            # older CLIs without partial messages: one event per finished message
            message = event.get("message") or {}
            for block in message.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "text":
                    self._emit(block.get("text") or "", partial=False)
        elif kind == "result":
            self.result = event

    def _emit(self, text: str, partial: bool = True) -> None:
        if not text:
            return
        if self.ttft is None:
            self.ttft = time.monotonic() - self._t0
        self.emitted = True
        self.streamed_text = self.streamed_text or partial
        if self.on_event is not None:
            self.on_event(TextDelta(text))
