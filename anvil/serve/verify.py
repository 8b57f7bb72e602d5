"""Structural checks of a whole answer, made before the gateway commits it to its client.

Cheap and model-free: an answer that fails one is retried on the next model of the chain
while nothing has been sent (the chain-walker's `verify` hook). They judge the shape only,
never the content.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil.providers.types import ChatRequest, ChatResult


def _json_answer(text: str) -> Any:
    """The answer as JSON; a ```json fence around it is tolerated (Anthropic-style models add one)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return json.loads(body)


def problem(result: ChatResult, request: ChatRequest) -> str | None:
    """What is structurally wrong with `result` as an answer to `request`, or None."""
    if not result.text.strip() and not result.tool_calls:
        return "empty answer (no text, no tool call)"
    declared = {t.name for t in request.tools}
    for n, call in enumerate(result.tool_calls, 1):
        if "arguments_error" in call.extra:
            return f"tool call {n} ({call.name}): its arguments are not valid JSON ({call.extra['arguments_error']})"
        if declared and call.name not in declared:
            return f"tool call {n}: {call.name!r} is not one of the tools the client offered"
    out = result.usage.output_tokens
    if result.finish_reason == "length" and out and out < request.max_output_tokens:
        return f"cut off after {out} output tokens, short of the {request.max_output_tokens} the client allowed"
    if request.json_schema is not None and not result.tool_calls:
        try:
            value = _json_answer(result.text)
        except json.JSONDecodeError as exc:
            return f"a JSON answer was asked for and this is not JSON ({exc.msg} at {exc.pos})"
        if request.json_schema.get("type") == "object" and not isinstance(value, dict):
            return "a JSON object was asked for and this is not one"
        missing = [k for k in request.json_schema.get("required") or () if isinstance(value, dict) and k not in value]
        if missing:
            return f"the JSON answer lacks required keys: {', '.join(missing)}"
    return None
