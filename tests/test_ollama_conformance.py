"""Ollama native adapter against the scripted server, one test per wire.md case C57-C62.

(C63, Ollama's `/v1` OpenAI-compatible endpoint, is the openai_compatible adapter's:
see tests/test_openai_compatible_conformance.py.)
"""

from __future__ import annotations

import json

import pytest

from anvil.providers.ollama_models import list_model_info, list_models
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, ScriptedModel, ScriptedToolCall
from anvil.providers.scripted.server import Match, Reply
from anvil.providers.types import Message, ReasoningDelta, TextDelta, ToolSpec, Usage
from tests.providers_helpers import failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

MODEL = "qwen3:8b"
STREAM = NAMED["OLLAMA_CHAT_STREAM"]


def ollama(srv, **options):
    return provider("ollama", srv, key=None, **options)


def ask(**kw):
    return request(MODEL, **kw)


def test_c57_native_stream_with_thinking(srv):
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)), match=Match(method="POST", path="/api/chat"))
    adapter = ollama(srv)
    seen = []
    result = adapter.chat(ask(context_window=32768), on_event=seen.append)
    assert result.reasoning_text == "User asks"
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=11, output_tokens=18)
    assert result.served_model == MODEL
    assert adapter.last_metrics.tokens_per_second == pytest.approx(18 / 0.052479709)
    assert seen[0] == ReasoningDelta("User asks")
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " there!"]
    body = srv.requests[0].json
    assert body["stream"] is True
    assert body["options"]["num_ctx"] == 32768  # always sent: Ollama's default truncates silently
    assert body["options"]["num_predict"] == 4096
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}


def test_c58_non_stream_tool_call(srv):
    srv.add(Reply.parse(CASES["C58"][0]), match=Match(when=lambda r: r.json.get("stream") is False))
    tools = (ToolSpec("read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}),)
    result = ollama(srv, stream=False).chat(ask(tools=tools))
    (call,) = result.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_fake58", "read_file", {"path": "src/app.py"})
    assert result.finish_reason == "tool_calls"  # done_reason "stop" + tool_calls
    assert result.usage == Usage(input_tokens=122, output_tokens=33)
    assert srv.unmatched == []
    sent = srv.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "read_file"

    # without an id the adapter makes one; the tool result goes back with tool_name
    no_id = json.loads(CASES["C58"][0].split(b"\n\n", 1)[1])
    del no_id["message"]["tool_calls"][0]["id"]
    srv.add(Reply.json(no_id))
    generated = ollama(srv, stream=False).chat(ask(tools=tools)).tool_calls[0]
    assert generated.id and generated.arguments == {"path": "src/app.py"}
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)))
    ollama(srv).chat(ask(messages=(
        Message("user", "Open src/app.py"),
        Message("assistant", "", tool_calls=(generated,)),
        Message("tool", "print('hi')", tool_call_id=generated.id),
    )))
    msgs = srv.requests[-1].json["messages"]
    assert msgs[1]["tool_calls"] == [{"function": {"name": "read_file", "arguments": {"path": "src/app.py"}}}]
    assert msgs[2] == {"role": "tool", "tool_name": "read_file", "content": "print('hi')"}


def test_c59_unknown_model_says_ollama_pull(srv):
    srv.add(Reply.parse(CASES["C59"][0]))
    err = failure(lambda: ollama(srv).chat(request("llama9:70b")))
    assert err.kind == "model_not_found"
    assert err.status == 404
    assert "ollama pull llama9:70b" in err.message


def test_c60_error_line_mid_stream(srv):
    srv.add(Reply.ndjson(CASES["C60"][0].splitlines(keepends=True)))
    seen = []
    err = failure(lambda: ollama(srv).chat(ask(), on_event=seen.append))
    assert err.kind == "server"
    assert "an error was encountered while running the model" in err.message
    assert err.partial is True and seen == [TextDelta(" Yes")]


def test_c61_done_reason_length(srv):
    lines = STREAM.splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"done_reason":"stop"', b'"done_reason":"length"')
    srv.add(Reply.ndjson(lines))
    result = ollama(srv).chat(ask())
    assert result.finish_reason == "length"
    assert result.text == "Hello there!"


def test_c62_api_tags(srv):
    srv.add(Reply.json(NAMED["OLLAMA_TAGS"]), match=Match(method="GET", path="/api/tags"))
    srv.add(Reply.json('{"models":[]}'), match=Match(method="GET", path="/api/tags"))
    (info,) = list_model_info(srv.url)
    assert (info.name, info.parameter_size, info.family) == ("qwen3:8b", "8.2B", "qwen3")
    assert list_models(srv.url) == []  # an empty server is an empty list, not a crash


# --- beyond the numbered cases ----------------------------------------------------------------


def test_silent_truncation_is_context_overflow(srv):
    # Ollama cut the prompt to num_ctx and answered anyway: that answer must not be used
    lines = STREAM.splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"prompt_eval_count":11', b'"prompt_eval_count":4096')
    srv.add(Reply.ndjson(lines))
    err = failure(lambda: ollama(srv).chat(ask(context_window=4096)))
    assert err.kind == "context_overflow"
    assert "4096" in err.message and "truncated" in err.message
    assert err.usage == Usage(input_tokens=4096, output_tokens=18)


def test_num_ctx_default_from_settings(srv):
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)))
    ollama(srv, num_ctx=16384).chat(ask())
    assert srv.requests[0].json["options"]["num_ctx"] == 16384
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)))
    ollama(srv).chat(ask())
    assert srv.requests[1].json["options"]["num_ctx"] == 8192
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)))
    ollama(srv, max_num_ctx=32768).chat(ask(context_window=131072))
    assert srv.requests[2].json["options"]["num_ctx"] == 32768


def test_eof_before_done_is_stream_broken(srv):
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)[:3]))
    err = failure(lambda: ollama(srv).chat(ask()))
    assert err.kind == "stream_broken"


def test_truncated_json_line_is_stream_broken(srv):
    srv.add(
        Reply(headers=[("content-type", "application/x-ndjson")], chunks=[STREAM[:150]], framing="chunked", cut=True)
    )
    err = failure(lambda: ollama(srv).chat(ask()))
    assert err.kind == "stream_broken"
    assert err.provider == "test-ollama"


def test_think_format_and_options(srv):
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)), times=None)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    ollama(srv).chat(ask(reasoning_effort="high", json_schema=schema, temperature=0.1, stop=("\nUser:",)))
    body = srv.requests[0].json
    assert body["think"] is True and body["format"] == schema
    assert body["options"]["temperature"] == 0.1 and body["options"]["stop"] == ["\nUser:"]
    ollama(srv).chat(request("gpt-oss:20b", reasoning_effort="medium"))
    assert srv.requests[1].json["think"] == "medium"
    ollama(srv).chat(ask())
    assert "think" not in srv.requests[2].json


def test_scripted_model_speaks_ollama(srv):
    answer = ScriptedAnswer(text="Local answer.", reasoning="hmm", input_tokens=300, output_tokens=25)
    srv.add_responder(ScriptedModel([answer]), match=Match(path="/api/chat"))
    streamed = ollama(srv).chat(ask())
    plain = ollama(srv, stream=False).chat(ask())
    for result in (streamed, plain):
        assert (result.text, result.reasoning_text) == ("Local answer.", "hmm")
        assert result.usage == Usage(input_tokens=300, output_tokens=25)
        assert result.finish_reason == "stop"


def test_scripted_model_ollama_tools_and_failures(srv):
    answer = ScriptedAnswer(tool_calls=(ScriptedToolCall("grep", {"pattern": "TODO"}),))
    failures = [ScriptedFailure("model_not_found"), ScriptedFailure("overloaded"),
                ScriptedFailure("context_overflow"), ScriptedFailure("stream_cut")]
    srv.add_responder(ScriptedModel([answer], failures=failures))
    adapter = ollama(srv)
    missing = failure(lambda: adapter.chat(ask()))
    assert missing.kind == "model_not_found" and f"ollama pull {MODEL}" in missing.message
    assert failure(lambda: adapter.chat(ask())).kind == "overloaded"
    assert failure(lambda: adapter.chat(ask(context_window=2048))).kind == "context_overflow"
    assert failure(lambda: adapter.chat(ask())).kind == "stream_broken"
    result = adapter.chat(ask())
    assert result.finish_reason == "tool_calls" and result.tool_calls[0].arguments == {"pattern": "TODO"}


def test_model_that_cannot_think_is_asked_again_without_think(srv):
    srv.add(Reply.json({"error": '"llama3.2:3b" does not support thinking'}, status=400))
    srv.add(Reply.ndjson(STREAM.splitlines(keepends=True)))
    result = ollama(srv).chat(request("llama3.2:3b", reasoning_effort="medium"))
    assert result.text == "Hello there!"
    assert [("think" in r.json) for r in srv.requests] == [True, False]


def test_model_without_tools_is_model_not_found_for_the_walker(srv):
    srv.add(Reply.json({"error": 'registry.ollama.ai/library/gemma2:2b does not support tools'}, status=400))
    tools = (ToolSpec("read_file", "Read a file", {"type": "object"}),)
    err = failure(lambda: ollama(srv).chat(request("gemma2:2b", tools=tools)))
    assert err.kind == "model_not_found"  # burn this model, try the next: another model can do tools
    assert "ollama pull" not in err.message


def test_api_show_context_length(srv):
    from anvil.providers.ollama_models import model_context_length

    show = {"capabilities": ["completion", "tools", "thinking"],
            "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960}}
    srv.add(Reply.json(show), match=Match(method="POST", path="/api/show", model=MODEL))
    assert model_context_length(srv.url, MODEL) == 40960
    srv.add(Reply.parse(CASES["C59"][0]), match=Match(path="/api/show"))
    err = failure(lambda: model_context_length(srv.url, "llama9:70b"))
    assert err.kind == "model_not_found" and "ollama pull llama9:70b" in err.message


# --- independent check: the official ollama client reads the scripted Ollama replies ----------


def test_official_client_reads_scripted_ollama(srv):
    ollama_sdk = pytest.importorskip("ollama")
    answer = ScriptedAnswer(text="Local answer.", reasoning="hmm", input_tokens=300, output_tokens=25,
                            tool_calls=(ScriptedToolCall("grep", {"pattern": "TODO"}),))
    srv.add_responder(ScriptedModel([answer], failures=[ScriptedFailure("model_not_found")]),
                      match=Match(path="/api/chat"))
    client = ollama_sdk.Client(host=srv.url)
    with pytest.raises(ollama_sdk.ResponseError) as info:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404 and "not found" in info.value.error
    parts = list(client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Local answer."
    assert "".join(p.message.thinking or "" for p in parts) == "hmm"
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert calls[0].function.name == "grep" and dict(calls[0].function.arguments) == {"pattern": "TODO"}
    last = parts[-1]
    assert last.done and last.done_reason == "stop" and (last.prompt_eval_count, last.eval_count) == (300, 25)
    whole = client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=False)
    assert whole.message.content == "Local answer." and whole.eval_count == 25
