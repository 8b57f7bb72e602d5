"""Reading what a subscription CLI printed when it failed: its error text classified, its JSON found.

The CLIs relay the vendor's own error messages, so a failure is classified from
text (`classify_cli_error`), with any "retry in 17s" hint kept; their stdout may
carry log lines before the JSON object (`parse_json_object`).
"""

from __future__ import annotations

import json
import os
import re

from anvil.providers.types import ErrorKind, UpstreamError

STDERR_TAIL_CHARS = 2000  # how much of the CLI's stderr an error message keeps


def stderr_tail(stderr: str, limit: int = STDERR_TAIL_CHARS) -> str:
    text = stderr.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


# --- classifying what a CLI said when it failed ---------------------------------

# Ordered: the first pattern that matches decides. The CLIs relay the vendor's
# own error text, so the HTTP-level markers (429, 529, "quota") show up here.
_CLI_ERROR_PATTERNS: tuple[tuple[ErrorKind, re.Pattern[str]], ...] = (
    (
        "context_overflow",
        re.compile(
            r"prompt is too long|input token count \(\d+\) exceeds|context[_ ]length[_ ]exceeded"
            r"|maximum context length|context window|exceeds the (?:available )?context",
            re.I,
        ),
    ),
    (
        "quota",
        re.compile(
            r"usage limit|credit balance|insufficient[_ ]quota|quota exceeded|PerDay"
            r"|out of credits|billing|spend limit|limit reached",
            re.I,
        ),
    ),
    (
        "auth",
        re.compile(
            r"invalid api key|api key not valid|API_KEY_INVALID|not logged in|please (?:run )?/?login"
            r"|authenticat|unauthori[sz]ed|\b401\b|\b403\b|permission denied|OAuth",
            re.I,
        ),
    ),
    ("rate_limit", re.compile(r"rate[_ -]?limit|too many requests|\b429\b|RESOURCE_EXHAUSTED", re.I)),
    ("overloaded", re.compile(r"overloaded|\b529\b|\b503\b|high demand|UNAVAILABLE", re.I)),
    (
        "model_not_found",
        re.compile(r"model .{0,80}(?:not found|does not exist|not supported)|unknown model|\b404\b", re.I),
    ),
    ("content_policy", re.compile(r"content policy|safety|blocked|refus", re.I)),
    ("timeout", re.compile(r"timed? ?out|deadline exceeded", re.I)),
    ("connection", re.compile(r"ECONNREFUSED|ENOTFOUND|ECONNRESET|network|getaddrinfo|connection error", re.I)),
)

_RETRY_IN = re.compile(r"(?:retry|try again|resets?) in (\d+(?:\.\d+)?)\s*(ms|s|sec|seconds|m|min|minutes)?\b", re.I)


def classify_cli_error(text: str, default: ErrorKind = "server") -> ErrorKind:
    for kind, pattern in _CLI_ERROR_PATTERNS:
        if pattern.search(text):
            return kind
    return default


def retry_after_from_text(text: str) -> float | None:
    """`Please retry in 17.2s.` style hints some CLIs relay from the API."""
    m = _RETRY_IN.search(text)
    if not m:
        return None
    value, unit = float(m.group(1)), (m.group(2) or "s").lower()
    if unit == "ms":
        return value / 1000
    if unit.startswith("m"):
        return value * 60
    return value


def cli_failure(
    binary: str,
    *,
    provider: str,
    model: str,
    returncode: int | None,
    message: str,
    stderr: str = "",
    default: ErrorKind = "server",
) -> UpstreamError:
    """One classified error for a failed CLI run: its message, then its stderr tail."""
    tail = stderr_tail(stderr)
    text = " ".join(p for p in (message.strip(), tail) if p) or "no output"
    kind = classify_cli_error(text, default)
    exit_part = f"{os.path.basename(binary)} exited with status {returncode}: " if returncode else ""
    return UpstreamError(
        kind,
        f"{exit_part}{text}",
        provider=provider,
        model=model,
        retry_after=retry_after_from_text(text) if kind == "rate_limit" else None,
    )


def parse_json_object(text: str) -> dict | None:
    """The last JSON object printed on stdout (CLIs sometimes log a line before it)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else None
    except json.JSONDecodeError:
        pass
    start = text.rfind("\n{")
    while start != -1:
        try:
            value = json.loads(text[start + 1 :])
            return value if isinstance(value, dict) else None
        except json.JSONDecodeError:
            start = text.rfind("\n{", 0, start)
    first = text.find("{")
    if first > 0:
        try:
            value = json.loads(text[first:])
            return value if isinstance(value, dict) else None
        except json.JSONDecodeError:
            return None
    return None
