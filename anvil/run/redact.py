"""Turn anything a run records into JSON with the secrets taken out.

Exchanges with models are written to disk so a run can be inspected and
replayed; API keys and Authorization headers must never be among them. Three
nets, because one is never enough: keys whose *name* looks secret are blanked,
strings that *look* like a vendor key are masked, and any value the caller
knows is a secret (the resolved API keys) is replaced wherever it appears.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

REDACTED = "[redacted]"

# Header / field names whose value is a credential, compared after lower-casing
# and treating "-" and "_" alike.
_SECRET_NAMES = {
    "authorization", "proxy_authorization", "x_api_key", "api_key", "apikey", "x_goog_api_key",
    "api_token", "access_token", "refresh_token", "token", "secret", "client_secret", "password",
    "github_token", "cookie", "set_cookie",
}

# Shapes of well-known credentials (Anthropic, OpenAI, Google, GitHub, generic Bearer).
_SECRET_PATTERNS = [
    re.compile(r"sk-(?:ant-|proj-|or-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
]


def _is_secret_name(name: str) -> bool:
    n = name.lower().replace("-", "_")
    # "_token" singular: usage counters are "input_tokens", "max_tokens".
    return n in _SECRET_NAMES or n.endswith(("_api_key", "_secret", "_password", "_token"))


def replace_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Only the known secret values masked (for prompts: a key-shaped string in the code stays as it is)."""
    for value in sorted((v for v in secrets if v and len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    text = replace_secrets(text, secrets)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, pydantic models, Decimals, paths, enums and exceptions as plain JSON values."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump") and callable(obj.model_dump):
        return to_jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, BaseException):
        out: dict[str, Any] = {"error": type(obj).__name__, "message": str(obj)}
        for attr in ("kind", "provider", "model", "status", "retry_after"):
            if hasattr(obj, attr):
                out[attr] = to_jsonable(getattr(obj, attr))
        return out
    return repr(obj)


def redact(obj: Any, secrets: Iterable[str] = ()) -> Any:
    """`to_jsonable(obj)` with every secret-looking field and value masked."""
    secrets = [s for s in secrets if s]
    return _redact(to_jsonable(obj), secrets)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _is_secret_name(k) and v not in (None, "", [], {}) and not isinstance(v, (bool, int, float)):
                out[k] = REDACTED
            else:
                out[k] = _redact(v, secrets)
        return out
    return value
