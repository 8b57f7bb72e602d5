"""The one place a `ChatRequest` is built from a stage policy (`anvil ask`, the stages, the gateway)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from anvil.providers.types import ChatRequest, Message, ReasoningEffort, ToolSpec

if TYPE_CHECKING:
    from anvil.config.schema import StagePolicy

DEFAULT_MAX_OUTPUT = 8192  # when the stage policy sets no max_output_tokens


def stage_request(policy: StagePolicy, messages: Sequence[Message], *, json_schema: dict[str, Any] | None = None,
                  schema_name: str = "answer", effort: ReasoningEffort | None = None,
                  max_output_tokens: int | None = None, tools: Sequence[ToolSpec] = ()) -> ChatRequest:
    """A request for the stage's chain (`model` is filled in per attempt by the walker)."""
    return ChatRequest(
        model="", messages=tuple(messages),
        max_output_tokens=max_output_tokens or policy.max_output_tokens or DEFAULT_MAX_OUTPUT,
        json_schema=json_schema, schema_name=schema_name,
        reasoning_effort=effort or policy.reasoning_effort,
        tools=tuple(tools), timeout=float(policy.timeout))
