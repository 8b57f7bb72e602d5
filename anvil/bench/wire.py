"""What one model request showed the model, in any of the four wire protocols.

The oracle may only quote text anvil put in front of it: the system and user turns and the
results of its tool calls. Its own earlier turns (assistant / model roles) are not evidence:
a model that quotes itself proves nothing about the file. Tool calls it made earlier in the
same conversation are read back from those turns, so the oracle needs no memory of its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from anvil.providers.scripted.reply import RecordedRequest

_OWN_ROLES = frozenset({"assistant", "model"})
_NUMBERED = re.compile(r"(?m)^ *\d+\|(?: |$)")  # "  12| text": read_file's numbered lines


@dataclass(frozen=True)
class PastCall:
    """A tool call the model made earlier in this conversation."""

    name: str
    arguments: dict[str, Any]


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            _strings(value, out)
    elif isinstance(node, list):
        for value in node:
            _strings(value, out)


def _body(req: RecordedRequest) -> dict[str, Any]:
    return req.json if isinstance(req.json, dict) else {}


def _turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    turns = body.get("messages") or body.get("contents") or []
    return [t for t in turns if isinstance(t, dict)]


def shown_text(req: RecordedRequest) -> str:
    """Everything anvil showed in this request (system, user turns, tool results), as one text.

    Numbered tool output ("  12| text") is also given with its numbers removed, so a quote of
    the file's own lines is found in either form."""
    body = _body(req)
    parts: list[str] = []
    for key in ("system", "systemInstruction"):
        _strings(body.get(key), parts)
    for turn in _turns(body):
        if turn.get("role") not in _OWN_ROLES:
            _strings(turn.get("content", turn.get("parts")), parts)
    text = "\n".join(parts)
    return text + "\n" + _NUMBERED.sub("", text) if _NUMBERED.search(text) else text


def last_user_text(req: RecordedRequest) -> str:
    """The newest turn anvil sent (what changed since the model last answered)."""
    turns = [t for t in _turns(_body(req)) if t.get("role") not in _OWN_ROLES]
    parts: list[str] = []
    if turns:
        _strings(turns[-1].get("content", turns[-1].get("parts")), parts)
    return "\n".join(parts)


def offered_tools(req: RecordedRequest) -> set[str]:
    """The names of the tools the request offers (OpenAI / Ollama, Anthropic, Gemini shapes)."""
    names: set[str] = set()
    for tool in _body(req).get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):
            names.add(str(tool["function"].get("name", "")))
        elif "name" in tool:
            names.add(str(tool["name"]))
        for decl in tool.get("functionDeclarations") or []:
            names.add(str(decl.get("name", "")))
    names.discard("")
    return names


def past_calls(req: RecordedRequest) -> list[PastCall]:
    """The tool calls of the model's own earlier turns in this conversation."""
    calls: list[PastCall] = []
    for turn in _turns(_body(req)):
        if turn.get("role") not in _OWN_ROLES:
            continue
        for call in turn.get("tool_calls") or []:  # OpenAI / Ollama
            fn = call.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    args = {}
            calls.append(PastCall(str(fn.get("name", "")), args if isinstance(args, dict) else {}))
        content = turn.get("content")
        for block in content if isinstance(content, list) else []:  # Anthropic
            if isinstance(block, dict) and block.get("type") == "tool_use":
                calls.append(PastCall(str(block.get("name", "")), dict(block.get("input") or {})))
        for part in turn.get("parts") or []:  # Gemini
            if isinstance(part, dict) and isinstance(part.get("functionCall"), dict):
                fc = part["functionCall"]
                calls.append(PastCall(str(fc.get("name", "")), dict(fc.get("args") or {})))
    return calls


def api_key(req: RecordedRequest) -> str:
    """The key a request carries (`x-api-key`, `Authorization: Bearer`, Gemini's `x-goog-api-key` / `?key=`)."""
    h = req.headers
    auth = h.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return h.get("x-api-key") or h.get("x-goog-api-key") or req.query.get("key", "")
