"""The scripted vendor server and the scripted model, over real loopback sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, ScriptedModel, text_pieces
from anvil.providers.scripted.server import Match, Reply, ScriptedServer
from anvil.providers.types import Message, Usage
from tests.providers_helpers import KEY, failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_byte_exact_head_with_empty_reason(srv):
    srv.add(Reply.parse(CASES["C07"][0]))
    raw = raw_exchange(
        srv.port, b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 529 "
    assert b"x-should-retry: true" in head and b"content-length: 104" in head
    assert body == Reply.parse(CASES["C07"][0]).body


def test_chunked_stream_one_chunk_per_event_and_cut(srv):
    srv.add(Reply.sse("data: a\n\ndata: b\n\n", cut=True))
    raw = raw_exchange(srv.port, b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n")
    assert raw.endswith(b"9\r\ndata: a\n\n\r\n9\r\ndata: b\n\n\r\n")  # no 0\r\n\r\n terminator
    assert b"transfer-encoding: chunked" in raw and b"connection: close" in raw


def test_queue_order_match_keys_and_recording(srv):
    srv.queue([Reply.json({"n": 1}), Reply.json({"n": 2})], Match(method="POST", path="/v1/chat", model="m1"))
    srv.add(Reply.json({"other": True}), Match(model="m2"), times=None)
    c = httpx.Client()
    got = [c.post(srv.url + "/v1/chat/completions", json={"model": m}).json() for m in ("m1", "m2", "m1", "m2")]
    assert got == [{"n": 1}, {"other": True}, {"n": 2}, {"other": True}]
    third = c.post(srv.url + "/v1/chat/completions", json={"model": "m1"}, headers={"x-api-key": "k"})
    assert third.status_code == 599 and "nothing scripted for POST /v1/chat/completions model=m1" in third.text
    assert [r.model for r in srv.unmatched] == ["m1"]
    rec = srv.requests[-1]
    assert (rec.method, rec.path, rec.headers["x-api-key"], rec.json) == (
        "POST",
        "/v1/chat/completions",
        "k",
        {"model": "m1"},
    )


def test_gemini_model_from_path_and_query(srv):
    srv.add(Reply.json({}), Match(model="gemini-2.5-flash"))
    r = httpx.post(srv.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json={})
    assert r.status_code == 200
    assert srv.requests[0].query == {"alt": "sse"} and srv.requests[0].stream is True


def test_responder_and_times(srv):
    srv.add_responder(lambda req: Reply.json({"echo": req.json}), times=2)
    c = httpx.Client()
    assert [c.post(srv.url + "/e", json={"i": i}).status_code for i in range(3)] == [200, 200, 599]


def test_chunked_request_bodies_are_read(srv):
    srv.add(Reply.json({}))
    httpx.post(srv.url + "/c", content=iter([b'{"model":', b'"m"}']), headers={"content-type": "application/json"})
    assert srv.requests[0].json == {"model": "m"}


def test_delays_are_scaled(srv):
    srv.time_scale = 0.001
    srv.add(Reply.json({}, delay=17, chunk_delay=17))
    t0 = time.monotonic()
    httpx.post(srv.url + "/d", json={})
    assert time.monotonic() - t0 < 1.0


def test_stop_frees_the_port_and_joins_threads():
    before = threading.active_count()
    server = ScriptedServer(time_scale=1.0).start()
    port = server.port
    server.add(Reply.sse([b"data: a\n\n"], stall=30))  # a connection stuck mid-stream
    def client() -> None:
        try:
            httpx.post(server.url + "/s", json={}, timeout=60)
        except httpx.HTTPError:
            pass  # the server went away mid-stream: expected

    t = threading.Thread(target=client, daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2
    assert threading.active_count() <= before + 1  # only our client thread may remain
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_only_loopback():
    with pytest.raises(ValueError):
        ScriptedServer(host="0.0.0.0")


def test_standalone_cli_with_a_yaml_script(tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text(
        "time_scale: 0.01\n"
        "routes:\n"
        "  - match: {path: /v1/models}\n"
        "    replies:\n"
        "      - {status: 200, body: '{\"data\": []}'}\n"
        "  - match: {path: /v1/chat/completions}\n"
        "    model: {answers: [\"from yaml\"], usage: {input_tokens: 7, output_tokens: 3}}\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "anvil.providers.scripted.server", "--port", "0",
                             "--script", str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SCRIPTED_SERVER_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        assert httpx.get(url + "/v1/models").json() == {"data": []}
        from anvil.providers import make_provider
        from anvil.providers.types import ProviderSettings

        p = make_provider(ProviderSettings("y", "openai", base_url=url + "/v1", api_key="k"))
        result = p.chat(request())
        assert (result.text, result.usage) == ("from yaml", Usage(input_tokens=7, output_tokens=3))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the scripted model ------------------------------------------------------------


def test_text_pieces_rejoin_exactly():
    for text in ("", "one", "  lead and trail  ", "multi\nline\n\ttabs and ☃ unicode"):
        assert "".join(text_pieces(text)) == text


@pytest.mark.parametrize("kind,path,stream", [
    ("anthropic", "", True), ("anthropic", "", False), ("openai", "/v1", True), ("openai", "/v1", False),
    ("openrouter", "/api/v1", True), ("vllm", "/v1", True), ("llamacpp", "/v1", False),
])
def test_scripted_model_speaks_every_protocol_the_same(srv, kind, path, stream):
    answer = ScriptedAnswer(text="Same words everywhere.", reasoning="Thinking it over.", input_tokens=1500,
                            output_tokens=40, cache_read_tokens=1024, cache_write_tokens=200, reasoning_tokens=9)
    srv.add_responder(ScriptedModel(answer))
    result = provider(kind, srv, path, stream=stream).chat(request())
    assert result.text == "Same words everywhere."
    assert result.reasoning_text == "Thinking it over."
    assert result.usage == Usage(1500, 40, 1024, 200, 9)
    assert srv.requests[0].json.get("stream", False) is stream


def test_scripted_model_turns_failures_and_request_log(srv):
    model = ScriptedModel(["first", "second"], failures=[ScriptedFailure("rate_limit", retry_after=30)],
                          usage={"input_tokens": 50, "output_tokens": 5})
    srv.add_responder(model)
    p = provider("openai", srv, "/v1")
    err = failure(lambda: p.chat(request()))
    assert (err.kind, err.retry_after) == ("rate_limit", 30.0)
    assert [p.chat(request()).text for _ in range(3)] == ["first", "second", "second"]
    assert len(model.requests) == 4
    assert p.chat(request()).usage == Usage(50, 5)


@pytest.mark.parametrize("kind", ["overloaded", "server", "quota", "auth", "model_not_found",
                                  "context_overflow", "invalid_request", "content_policy", "stream_cut"])
@pytest.mark.parametrize("protocol,path", [("anthropic", ""), ("openai", "/v1")])
def test_scripted_failures_classify_back_to_their_kind(srv, kind, protocol, path):
    srv.add_responder(ScriptedModel("never", failures=[ScriptedFailure(kind)]))
    err = failure(lambda: provider(protocol, srv, path).chat(request()))
    assert err.kind == ("stream_broken" if kind == "stream_cut" else kind)


def test_scripted_model_with_a_function_and_tool_calls(srv):
    from anvil.providers.scripted.model import ScriptedToolCall

    def answer(req):
        last = req.json["messages"][-1]
        if last["role"] == "tool":
            return f"tool said {last['content']}"
        return ScriptedAnswer(tool_calls=(ScriptedToolCall("run", {"cmd": "ls"}),))

    srv.add_responder(ScriptedModel(answer))
    p = provider("openai", srv, "/v1")
    first = p.chat(request())
    assert first.finish_reason == "tool_calls" and first.tool_calls[0].arguments == {"cmd": "ls"}
    msgs = (Message("user", "go"), Message("assistant", "", tool_calls=first.tool_calls),
            Message("tool", "a.py", tool_call_id=first.tool_calls[0].id))
    assert p.chat(request(messages=msgs)).text == "tool said a.py"


def test_unknown_protocol_paths_get_a_clear_error(srv):
    srv.add_responder(ScriptedModel("x"))
    r = httpx.post(srv.url + "/v9/whatever", json={"model": "m"})
    assert r.status_code == 501 and "no protocol speaks POST /v9/whatever" in r.text


def test_anthropic_renderer_checks_version_and_sampling(srv):
    srv.add_responder(ScriptedModel("x"))
    r = httpx.post(srv.url + "/v1/messages", json={"model": "m", "max_tokens": 5, "messages": []},
                   headers={"x-api-key": "k"})
    assert r.status_code == 400 and "anthropic-version" in r.text
    r = httpx.post(srv.url + "/v1/messages", json={"model": "m", "temperature": 1, "messages": []},
                   headers={"x-api-key": "k", "anthropic-version": "2026-10-21"})
    assert r.status_code == 400 and "temperature: Extra inputs are not permitted" in r.text
    assert json.loads(r.text)["type"] == "error"
