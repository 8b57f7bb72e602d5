"""The gateway's local token: clients send it as their API key.

Accepted from `Authorization: Bearer <token>` (OpenAI SDKs, Codex, aider) and `x-api-key`
(Anthropic SDKs, Claude Code). Compared in constant time; never logged.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

TOKEN_ENV = "ANVIL_SERVE_TOKEN"
PREFIX = "anvil-"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def token_from_env(env: Mapping[str, str]) -> str | None:
    value = (env.get(TOKEN_ENV) or "").strip()
    return value or None


def presented(headers: Mapping[str, str]) -> str | None:
    """The key a request carries (x-api-key first, then a Bearer token), or None."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authorized(headers: Mapping[str, str], token: str) -> bool:
    got = presented(headers)
    return got is not None and hmac.compare_digest(got.encode(), token.encode())
