"""Codex CLI as a provider: `codex exec --json -` (prompt on stdin, JSONL events out).

Event shapes (openai/codex `codex-rs/exec/src/exec_events.rs`, mirrored in
`sdk/typescript/src/events.ts`):

    {"type": "thread.started", "thread_id": "..."}
    {"type": "turn.started"}
    {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "..."}}
    {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": "..."}}
    {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}}
    {"type": "turn.failed", "error": {"message": "..."}}
    {"type": "error", "message": "..."}

Older releases printed `{"id": "0", "msg": {"type": "agent_message", "message": "..."}}`
and `{"msg": {"type": "token_count", ...}}` instead; both are read. Usage
follows the OpenAI Responses convention (`input_tokens` already includes the
cached part). `turn.completed` is the terminal event: a zero exit without it
is a broken stream, never a short answer.

The CLI runs with `--sandbox read-only` in a scratch directory and
`--skip-git-repo-check`: anvil uses it as a model, not as an agent let loose
on the repository. A JSON schema goes through `--output-schema <file>`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from anvil.providers.cli_base import (
    api_key_env_to_drop,
    cli_failure,
    extra_args,
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
    ReasoningDelta,
    TextDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
)

INSTALL_HINT = "npm install -g @openai/codex"


def create(
    settings: ProviderSettings, *, transport: Any = None, clock: Callable[[], float] = time.monotonic
) -> CodexCliProvider:
    return CodexCliProvider(settings, clock=clock)


def usage_from_codex(u: dict[str, Any] | None) -> Usage:
    u = u or {}
    return Usage(
        input_tokens=int(u.get("input_tokens") or 0),
        output_tokens=int(u.get("output_tokens") or 0),
        cache_read_tokens=int(u.get("cached_input_tokens") or 0),
        reasoning_tokens=int(u.get("reasoning_output_tokens") or 0),
    )


class _Events:
    """Folds the JSONL event stream into an answer, as lines arrive."""

    def __init__(self, on_event: OnEvent | None) -> None:
        self.on_event = on_event
        self.messages: list[str] = []
        self.usage: Usage | None = None
        self.completed = False
        self.error: str | None = None
        self.thread_id: str | None = None

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return  # log noise on stdout is not part of the protocol
        if not isinstance(event, dict):
            return
        if "msg" in event and isinstance(event["msg"], dict):  # legacy event envelope
            self._legacy(event["msg"])
            return
        kind = event.get("type")
        if kind == "thread.started":
            self.thread_id = event.get("thread_id")
        elif kind == "item.completed":
            item = event.get("item") or {}
            if item.get("type") == "agent_message":
                self._message(str(item.get("text") or ""))
            elif item.get("type") == "reasoning" and self.on_event and item.get("text"):
                self.on_event(ReasoningDelta(str(item["text"])))
            elif item.get("type") == "error":
                self.error = str(item.get("message") or "error item")
        elif kind == "turn.completed":
            self.usage = usage_from_codex(event.get("usage"))
            self.completed = True
        elif kind == "turn.failed":
            self.error = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "error":
            self.error = str(event.get("message") or "error")

    def _legacy(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "agent_message":
            self._message(str(msg.get("message") or ""))
        elif kind == "token_count":
            info = msg.get("info") or {}
            self.usage = usage_from_codex(info.get("total_token_usage") or msg)
        elif kind == "task_complete":
            self.completed = True
        elif kind in ("error", "stream_error"):
            self.error = str(msg.get("message") or kind)

    def _message(self, text: str) -> None:
        # Only the last agent message is the answer (earlier ones are progress
        # notes), so text is handed to on_event once the turn is over.
        self.messages.append(text)


class CodexCliProvider:
    def __init__(self, settings: ProviderSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock

    def chat(self, request: ChatRequest, on_event: OnEvent | None = None) -> ChatResult:
        name = self.settings.name
        binary = resolve_binary(self.settings, "codex", INSTALL_HINT, model=request.model)
        sandbox = str(self.settings.options.get("sandbox", "read-only"))
        argv = [binary, "exec", "--json", "--skip-git-repo-check", "--sandbox", sandbox]
        if request.model:
            argv += ["--model", request.model]
        if request.reasoning_effort:
            argv += ["-c", f"model_reasoning_effort={request.reasoning_effort}"]
        schema_file = None
        if request.json_schema is not None:
            fd, schema_file = tempfile.mkstemp(prefix="anvil-schema-", suffix=".json")
            with os.fdopen(fd, "w") as fh:
                json.dump(request.json_schema, fh)
            argv += ["--output-schema", schema_file]
        argv += extra_args(self.settings) + ["-"]
        events = _Events(on_event)
        try:
            out = run_cli(
                argv,
                render_prompt(request, include_system=True),
                timeout=request.timeout,
                provider=name,
                model=request.model,
                cwd=scratch_cwd(self.settings, request),
                unset_env=api_key_env_to_drop(self.settings, ("OPENAI_API_KEY",)),
                on_line=events.feed,
                clock=self._clock,
            )
        finally:
            if schema_file:
                os.unlink(schema_file)
        if events.error or out.returncode != 0:
            err = cli_failure(
                binary,
                provider=name,
                model=request.model,
                returncode=out.returncode,
                message=events.error or "",
                stderr=out.stderr,
            )
            err.usage = events.usage
            raise err
        if not events.completed:
            raise UpstreamError(
                "stream_broken",
                "codex output ended before turn.completed",
                provider=name,
                model=request.model,
            )
        usage = events.usage or Usage()
        text = events.messages[-1] if events.messages else ""
        if on_event is not None:
            if text:
                on_event(TextDelta(text))
            on_event(UsageUpdate(usage))
        return ChatResult(
            text=text,
            finish_reason="stop",
            usage=usage,
            served_model=request.model or "codex",
            request_id=events.thread_id,
            latency_s=out.latency_s,
            ttft_s=out.ttft_s,
        )
