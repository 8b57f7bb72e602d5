"""Gemini CLI as a provider: `gemini --output-format json` with the prompt on stdin.

Piped input runs the CLI headless (geminicli.com/docs/cli/headless: "Headless
mode is triggered when the CLI is run in a non-TTY environment"); `-p` would
only be *appended* to stdin, so the whole prompt goes through stdin. The CLI
has no system-prompt flag, so the system prompt is folded into the prompt.

Output (`JsonFormatter` in google-gemini/gemini-cli packages/cli/src/output,
`SessionMetrics` in packages/core/src/telemetry/uiTelemetry.ts):

    {"session_id": "...", "response": "...",
     "stats": {"models": {"gemini-2.5-pro": {
                 "api": {"totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 5053},
                 "tokens": {"input": 3676, "prompt": 24939, "candidates": 20, "total": 25113,
                            "cached": 21263, "thoughts": 154, "tool": 0}}},
               "tools": {...}, "files": {...}},
     "error": {"type": "...", "message": "...", "code": 1}}      (only on failure)

`tokens.prompt` is Gemini's promptTokenCount (cached tokens included; `input`
is prompt - cached), `candidates` excludes `thoughts`, `tool` is
toolUsePromptTokenCount. The CLI may call several models in one run (a small
router model, say): their tokens are summed, and the served model is the one
that wrote most. On failure the JSON error goes to stderr and the exit status
is 1 (42: bad input, 53: turn limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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
    Usage,
    UsageUpdate,
)

INSTALL_HINT = "npm install -g @google/gemini-cli"


def create(
    settings: ProviderSettings, *, transport: Any = None, clock: Callable[[], float] = time.monotonic
) -> GeminiCliProvider:
    return GeminiCliProvider(settings, clock=clock)


def usage_from_stats(stats: dict[str, Any] | None) -> tuple[Usage, str | None]:
    """Sum the per-model token counts; also say which model wrote most."""
    models = (stats or {}).get("models") or {}
    total = Usage()
    top: tuple[int, str | None] = (-1, None)
    for name, metrics in models.items():
        t = (metrics or {}).get("tokens") or {}
        prompt = int(t.get("prompt") or 0)
        tool = int(t.get("tool") or 0)
        thoughts = int(t.get("thoughts") or 0)
        candidates = int(t.get("candidates") or 0)
        total = total + Usage(
            input_tokens=prompt + tool,
            output_tokens=candidates + thoughts,
            cache_read_tokens=int(t.get("cached") or 0),
            reasoning_tokens=thoughts,
        )
        if candidates + thoughts > top[0]:
            top = (candidates + thoughts, name)
    return total, top[1]


class GeminiCliProvider:
    def __init__(self, settings: ProviderSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        name = self.settings.name
        binary = resolve_binary(self.settings, "gemini", INSTALL_HINT, model=request.model)
        argv = [binary, "--output-format", "json"]
        if request.model:
            argv += ["--model", request.model]
        argv += extra_args(self.settings)
        out = run_cli(
            argv,
            render_prompt(request, include_system=True),
            timeout=request.timeout,
            provider=name,
            model=request.model,
            cwd=scratch_cwd(self.settings, request),
            unset_env=api_key_env_to_drop(self.settings, ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
            clock=self._clock,
        )
        payload = parse_json_object(out.stdout)
        error_payload = payload if payload and payload.get("error") else parse_json_object(out.stderr)
        error = (error_payload or {}).get("error") if error_payload else None
        if error or out.returncode != 0 or payload is None:
            if not error and out.returncode == 0:
                raise UpstreamError(
                    "stream_broken",
                    "gemini printed no JSON result (output ended early)",
                    provider=name,
                    model=request.model,
                )
            message = ""
            if isinstance(error, dict):
                message = " ".join(str(error.get(k)) for k in ("type", "message") if error.get(k))
            elif error:
                message = str(error)
            raise cli_failure(
                binary,
                provider=name,
                model=request.model,
                returncode=out.returncode,
                message=message,
                stderr="" if message else out.stderr,
            )
        usage, top_model = usage_from_stats(payload.get("stats"))
        text = payload.get("response")
        text = text if isinstance(text, str) else ""
        if on_event is not None:
            if text:
                on_event(TextDelta(text))
            on_event(UsageUpdate(usage))
        return ChatResult(
            text=text,
            finish_reason="stop",
            usage=usage,
            served_model=request.model
            if request.model and request.model == top_model
            else (top_model or request.model),
            request_id=payload.get("session_id"),
            latency_s=out.latency_s,
        )
