"""Fixtures for the provider tests: a scripted server per test, adapters pointed at it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from anvil.providers import make_provider
from anvil.providers.scripted.server import ScriptedServer
from anvil.providers.types import ChatRequest, Message, Provider, ProviderSettings, UpstreamError

KEY = "sk-test-S3CRETKEY-0123456789abcdef"


def provider(kind: str, server: ScriptedServer, path: str = "", *, key: str | None = KEY,
             **options: Any) -> Provider:
    return make_provider(ProviderSettings(name=f"test-{kind}", kind=kind, base_url=server.url + path,
                                          api_key=key, options=options))


def request(model: str = "test-model", **kw: Any) -> ChatRequest:
    messages = kw.pop("messages", (Message("system", "You are terse."), Message("user", "Say hello.")))
    return ChatRequest(model=model, messages=tuple(messages), **kw)


def failure(fn: Callable[[], Any]) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        fn()
    return info.value
