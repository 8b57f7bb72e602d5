"""`anvil serve`'s parts, fast: dialects (checked against the official SDKs' own types), the commit
window, the structural checks, sessions, the `routes:` policy section, the ledger columns, and one
in-process gateway on a real uvicorn socket (the subprocess end-to-end tests are test_serve.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from anvil.config.loader import ConfigError, load_config
from anvil.providers.types import ChatRequest, ChatResult, Message, TextDelta, ToolCall, ToolCallDelta, ToolSpec, Usage
from anvil.routing.walker import AttemptReset
from anvil.serve import anthropic_dialect as ad
from anvil.serve import openai_dialect as od
from anvil.serve.auth import authorized, presented
from anvil.serve.dialect import ServeError, Untranslatable
from anvil.serve.sessions import SessionTable, session_key
from anvil.serve.verify import problem
from anvil.serve.window import END, CommittedFailure, CommitWindow
from tests.foundation_helpers import git_repo, write

USAGE = Usage(input_tokens=1200, output_tokens=30, cache_read_tokens=1000, cache_write_tokens=100)


def result(text: str = "hi", calls: tuple[ToolCall, ...] = (), finish: str = "stop", usage: Usage = USAGE):
    return ChatResult(text=text, finish_reason=finish, usage=usage, served_model="x", tool_calls=calls)  # type: ignore[arg-type]


# ------------------------------------------------------------------ dialects


def test_anthropic_request_to_anvil_and_back():
    creq = ad.parse({
        "model": "anvil/build", "max_tokens": 500, "stream": True, "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "read", "description": "read a file", "input_schema": {"type": "object"}}],
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "messages": [
            {"role": "user", "content": "read a.py"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                              {"type": "text", "text": "ok"},
                                              {"type": "tool_use", "id": "t1", "name": "read", "input": {"p": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "print(1)"},
                                         {"type": "text", "text": "and now?"}]}]})
    c = creq.chat
    assert (creq.model, creq.stream, c.max_output_tokens, c.stop, c.reasoning_effort) == (
        "anvil/build", True, 500, ("END",), "medium")
    assert [m.role for m in c.messages] == ["system", "user", "assistant", "tool", "user"]
    assert c.messages[0].cache and c.cache_system
    assert c.messages[2].tool_calls == (ToolCall("t1", "read", {"p": 1}),)
    assert (c.messages[3].tool_call_id, c.messages[3].name, c.messages[3].content) == ("t1", "read", "print(1)")
    assert c.tools == (ToolSpec("read", "read a file", {"type": "object"}),)
    body = ad.response(result("done", (ToolCall("t2", "read", {"p": 2}),), "tool_calls"), "m1")
    msg = anthropic.types.Message.model_validate(body)  # the SDK's own type accepts it
    assert msg.stop_reason == "tool_use" and msg.content[1].input == {"p": 2}
    # Anthropic's convention: input without the cache parts
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        100, 1000, 100)


def test_openai_request_to_anvil_and_back():
    creq = od.parse({
        "model": "m", "max_completion_tokens": 64, "stop": "STOP", "reasoning_effort": "low",
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_schema", "json_schema": {"name": "plan", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [{"role": "developer", "content": "sys"}, {"role": "user", "content": [{"type": "text",
                                                                                            "text": "q"}]},
                     {"role": "assistant", "content": None,
                      "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "r"}]})
    c = creq.chat
    assert (c.max_output_tokens, c.stop, c.reasoning_effort, c.json_schema, c.schema_name) == (
        64, ("STOP",), "low", {"type": "object"}, "plan")
    assert [m.role for m in c.messages] == ["system", "user", "assistant", "tool"] and c.messages[3].name == "f"
    body = od.response(result("", (ToolCall("c2", "f", {"a": 1}),), "tool_calls"), "m1")
    done = openai.types.chat.ChatCompletion.model_validate(body)
    assert json.loads(done.choices[0].message.tool_calls[0].function.arguments) == {"a": 1}
    assert (done.usage.prompt_tokens, done.usage.prompt_tokens_details.cached_tokens) == (1200, 1000)


@pytest.mark.parametrize("dialect, body, what", [
    (ad, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {}}]}]}, "'image'"),
    (ad, {"model": "m", "max_tokens": 5, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
          "messages": []}, "server tool"),
    (ad, {"model": "m", "max_tokens": 5, "tool_choice": {"type": "any"}, "messages": []}, "tool_choice"),
    (od, {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "'image_url'"),
    (od, {"model": "m", "messages": [], "n": 3}, "n > 1"),
    (od, {"model": "m", "messages": [], "tool_choice": "required"}, "tool_choice"),
])
def test_what_cannot_cross_protocols_is_refused_by_name(dialect, body, what):
    with pytest.raises(Untranslatable) as info:
        dialect.parse(body)
    assert what in info.value.message and info.value.status == 400


def test_errors_in_each_protocols_shape():
    err = ServeError("overloaded", "busy")
    assert (ad.error_status(err), ad.error_body(err)["error"]["type"]) == (529, "overloaded_error")
    assert (od.error_status(err), od.error_body(err)["error"]["type"]) == (503, "server_error")


def _sse_objects(raw: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def test_stream_renderers_carry_what_the_deltas_did_not():
    # an adapter that streamed only part of the text and none of the tool call (the CLI ones stream nothing)
    final = result("Hello world", (ToolCall("c9", "f", {"x": 1}),), "tool_calls")
    a = ad.Renderer("m")
    raw = a.start(None) + a.event(TextDelta("Hello")) + a.finish(final)
    events = _sse_objects(raw)
    kinds = [e["type"] for e in events]
    assert kinds == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    assert "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta") == "Hello world"
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    o = od.Renderer("m")
    raw = o.start(None) + o.event(ToolCallDelta(3, "f", '{"x"')) + o.event(ToolCallDelta(3, None, ": 1}")) \
        + o.finish(result("", (ToolCall("c9", "f", {"x": 1}),), "tool_calls"))
    chunks = _sse_objects(raw)
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls", [])]
    assert [tc["index"] for tc in calls] == [0, 0] and calls[0]["function"]["name"] == "f"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"x": 1}'  # not sent a second time
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 30
    assert raw.endswith(b"data: [DONE]\n\n")


# ------------------------------------------------------------------ the commit window


class Sink:
    def __init__(self) -> None:
        self.items: list = []

    def __call__(self, item) -> None:
        self.items.append(item)

    @property
    def sent(self) -> bytes:
        return b"".join(i for i in self.items if isinstance(i, bytes))


def window(max_chars: int = 10, clock: list[float] | None = None) -> tuple[CommitWindow, Sink]:
    sink = Sink()
    t = clock if clock is not None else [0.0]
    w = CommitWindow(lambda model: od.Renderer(model), sink, max_chars=max_chars, max_seconds=5.0,
                     timer=lambda: t[0])
    return w, sink


def test_nothing_is_sent_before_the_window_fills_and_a_reset_discards_it():
    w, sink = window()
    w.attempt("m1")
    w.on_event(TextDelta("bad "))
    w.on_event(AttemptReset(1, "m1", "stream_broken"))
    w.attempt("m2")
    w.on_event(TextDelta("good"))
    assert sink.items == [] and not w.committed
    w.on_event(TextDelta(" answer!"))  # 12 characters: over the window
    assert w.committed and b"good" in sink.sent and b"bad" not in sink.sent and b'"model":"m2"' in sink.sent


def test_a_short_answer_is_sent_whole_at_the_end():
    w, sink = window(max_chars=1000)
    w.attempt("m1")
    w.on_event(TextDelta("short"))
    assert sink.items == []
    w.finish(result("short"))
    assert b"short" in sink.sent and sink.items[-1] is END


def test_time_commits_a_slow_stream():
    clock = [0.0]
    w, sink = window(max_chars=1000, clock=clock)
    w.attempt("m1")
    w.on_event(TextDelta("a"))
    clock[0] = 6.0
    w.on_event(TextDelta("b"))
    assert w.committed and b'"content":"a"' in sink.sent


def test_after_commit_a_failure_stops_the_walk_and_is_told_in_protocol():
    w, sink = window(max_chars=0)
    w.attempt("m1")
    w.on_event(TextDelta("partial"))
    with pytest.raises(CommittedFailure):
        w.on_event(AttemptReset(1, "m1", "stream_broken: cut"))
    w.fail(ServeError("server", "broke off"))
    assert b'"error"' in sink.items[-2] and sink.items[-1] is END


def test_before_commit_a_failure_is_a_plain_error():
    w, sink = window()
    err = ServeError("rate_limit", "all limited")
    w.fail(err)
    assert sink.items == [err]


# ------------------------------------------------------------------ verify, sessions, auth


def test_structural_checks():
    req = ChatRequest(model="", messages=(Message("user", "q"),), max_output_tokens=1000,
                      tools=(ToolSpec("f", "", {}),))
    assert "empty" in problem(result(""), req)
    bad = ToolCall("c", "f", {}, extra={"raw_arguments": "{", "arguments_error": "Expecting value"})
    assert "not valid JSON" in problem(result("", (bad,), "tool_calls"), req)
    assert "not one of the tools" in problem(result("", (ToolCall("c", "g", {}),), "tool_calls"), req)
    assert "cut off" in problem(result("abc", finish="length", usage=Usage(10, 200)), req)
    assert problem(result("abc", finish="length", usage=Usage(10, 1000)), req) is None  # the client's own limit
    js = ChatRequest(model="", messages=(), json_schema={"type": "object", "required": ["a"]})
    assert "not JSON" in problem(result("sure: {"), js)
    assert "lacks required keys: a" in problem(result('{"b": 1}'), js)
    assert problem(result('```json\n{"a": 1}\n```'), js) is None


def test_sessions_stick_and_expire():
    now = [0.0]
    table = SessionTable(ttl=60, clock=lambda: now[0])
    assert table.order("s", ["a", "b", "c"], str) == ["a", "b", "c"]
    table.served("s", "c")
    assert table.order("s", ["a", "b", "c"], str) == ["c", "a", "b"]
    assert table.order("s", ["a", "b"], str) == ["a", "b"]  # its model is not in this chain
    now[0] = 61
    assert table.order("s", ["a", "b", "c"], str) == ["a", "b", "c"]
    chat = ChatRequest(model="", messages=(Message("system", "s"), Message("user", "first")))
    longer = ChatRequest(model="", messages=(*chat.messages, Message("assistant", "x"), Message("user", "more")))
    assert session_key({}, "anvil/build", chat) == session_key({}, "anvil/build", longer)
    assert session_key({}, "anvil/plan", chat) != session_key({}, "anvil/build", chat)
    assert session_key({"x-anvil-session": "mine"}, "m", chat) == "mine"


def test_token_from_either_header():
    assert presented({"authorization": "Bearer tok"}) == "tok" and presented({"x-api-key": "k"}) == "k"
    assert authorized({"x-api-key": "tok"}, "tok") and not authorized({"authorization": "Bearer no"}, "tok")
    assert not authorized({}, "tok")


# ------------------------------------------------------------------ policy routes, ledger columns


def test_routes_in_the_policy(tmp_path: Path):
    repo = git_repo(tmp_path / "repo")
    write(repo / ".anvil/stage-policy.yaml", """
        routes:
          quick-edit:
            capability: [code]
            prefer: [cheap]
    """)
    config = load_config(repo)
    route = config.policy.stage("quick-edit")
    assert route.prefer == ("cheap",) and route.timeout == 300  # `defaults:` apply to routes too
    write(repo / ".anvil/stage-policy.yaml", """
        routes:
          plan: {prefer: [cheap]}
          other: {chain: [no-such-model]}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(repo)
    text = "\n".join(info.value.errors)
    assert "plan is a stage name" in text


def test_route_with_unknown_model(tmp_path: Path):
    repo = git_repo(tmp_path / "repo")
    write(repo / ".anvil/stage-policy.yaml", """
        routes:
          other: {chain: [no-such-model]}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(repo)
    assert "routes.other.chain[0]: unknown model 'no-such-model'" in info.value.errors[0]


def test_ledger_has_the_served_columns_and_reports_group_by_them(tmp_path: Path):
    from anvil.ledger.db import AttemptRow, Ledger
    from anvil.ledger.report import Filter, build_report

    with Ledger(tmp_path / "l.db") as led:
        for client, session in (("A/1", "s1"), ("A/1", "s2"), ("B/2", "s1")):
            led.record(AttemptRow("2026-12-01T00:00:00.000000Z", "serve-x", "/r", "serve", 1, 0, "p", "openai", "m",
                                  "m", "m", "ok", None, None, None, 10, 0, 0, 5, 0, 0.1, None, None, "unpriced", None,
                                  None, client=client, session=session, preset="anvil/build"))
        by_client = build_report(led.conn, ["client"], Filter(since="2026-12-01", until="2026-12-02"))
        assert {g.key["client"]: g.calls for g in by_client.groups} == {"A/1": 2, "B/2": 1}
        by_session = build_report(led.conn, ["session", "preset"], Filter())
        assert {(g.key["session"], g.key["preset"]): g.calls for g in by_session.groups} == {
            ("s1", "anvil/build"): 2, ("s2", "anvil/build"): 1}


# ------------------------------------------------------------------ one gateway in-process, on a real socket


@pytest.fixture
def gateway_url(srv, tmp_path: Path) -> Iterator[str]:
    """The app on a real uvicorn socket, over a real walker and the scripted upstream (openai wire)."""
    import uvicorn

    from anvil.ledger.db import Ledger
    from anvil.routing.walker import Walker
    from anvil.serve.app import build_app
    from anvil.serve.gateway import Gateway
    from anvil.serve.listen import bind
    from anvil.serve.presets import Presets

    home = Path(__import__("os").environ["ANVIL_HOME"])
    (home / "models.yaml").write_text(
        f"providers:\n  up: {{kind: openai, base_url: '{srv.url}/v1', api_key_env: UP_KEY}}\n"
        "models:\n  - {id: up-model, provider: up, tier: cheap, capabilities: [code, reasoning, structured],"
        " complexity_max: L}\n")
    import os

    os.environ["UP_KEY"] = "sk-up"
    try:
        config = load_config(None)
        from anvil.routing.availability import check_providers

        led = Ledger(tmp_path / "ledger.db")
        walker = Walker(config.catalogue.walker, ledger=led, config=config)
        gw = Gateway(Presets(config, check_providers(config, probe=False)), walker, SessionTable(),
                     run_id="serve-test", repo="")
        sock = bind(0)
        server = uvicorn.Server(uvicorn.Config(build_app(gw, "tok"), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        yield "http://{}:{}".format(*sock.getsockname()[:2])
        server.should_exit = True
        thread.join(5)
        gw.close()
        led.close()
    finally:
        del os.environ["UP_KEY"]


def test_in_process_gateway_streams_to_the_official_sdk(gateway_url, srv):
    from anvil.providers.scripted.model import ScriptedModel
    from anvil.providers.scripted.server import Match

    srv.add_responder(ScriptedModel("streamed through the gateway"), match=Match(model="up-model"))
    client = anthropic.Anthropic(base_url=gateway_url, api_key="tok", max_retries=0, timeout=20)
    with client.messages.stream(model="up-model", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as s:
        assert "".join(s.text_stream) == "streamed through the gateway"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway_url + "/v1", api_key="nope", max_retries=0).models.list()
    host, port = gateway_url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=2):
        pass


def test_responses_request_with_codex_style_items_and_freeform_tool():
    from anvil.serve import responses_dialect as rd

    creq = rd.parse({
        "model": "anvil/build", "instructions": "you are codex", "stream": True, "reasoning": {"effort": "xhigh"},
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}},
                  {"type": "custom", "name": "apply_patch", "description": "patch files",
                   "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}],
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
                  {"type": "reasoning", "id": "rs_1", "encrypted_content": "zzz", "summary": []},
                  {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                  {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd": "ls"}'},
                  {"type": "function_call_output", "call_id": "c1", "output": "a.py"},
                  {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"},
                  {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"}]})
    c = creq.chat
    assert [m.role for m in c.messages] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert c.messages[2].content == "ok" and c.messages[2].tool_calls[0].arguments == {"cmd": "ls"}
    assert c.messages[4].tool_calls[0].arguments == {"input": "*** Begin"} and c.messages[5].name == "apply_patch"
    assert creq.custom_tools == {"apply_patch"} and c.reasoning_effort == "high"
    assert "start: x" in c.tools[1].description and c.tools[1].parameters["required"] == ["input"]
    # the call to the freeform tool goes back as a custom_tool_call, in the SDK's own Response type
    final = result("", (ToolCall("c3", "apply_patch", {"input": "*** Begin Patch"}),), "tool_calls")
    body = rd.response(final, "m1", creq)
    resp = openai.types.responses.Response.model_validate(body)
    assert resp.output[0].type == "custom_tool_call" and resp.output[0].input == "*** Begin Patch"
    r = rd.Renderer("m1", creq)
    raw = r.start(None) + r.event(TextDelta("Patching.")) + r.event(ToolCallDelta(1, "shell", '{"cmd":')) \
        + r.event(ToolCallDelta(1, None, ' "ls"}')) + r.finish(result("Patching.", (ToolCall("x", "shell",
                                                                                            {"cmd": "ls"}),),
                                                                        "tool_calls"))
    events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = events[-1]
    assert done["type"] == "response.completed"
    resp = openai.types.responses.Response.model_validate(done["response"])
    assert [o.type for o in resp.output] == ["message", "function_call"]
    assert resp.output[0].content[0].text == "Patching." and json.loads(resp.output[1].arguments) == {"cmd": "ls"}
    with pytest.raises(Untranslatable):
        rd.parse({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})
    with pytest.raises(Untranslatable):
        rd.parse({"model": "m", "input": "x", "previous_response_id": "resp_1"})
