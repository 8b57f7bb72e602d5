"""Ollama discovery and the `ollama pull` hint, against a scripted Ollama-speaking server."""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import pytest

from anvil.local.ollama import canonical_name, detect_ollama, ollama_model_entries, pull_commands
from anvil.providers.scripted.model import ScriptedFailure, ScriptedModel
from anvil.providers.scripted.server import Match, Reply, ScriptedServer
from anvil.providers.types import ChatRequest, Message, UpstreamError

TAGS = {"models": [
    {"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b", "size": 4683087332,
     "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}},
    {"name": "llama3.1:latest", "model": "llama3.1:latest", "size": 4920753328,
     "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"}},
]}


@pytest.fixture
def ollama_srv():
    with ScriptedServer() as srv:
        srv.add(Reply.json({"version": "0.12.6"}), match=Match(method="GET", path="/api/version"), times=None)
        srv.add(Reply.json(TAGS), match=Match(method="GET", path="/api/tags"), times=None)
        yield srv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_detects_a_running_ollama_and_its_models(ollama_srv):
    status = detect_ollama(ollama_srv.url, timeout=2)
    assert status.running and status.error is None
    assert status.models == ["qwen2.5-coder:7b", "llama3.1:latest"]
    assert status.version == "0.12.6"
    assert status.details[0].parameter_size == "7.6B"
    assert status.has("llama3.1") and status.has("qwen2.5-coder:7b") and not status.has("qwen2.5-coder:14b")


def test_nothing_listening_is_a_quick_clean_no():
    port = _closed_port()
    t0 = time.monotonic()
    status = detect_ollama(f"http://127.0.0.1:{port}", timeout=0.5)
    assert time.monotonic() - t0 < 1.0
    assert not status.running and status.models == []
    assert f"127.0.0.1:{port}" in status.error and "not running" in status.error


def test_a_server_that_never_answers_times_out_fast():
    with socket.socket() as s:  # listens (the kernel accepts the connection) but never replies
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        status = detect_ollama(f"http://127.0.0.1:{port}", timeout=0.3)
        assert time.monotonic() - t0 < 1.5
    assert not status.running and "no answer" in status.error


def test_something_else_on_the_port_is_not_ollama():
    with ScriptedServer() as srv:
        srv.add(Reply.json({"error": "not found"}, status=404), times=None)
        status = detect_ollama(srv.url, timeout=2)
    assert not status.running and "is not Ollama" in status.error


def _ollama_config(url: str):
    from anvil.config.loader import load_config

    home = Path(os.environ["ANVIL_HOME"])
    (home / "models.yaml").write_text(textwrap.dedent(f"""
        providers:
          ollama: {{kind: ollama, base_url: "{url}"}}
        models:
          - {{id: ollama/qwen2.5-coder-7b, name: "qwen2.5-coder:7b", provider: ollama, tier: local,
              price: {{free: true}}}}
          - {{id: ollama/deepseek-coder-v2, name: "deepseek-coder-v2:16b", provider: ollama, tier: local,
              price: {{free: true}}}}
    """))
    return load_config(None)


def test_missing_catalogue_models_get_their_pull_command(ollama_srv):
    config = _ollama_config(ollama_srv.url)
    status = detect_ollama(ollama_srv.url, timeout=2)
    assert pull_commands(config, status) == ["ollama pull deepseek-coder-v2:16b"]
    assert pull_commands(config, detect_ollama(f"http://127.0.0.1:{_closed_port()}")) == []


def test_a_model_that_is_not_pulled_fails_with_the_pull_command(ollama_srv):
    """Through anvil's own catalogue + adapter: the 404 names the fix."""
    from anvil.routing.factory import build_provider

    ollama_srv.add_responder(ScriptedModel("never", failures=[ScriptedFailure("model_not_found", times=5)]),
                             match=Match(method="POST", path="/api/chat"))
    config = _ollama_config(ollama_srv.url)
    model = config.catalogue.model("ollama/deepseek-coder-v2")
    provider = build_provider(config, "ollama")
    with pytest.raises(UpstreamError) as info:
        provider.chat(ChatRequest(model=model.wire_name, messages=(Message("user", "hi"),),
                                  context_window=model.context_window, timeout=5))
    err = info.value
    assert err.kind == "model_not_found" and err.status == 404
    assert "ollama pull deepseek-coder-v2:16b" in err.message


def test_a_pulled_model_answers_through_the_catalogue(ollama_srv):
    from anvil.routing.factory import build_provider

    ollama_srv.add_responder(ScriptedModel("def add(a, b):\n    return a + b\n"),
                             match=Match(method="POST", path="/api/chat"))
    config = _ollama_config(ollama_srv.url)
    model = config.catalogue.model("ollama/qwen2.5-coder-7b")
    result = build_provider(config, "ollama").chat(ChatRequest(
        model=model.wire_name, messages=(Message("user", "write add"),), context_window=model.context_window))
    assert "return a + b" in result.text and result.usage.output_tokens > 0
    [sent] = [r for r in ollama_srv.requests if r.path == "/api/chat"]
    assert sent.json["model"] == "qwen2.5-coder:7b"
    assert sent.json["options"]["num_ctx"] == model.context_window  # never Ollama's small default


def test_pulled_models_become_catalogue_entries(ollama_srv):
    from anvil.config.schema import ModelEntry

    entries = [ModelEntry.model_validate(e) for e in ollama_model_entries(detect_ollama(ollama_srv.url, timeout=2))]
    assert [(e.id, e.wire_name, e.tier) for e in entries] == [
        ("ollama/qwen2.5-coder-7b", "qwen2.5-coder:7b", "local"),
        ("ollama/llama3.1-latest", "llama3.1:latest", "local"),
    ]
    assert all(e.price.free for e in entries)


def test_canonical_names():
    assert canonical_name("llama3.1") == "llama3.1:latest"
    assert canonical_name("qwen2.5-coder:7b") == "qwen2.5-coder:7b"
    assert canonical_name("hf.co/org/model") == "hf.co/org/model:latest"
