"""Gemini request bodies: a `ChatRequest` as a generateContent JSON body (wire.md 4.2).

camelCase on the wire; roles `user` / `model`; tool results as `functionResponse` parts
in a user turn; `thoughtSignature`s and Gemini's own call ids sent back unchanged;
`thinkingConfig` from `reasoning_effort`; structured output through
`responseMimeType` + `responseJsonSchema`.
"""

from __future__ import annotations

import json
from typing import Any

from anvil.providers.types import ChatRequest, ProviderSettings

# reasoning_effort -> thinkingBudget (Gemini 2.x) or thinkingLevel (Gemini 3; the two
# cannot be sent together). 128 is the smallest budget every 2.5 model accepts.
THINKING_BUDGETS = {"minimal": 128, "low": 1024, "medium": 8192, "high": 24576}

_BODY_EXTRAS = ("cachedContent", "safetySettings", "toolConfig", "labels")





def build_body(request: ChatRequest, settings: ProviderSettings | None = None) -> dict[str, Any]:
    """The generateContent JSON body for `request` (camelCase, as on the wire)."""
    options = settings.options if settings else {}
    body: dict[str, Any] = {"contents": _contents(request)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters}
            for t in request.tools
        ]}]
    gen: dict[str, Any] = {"maxOutputTokens": request.max_output_tokens}
    if request.temperature is not None:
        gen["temperature"] = request.temperature
    if request.stop:
        gen["stopSequences"] = list(request.stop)
    if request.json_schema is not None:
        gen["responseMimeType"] = "application/json"
        # responseJsonSchema takes plain JSON Schema; the older responseSchema wants the
        # OpenAPI subset and rejects additionalProperties, $defs, ...
        key = "responseSchema" if options.get("legacy_response_schema") else "responseJsonSchema"
        gen[key] = request.json_schema
    if request.reasoning_effort:
        if request.model.startswith(("gemini-3", "models/gemini-3")):
            gen["thinkingConfig"] = {"thinkingLevel": request.reasoning_effort, "includeThoughts": True}
        else:
            gen["thinkingConfig"] = {
                "thinkingBudget": THINKING_BUDGETS[request.reasoning_effort],
                "includeThoughts": True,
            }
    body["generationConfig"] = gen
    # request.extra is shared by every provider a request may fall through to, so only
    # keys that are Gemini body fields are passed on (an explicit cache, safety settings, ...).
    for key in _BODY_EXTRAS:
        if request.extra.get(key) is not None:
            body[key] = request.extra[key]
    return body


def _contents(request: ChatRequest) -> list[dict[str, Any]]:
    names_by_id: dict[str, str] = {}
    gemini_ids: set[str] = set()  # call ids Gemini itself issued: only those are sent back
    gemini3 = request.model.removeprefix("models/").startswith("gemini-3")
    contents: list[dict[str, Any]] = []

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:  # Gemini wants alternating turns
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for m in request.messages:
        if m.role == "system":
            continue
        if m.role == "user":
            add("user", [{"text": m.content}])
        elif m.role == "assistant":
            parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
            for i, call in enumerate(m.tool_calls):
                names_by_id[call.id] = call.name
                fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
                if call.extra.get("gemini_call_id") == call.id:
                    fc["id"] = call.id
                    gemini_ids.add(call.id)
                part: dict[str, Any] = {"functionCall": fc}
                if call.extra.get("thoughtSignature"):
                    part["thoughtSignature"] = call.extra["thoughtSignature"]
                elif gemini3 and i == 0:
                    # A call another model made has no signature, and Gemini 3 rejects a
                    # function-call turn without one; this is the documented placeholder
                    # for histories that come from elsewhere.
                    part["thoughtSignature"] = "skip_thought_signature_validator"
                parts.append(part)
            add("model", parts)
        else:  # tool result: a functionResponse part in a user turn
            name = m.name or names_by_id.get(m.tool_call_id or "", "") or "tool"
            try:
                payload = json.loads(m.content)
            except (json.JSONDecodeError, TypeError):
                payload = None
            response = payload if isinstance(payload, dict) else {"content": m.content}
            fr: dict[str, Any] = {"name": name, "response": response}
            if m.tool_call_id in gemini_ids:
                fr["id"] = m.tool_call_id
            add("user", [{"functionResponse": fr}])
    return contents
