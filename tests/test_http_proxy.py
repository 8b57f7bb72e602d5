"""A proxy in the environment never sees loopback traffic (local servers, the scripted server)."""

from __future__ import annotations

import pytest

from anvil.providers.http import is_loopback
from anvil.providers.scripted.model import ScriptedModel
from anvil.providers.scripted.server import ScriptedServer
from tests.providers_helpers import provider, request


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:8080/v1", True), ("http://127.5.0.1", True), ("http://[::1]:11434", True),
    ("http://localhost:11434", True), ("https://api.openai.com/v1", False), ("http://10.0.0.1", False),
    (None, False),
])
def test_is_loopback(url, expected) -> None:
    assert is_loopback(url) is expected


def test_loopback_provider_ignores_a_dead_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ScriptedServer() as srv:
        srv.add_responder(ScriptedModel("hello through no proxy"))
        adapter = provider("openai", srv, "/v1")
        result = adapter.chat(request())
    assert result.text == "hello through no proxy"
