"""`anvil serve` end to end: the real command as a subprocess, the official `anthropic` and `openai`
SDKs as its clients, the scripted vendor server (every protocol) as its upstream.

One server for the module (start-up is the slow part); each test uses models of its own, so
burns and sessions of one test cannot leak into another.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest

from anvil.providers.scripted.model import (
    ScriptedAnswer,
    ScriptedFailure,
    ScriptedModel,
    ScriptedToolCall,
    cut_stream,
    render_for,
)
from anvil.providers.scripted.server import Match, Reply, ScriptedServer

pytestmark = pytest.mark.e2e  # one real `anvil serve` for the module, ~40 s; the units are in test_serve_units.py

TOKEN = "anvil-test-token-0123456789"
KEY = "sk-scripted-serve-0123456789"
BASES = {"anthropic": "", "openai": "/v1", "gemini": "", "ollama": ""}
# model id -> upstream protocol
MODELS = {
    "m-ant": "anthropic", "m-oai": "openai", "m-gem": "gemini", "m-oll": "ollama",
    "m-tools-ant": "anthropic", "m-tools-oai": "openai",
    "m-limited": "anthropic", "m-rescue": "openai",
    "m-empty": "openai", "m-after-empty": "anthropic",
    "m-notjson": "anthropic", "m-json": "openai",
    "m-badtool": "openai", "m-goodtool": "anthropic",
    "m-cut": "openai", "m-never": "anthropic",
    "m-s1": "anthropic", "m-s2": "openai",
    "m-h1": "openai", "m-h2": "anthropic",
    "m-codex": "anthropic",
    "m-slow": "openai",
}
ROUTES = {"fallback": ["m-limited", "m-rescue"], "empty": ["m-empty", "m-after-empty"],
          "json": ["m-notjson", "m-json"], "badtool": ["m-badtool", "m-goodtool"],
          "commit": ["m-cut", "m-never"], "sticky": ["m-s1", "m-s2"], "hashed": ["m-h1", "m-h2"]}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WEATHER_OAI = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                "parameters": WEATHER["input_schema"]}}


@dataclass
class Served:
    srv: ScriptedServer
    proc: subprocess.Popen[str]
    info: dict
    home: Path
    repo: Path

    def anthropic(self, key: str = TOKEN, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.info["anthropic_base_url"], api_key=key, max_retries=0,
                                   timeout=30, **kw)

    def openai(self, key: str = TOKEN, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.info["openai_base_url"], api_key=key, max_retries=0, timeout=30, **kw)

    def rows(self, preset: str) -> list[dict]:
        conn = sqlite3.connect(self.home / "ledger.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM attempts WHERE preset = ? ORDER BY id", (preset,))]
        finally:
            conn.close()


def _write_config(home: Path, srv: ScriptedServer) -> None:
    lines = ["walker: {backoff_base: 0.01, backoff_max: 0.02}", "providers:"]
    for mid, kind in MODELS.items():
        lines += [f"  p-{mid}:", f"    kind: {kind}", f"    base_url: {srv.url}{BASES[kind]}"]
        if kind != "ollama":
            lines.append("    api_key_env: SCRIPTED_API_KEY")
    lines.append("models:")
    for mid in MODELS:
        lines += [f"  - id: {mid}", f"    provider: p-{mid}", "    tier: cheap", "    complexity_max: L",
                  "    capabilities: [reasoning, code, structured, tools]", "    price: {input: 1, output: 2}"]
    (home / "models.yaml").write_text("\n".join(lines) + "\n")
    policy = ["stages:", "  build: {chain: [m-oai, m-ant]}", "routes:"]
    policy += [f"  {name}: {{chain: [{', '.join(chain)}]}}" for name, chain in ROUTES.items()]
    (home / "stage-policy.yaml").write_text("\n".join(policy) + "\n")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("ANVIL_")}
    return dict(env, ANVIL_HOME=str(home), SCRIPTED_API_KEY=KEY, ANVIL_SERVE_TOKEN=TOKEN, NO_COLOR="1")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home, repo = tmp_path_factory.mktemp("serve-home"), tmp_path_factory.mktemp("serve-repo")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with ScriptedServer(time_scale=0.01) as srv:
        srv.add(Reply.json({"models": []}), match=Match(path="/api/tags"), times=None)  # the ollama probe
        _write_config(home, srv)
        proc = subprocess.Popen([sys.executable, "-m", "anvil", "serve", "--port", "0", "--json"], cwd=repo,
                                env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line, proc.stderr.read() if proc.stderr else "no output"
            yield Served(srv, proc, json.loads(line), home, repo)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(autouse=True)
def _fresh_script(served: Served) -> None:
    """Each test scripts its own answers (the server keeps its burns and sessions: they are per model)."""
    served.srv.clear()
    served.srv.add(Reply.json({"models": []}), match=Match(path="/api/tags"), times=None)


def _port(s: Served) -> int:
    return int(s.info["url"].rsplit(":", 1)[1])


# ------------------------------------------------------------------ same and cross dialect


@pytest.mark.parametrize("model", ["m-ant", "m-oai", "m-gem", "m-oll"])
def test_anthropic_client_any_upstream(served, model):
    served.srv.add_responder(ScriptedModel(f"hello from {model}, in a few words",
                                           usage={"input_tokens": 120, "output_tokens": 9,
                                                  "cache_read_tokens": 100}), match=Match(model=model))
    client = served.anthropic()
    msg = client.messages.create(model=model, max_tokens=200, system="be brief",
                                 messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == f"hello from {model}, in a few words"
    assert msg.stop_reason == "end_turn" and msg.model == model
    # Anthropic's convention back: input without the cache part
    if model != "m-oll":  # (the Ollama wire reports no cache reads)
        assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (20, 100, 9)
    with client.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": "again"}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert "".join(pieces) == f"hello from {model}, in a few words" and len(pieces) > 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9
    up = served.srv.requests[-1]
    assert up.model == model  # the upstream got a request in its own protocol


@pytest.mark.parametrize("model", ["m-ant", "m-oai", "m-gem", "m-oll"])
def test_openai_client_any_upstream(served, model):
    served.srv.add_responder(ScriptedModel(f"hi from {model} over there", usage={"input_tokens": 50,
                                                                                "output_tokens": 6}),
                             match=Match(model=model))
    client = served.openai()
    r = client.chat.completions.create(model=model, messages=[{"role": "system", "content": "be brief"},
                                                              {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == f"hi from {model} over there"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (50, 6)
    chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"hi from {model} over there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_presets_and_models_listed_in_each_shape(served):
    ids = [m.id for m in served.openai().models.list()]
    assert ids[:7] == ["anvil/clarify", "anvil/plan", "anvil/build", "anvil/test", "anvil/validate",
                       "anvil/review", "anvil/ship"]
    assert "anvil/fallback" in ids and "m-oai" in ids
    assert "anvil/sticky" in [m.id for m in served.anthropic().models.list()]


def test_preset_walks_the_stage_chain(served):
    down = ScriptedModel("unused", failures=[ScriptedFailure("overloaded", times=3)])  # not burned: it recovers
    served.srv.add_responder(down, match=Match(model="m-oai"))
    served.srv.add_responder(ScriptedModel("from the second model"), match=Match(model="m-ant"))
    r = served.openai().chat.completions.create(model="anvil/build", messages=[{"role": "user", "content": "x"}])
    assert (r.model, r.choices[0].message.content, len(down.requests)) == ("m-ant", "from the second model", 3)


# ------------------------------------------------------------------ tools


def test_anthropic_client_tools_through_openai_upstream(served):
    model = ScriptedModel([ScriptedAnswer(tool_calls=(ScriptedToolCall("get_weather", {"city": "Paris"},
                                                                       id="call_w1"),)),
                           "It is sunny in Paris."])
    served.srv.add_responder(model, match=Match(model="m-tools-oai"))
    client = served.anthropic()
    first = client.messages.create(model="m-tools-oai", max_tokens=300, tools=[WEATHER],
                                   messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    up = served.srv.requests[-1].json
    assert up["tools"][0]["function"]["name"] == "get_weather"  # translated to OpenAI's tool shape
    with client.messages.stream(model="m-tools-oai", max_tokens=300, tools=[WEATHER], messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "It is sunny in Paris."
    sent = served.srv.requests[-1].json["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == use.id and sent[-1] == {"role": "tool", "tool_call_id": use.id,
                                                                       "content": "sunny"}


def test_openai_client_streamed_tool_call_from_anthropic_upstream(served):
    served.srv.add_responder(ScriptedModel(ScriptedAnswer(
        text="Let me look.", tool_calls=(ScriptedToolCall("get_weather", {"city": "Oslo"}),))),
        match=Match(model="m-tools-ant"))
    stream = served.openai().chat.completions.create(model="m-tools-ant", tools=[WEATHER_OAI], stream=True,
                                                     messages=[{"role": "user", "content": "Oslo?"}])
    text, name, args, finish, ids = "", "", "", None, set()
    for c in stream:
        d = c.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            assert tc.index == 0
            ids.add(tc.id) if tc.id else None
            name += (tc.function.name or "") if tc.function else ""
            args += (tc.function.arguments or "") if tc.function else ""
        finish = c.choices[0].finish_reason or finish
    assert (text, name, json.loads(args), finish, len(ids)) == ("Let me look.", "get_weather", {"city": "Oslo"},
                                                               "tool_calls", 1)
    assert served.srv.requests[-1].json["tools"][0]["input_schema"]["required"] == ["city"]


def test_responses_api_client_codex_style_through_anthropic_upstream(served):
    model = ScriptedModel([ScriptedAnswer(text="Listing.", tool_calls=(ScriptedToolCall("shell", {"cmd": "ls"}),)),
                           "Two files."])
    served.srv.add_responder(model, match=Match(model="m-codex"))
    client = served.openai()
    tools = [{"type": "function", "name": "shell", "description": "run", "parameters": {
        "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
    with client.responses.stream(model="m-codex", instructions="you are a coding agent", tools=tools,
                                 input=[{"role": "user", "content": "what is here?"}]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        first = stream.get_final_response()
    assert "".join(deltas) == "Listing." and first.status == "completed"
    call = next(o for o in first.output if o.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("shell", {"cmd": "ls"})
    assert served.srv.requests[-1].json["system"][0]["text"] == "you are a coding agent"
    second = client.responses.create(model="m-codex", tools=tools, input=[
        {"role": "user", "content": "what is here?"},
        *[o.model_dump(exclude_none=True) for o in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "a.py b.py"}])
    assert second.output_text == "Two files." and second.usage.output_tokens > 0
    sent = served.srv.requests[-1].json["messages"]
    assert sent[-1]["content"][0] == {"type": "tool_result", "tool_use_id": call.call_id, "content": "a.py b.py"}


# ------------------------------------------------------------------ errors


def test_wrong_or_missing_token_is_refused_in_each_protocol(served):
    with pytest.raises(anthropic.AuthenticationError) as a:
        served.anthropic(key="wrong").messages.create(model="m-ant", max_tokens=5,
                                                      messages=[{"role": "user", "content": "x"}])
    assert a.value.status_code == 401 and a.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError) as o:
        served.openai(key="wrong").chat.completions.create(model="m-oai", messages=[{"role": "user", "content": "x"}])
    assert o.value.status_code == 401 and o.value.code == "invalid_api_key"
    import httpx

    r = httpx.get(served.info["url"] + "/v1/models")  # no key at all
    assert r.status_code == 401 and "no API key" in r.json()["error"]["message"]
    r = httpx.post(served.info["url"] + "/v1/messages", json={}, headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and r.json()["type"] == "error"  # a Bearer token works on the Anthropic route too


def test_unknown_model_and_untranslatable_parts(served):
    with pytest.raises(anthropic.NotFoundError) as a:
        served.anthropic().messages.create(model="claude-nope", max_tokens=5, messages=[{"role": "user",
                                                                                        "content": "x"}])
    assert "anvil/build" in a.value.message
    with pytest.raises(openai.NotFoundError):
        served.openai().chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with pytest.raises(anthropic.BadRequestError) as bad:
        served.anthropic().messages.create(model="m-ant", max_tokens=5,
                                           messages=[{"role": "user", "content": [image]}])
    assert "cannot translate" in bad.value.message and "'image'" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad2:
        served.openai().chat.completions.create(model="m-oai", n=2, messages=[{"role": "user", "content": "x"}])
    assert "n > 1" in bad2.value.message


def test_count_tokens(served):
    n = served.anthropic().messages.count_tokens(model="m-ant", messages=[{"role": "user", "content": "x" * 400}])
    assert 100 <= n.input_tokens <= 110


# ------------------------------------------------------------------ the commit window


def test_rate_limit_burns_and_falls_back_inside_the_window(served):
    limited = ScriptedModel("never", failures=[ScriptedFailure("rate_limit", retry_after=3600)])
    rescue = ScriptedModel("the rescue answer")
    served.srv.add_responder(limited, match=Match(model="m-limited"))
    served.srv.add_responder(rescue, match=Match(model="m-rescue"))
    with served.anthropic().messages.stream(model="anvil/fallback", max_tokens=100,
                                            messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == "the rescue answer"
    chunks = list(served.openai().chat.completions.create(model="anvil/fallback", stream=True,
                                                          messages=[{"role": "user", "content": "again"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "the rescue answer"
    assert len(limited.requests) == 1  # burned by the first request, for every later one
    rows = served.rows("anvil/fallback")
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        ("m-limited", "error", "rate_limit"), ("m-rescue", "ok", None), ("m-rescue", "ok", None)]


def test_bad_answers_are_retried_on_the_next_model_unseen(served):
    served.srv.add_responder(ScriptedModel(""), match=Match(model="m-empty"))
    served.srv.add_responder(ScriptedModel("not empty"), match=Match(model="m-after-empty"))
    with served.anthropic().messages.stream(model="anvil/empty", max_tokens=100,
                                            messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == "not empty"
    served.srv.add_responder(ScriptedModel("Sure! Here is JSON: {"), match=Match(model="m-notjson"))
    served.srv.add_responder(ScriptedModel('{"answer": 42}'), match=Match(model="m-json"))
    r = served.openai().chat.completions.create(
        model="anvil/json", messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {
            "type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}}})
    assert json.loads(r.choices[0].message.content) == {"answer": 42} and r.model == "m-json"
    assert [(x["model"], x["error_kind"]) for x in served.rows("anvil/json")] == [("m-notjson", "bad_answer"),
                                                                                  ("m-json", None)]


def _bad_tool_stream(req) -> Reply:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m-badtool"}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                       "arguments": '{"city": "Par'}}
    events = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]},
                                   "finish_reason": None}]),
              dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
              dict(head, choices=[], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})]
    return Reply.sse("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n")


def test_malformed_tool_call_json_goes_to_the_next_model(served):
    served.srv.add_responder(_bad_tool_stream, match=Match(model="m-badtool"))
    served.srv.add_responder(ScriptedModel(ScriptedAnswer(tool_calls=(ScriptedToolCall("get_weather",
                                                                                       {"city": "Paris"}),))),
                             match=Match(model="m-goodtool"))
    with served.anthropic().messages.stream(model="anvil/badtool", max_tokens=100, tools=[WEATHER],
                                            messages=[{"role": "user", "content": "Paris?"}]) as s:
        final = s.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Paris"}]
    assert [x["error_kind"] for x in served.rows("anvil/badtool")] == ["bad_answer", None]


def test_failure_after_commit_is_reported_in_protocol_never_mixed(served):
    long = "word " * 1000  # 5000 characters: more than the 2048 the window holds back

    def cut(req):
        return cut_stream(render_for(req, ScriptedAnswer(text=long)), keep=700)

    never = ScriptedModel("NEVER SHOWN")
    served.srv.add_responder(cut, match=Match(model="m-cut"))
    served.srv.add_responder(never, match=Match(model="m-never"))
    got = []
    with pytest.raises(anthropic.APIStatusError) as a:
        with served.anthropic().messages.stream(model="anvil/commit", max_tokens=4000,
                                                messages=[{"role": "user", "content": "long"}]) as s:
            for t in s.text_stream:
                got.append(t)
    assert "incomplete" in str(a.value) and "m-cut" in str(a.value)
    text = "".join(got)
    assert len(text) > 2048 and set(text.split()) == {"word"}
    seen = []
    with pytest.raises(openai.APIError) as o:
        for c in served.openai().chat.completions.create(model="anvil/commit", stream=True,
                                                         messages=[{"role": "user", "content": "long"}]):
            seen.append(c.choices[0].delta.content or "" if c.choices else "")
    assert "incomplete" in str(o.value) and "NEVER" not in "".join(seen)
    assert never.requests == []  # once bytes were sent, no other model is asked
    assert [x["error_kind"] for x in served.rows("anvil/commit")] == ["stream_broken", "stream_broken"]


def test_a_client_that_leaves_mid_stream_stops_the_upstream_call(served):
    import httpx

    piece = "x" * 49 + " "  # 50 characters a chunk: the 2048-character window commits after ~41 of them
    slow = ScriptedModel(piece * 400)

    def paced(req):
        from dataclasses import replace

        return replace(slow(req), chunk_delay=2.0)  # x time_scale 0.01: 20 ms a chunk, 8 s for all of them

    served.srv.add_responder(paced, match=Match(model="m-slow"))
    body = {"model": "m-slow", "stream": True, "messages": [{"role": "user", "content": "long"}]}
    t0 = time.monotonic()
    with httpx.stream("POST", served.info["openai_base_url"] + "/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status_code == 200
        next(r.iter_bytes())  # the first committed bytes; then the client hangs up
    # the attempt's row is written `started` before the call (no call escapes the ledger): wait for it to settle
    while time.monotonic() - t0 < 20 and not [x for x in served.rows("m-slow") if x.get("state") != "started"]:
        time.sleep(0.1)
    rows = served.rows("m-slow")
    assert [(x["model"], x["error_kind"]) for x in rows] == [("m-slow", "client_gone")]
    assert time.monotonic() - t0 < 6  # abandoned, not read to the end (8 s)


# ------------------------------------------------------------------ sessions


def test_a_session_sticks_to_the_model_that_served_it(served):
    s1 = ScriptedModel("from s1", failures=[ScriptedFailure("overloaded", times=3)])
    s2 = ScriptedModel("from s2")
    served.srv.add_responder(s1, match=Match(model="m-s1"))
    served.srv.add_responder(s2, match=Match(model="m-s2"))
    client = served.openai(default_headers={"x-anvil-session": "conv-A"})
    msgs = [{"role": "user", "content": "hi"}]
    assert client.chat.completions.create(model="anvil/sticky", messages=msgs).choices[0].message.content == "from s2"
    # m-s1 recovered (an overload does not burn), but conv-A stays on m-s2...
    for _ in range(2):
        assert client.chat.completions.create(model="anvil/sticky",
                                              messages=msgs).choices[0].message.content == "from s2"
    assert len(s1.requests) == 3
    # ...while a new conversation starts at the head of the chain
    other = served.openai(default_headers={"x-anvil-session": "conv-B"})
    assert other.chat.completions.create(model="anvil/sticky", messages=msgs).choices[0].message.content == "from s1"
    sessions = {r["session"] for r in served.rows("anvil/sticky")}
    assert sessions == {"conv-A", "conv-B"}


def test_without_a_header_the_first_messages_name_the_conversation(served):
    h1 = ScriptedModel("h1", failures=[ScriptedFailure("model_not_found")])
    h2 = ScriptedModel("h2")
    served.srv.add_responder(h1, match=Match(model="m-h1"))
    served.srv.add_responder(h2, match=Match(model="m-h2"))
    client = served.anthropic()
    turn1 = [{"role": "user", "content": "task: fix the bug"}]
    r1 = client.messages.create(model="anvil/hashed", max_tokens=50, messages=turn1)
    assert r1.content[0].text == "h2"
    turn2 = [*turn1, {"role": "assistant", "content": "h2"}, {"role": "user", "content": "go on"}]
    assert client.messages.create(model="anvil/hashed", max_tokens=50, messages=turn2).content[0].text == "h2"
    keys = {r["session"] for r in served.rows("anvil/hashed")}
    assert len(keys) == 1 and next(iter(keys)).startswith("h-")


# ------------------------------------------------------------------ the ledger


def test_ledger_rows_name_client_session_preset_and_repo(served):
    served.srv.add_responder(ScriptedModel("ledgered"), match=Match(model="m-ant"))
    served.anthropic().messages.create(model="m-ant", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    served.openai().chat.completions.create(model="m-ant", messages=[{"role": "user", "content": "x"}])
    rows = served.rows("m-ant")
    assert {r["stage"] for r in rows} == {"serve"} and {r["run_id"] for r in rows} == {served.info["run_id"]}
    assert {r["repo"] for r in rows} == {str(served.repo.resolve())}
    clients = {r["client"].split("/")[0] for r in rows}
    assert {"Anthropic", "OpenAI"} <= clients
    out = subprocess.run([sys.executable, "-m", "anvil", "cost", "report", "--by", "client", "--all", "--json"],
                         capture_output=True, text=True, env=_env(served.home), cwd=served.repo, timeout=60)
    assert out.returncode == 0, out.stderr
    groups = {g["client"].split("/")[0]: g for g in json.loads(out.stdout)["rows"]}
    assert {"Anthropic", "OpenAI"} <= set(groups) and groups["OpenAI"]["calls"] >= 1
    out = subprocess.run([sys.executable, "-m", "anvil", "cost", "report", "--by", "session", "--json",
                          "--baseline", "m-ant"], capture_output=True, text=True, env=_env(served.home),
                         cwd=served.repo, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "conv-A" in {g["session"] for g in doc["rows"]} and doc["total"]["baseline_dollars"] is not None


# ------------------------------------------------------------------ loopback only


def _listeners(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.append(local.rsplit(":", 1)[0])
    return found


def _own_address() -> str | None:
    """A non-loopback address of this machine (no packet is sent), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_nothing_listens_beyond_loopback(served):
    port = _port(served)
    assert _listeners(port) == ["0100007F"]  # 127.0.0.1, and only it
    addr = _own_address()
    if addr is not None:
        with pytest.raises(OSError):
            socket.create_connection((addr, port), timeout=2).close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_other_binds_are_refused(tmp_path, host):
    out = subprocess.run([sys.executable, "-m", "anvil", "serve", "--port", "0", "--host", host],
                         capture_output=True, text=True, timeout=60, env=_env(tmp_path), cwd=tmp_path)
    assert out.returncode != 0 and "127.0.0.1 only" in out.stderr and "Traceback" not in out.stderr
