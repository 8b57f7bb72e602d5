"""OpenAI adapter against the scripted server, one test per wire.md case C20-C38."""

from __future__ import annotations

import json

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedModel
from anvil.providers.scripted.server import Match, Reply
from anvil.providers.types import TextDelta, ToolSpec, Usage
from tests.providers_helpers import KEY, failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

SSE = [("content-type", "text/event-stream")]


def openai(srv, **options):
    return provider("openai", srv, "/v1", **options)


def test_c20_non_stream_cached_and_reasoning_tokens(srv):
    srv.add(Reply.parse(CASES["C20"][0]))
    result = openai(srv, stream=False).chat(request())
    assert result.text == "Hello there!"
    assert result.usage == Usage(input_tokens=2100, output_tokens=70, cache_read_tokens=1920, reasoning_tokens=64)
    assert result.request_id == "req_fake_c20"
    assert result.served_model == "gpt-5"
    assert srv.requests[0].json["stream"] is False


def test_c21_stream_usage_in_final_chunk(srv):
    srv.add(Reply.sse(NAMED["OPENAI_BASIC_STREAM"], headers=SSE))
    seen = []
    result = openai(srv).chat(request(), on_event=seen.append)
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=19, output_tokens=4)
    assert result.served_model == "gpt-5-2025-08-07"
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " there!"]
    sent = srv.requests[0]
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["max_completion_tokens"] == 4096 and "max_tokens" not in sent.json
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_c22_two_parallel_tool_calls(srv):
    srv.add(Reply.sse(CASES["C22"][0], headers=SSE))
    tool = ToolSpec("read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})
    result = openai(srv).chat(request(tools=(tool,)))
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("call_A", "read_file", {"path": "a.py"}), ("call_B", "read_file", {"path": "b.py"})]
    assert result.finish_reason == "tool_calls"
    assert result.usage == Usage(input_tokens=50, output_tokens=30)
    sent = srv.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "read_file" and sent["parallel_tool_calls"] is True


def test_c23_error_chunk_mid_stream(srv):
    srv.add(Reply.sse(CASES["C23"][0], headers=SSE))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "server"
    assert err.partial is True
    assert "Sorry about that" in err.message


def test_c24_429_retry_after_and_rate_limit_headers(srv):
    srv.add(Reply.parse(CASES["C24"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status, err.retry_after) == ("rate_limit", 429, 2.0)
    assert err.request_id == "req_fake_c24"
    from anvil.providers.http import parse_duration

    assert parse_duration(err.rate_limits["x-ratelimit-reset-tokens"]) == 360.0
    assert parse_duration(err.rate_limits["x-ratelimit-reset-requests"]) == 1.2


def test_c25_429_retry_after_ms_only(srv):
    srv.add(Reply.parse(CASES["C24"][0].replace(b"retry-after: 2\n", b"retry-after-ms: 1500\n")))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.retry_after) == ("rate_limit", 1.5)


def test_c26_insufficient_quota_is_not_a_rate_limit(srv):
    srv.add(Reply.parse(CASES["C26"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status) == ("quota", 429)
    assert len(srv.requests) == 1


def test_c27_request_too_large_for_tpm_is_not_retryable(srv):
    srv.add(Reply.parse(CASES["C27"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status) == ("quota", 429)


def test_c28_context_length_exceeded_classic(srv):
    srv.add(Reply.parse(CASES["C28"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert (err.tokens_needed, err.context_limit) == (130517, 128000)


def test_c29_context_length_exceeded_new_wording(srv):
    srv.add(Reply.parse(CASES["C29"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert err.context_limit is None


def test_c30_unsupported_parameter(srv):
    srv.add(Reply.parse(CASES["C30"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status) == ("invalid_request", 400)
    assert "max_completion_tokens" in err.message


def test_c31_bad_key(srv):
    srv.add(Reply.parse(CASES["C31"][0]))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status) == ("auth", 401)


def test_c32_unknown_model(srv):
    srv.add(Reply.parse(CASES["C32"][0]))
    err = failure(lambda: openai(srv).chat(request(model="gpt-nope")))
    assert (err.kind, err.status, err.model) == ("model_not_found", 404, "gpt-nope")


def test_c33_503_503_then_200(srv):
    srv.queue([Reply.parse(CASES["C33"][0]), Reply.parse(CASES["C33"][0]), Reply.parse(CASES["C20"][0])])
    p = openai(srv, stream=False)
    kinds = [failure(lambda: p.chat(request())).kind for _ in range(2)]
    assert kinds == ["overloaded", "overloaded"]  # the walker backs off (0.5 s, 1 s) between these
    assert p.chat(request()).text == "Hello there!"
    assert len(srv.requests) == 3


def test_c34_finish_reason_length(srv):
    body = CASES["C20"][0].replace(b'"content":"Hello there!"', b'"content":"The answer is a very long"')
    srv.add(Reply.parse(body.replace(b'"finish_reason":"stop"', b'"finish_reason":"length"')))
    result = openai(srv, stream=False).chat(request())
    assert (result.text, result.finish_reason) == ("The answer is a very long", "length")


def test_c35_connection_cut_mid_stream(srv):
    events = [e + b"\n\n" for e in NAMED["OPENAI_BASIC_STREAM"].split(b"\n\n") if e]
    srv.add(Reply.sse(events[:2], headers=SSE, cut=True))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "stream_broken"
    assert err.partial is True  # "Hello" had been streamed


def test_c36_retry_after_above_the_ceiling_is_surfaced(srv):
    srv.add(Reply.parse(CASES["C24"][0].replace(b"retry-after: 2\n", b"retry-after: 300\n")))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.retry_after) == ("rate_limit", 300.0)
    assert len(srv.requests) == 1


def test_c37_models_list(srv):
    srv.add(Reply.parse(CASES["C37"][0]))
    assert [m.id for m in openai(srv).list_models()] == ["gpt-5", "gpt-5-mini"]
    assert srv.requests[0].path == "/v1/models"


def test_c38_responses_api_minimal_stream(srv):
    srv.add(Reply.sse(CASES["C38"][0], headers=SSE))
    result = openai(srv, api="responses").chat(request(reasoning_effort="low"))
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=10, output_tokens=4)
    sent = srv.requests[0]
    assert sent.path == "/v1/responses"
    assert sent.json["instructions"] == "You are terse."
    assert sent.json["reasoning"] == {"effort": "low"}
    assert sent.json["max_output_tokens"] == 4096


def test_structured_output_uses_strict_json_schema_when_compatible(srv):
    srv.add(Reply.sse(NAMED["OPENAI_BASIC_STREAM"], headers=SSE), times=None)
    strict = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    loose = {"type": "object", "properties": {"a": {"type": "string"}}}
    p = openai(srv)
    p.chat(request(json_schema=strict, schema_name="spec"))
    p.chat(request(json_schema=loose))
    first, second = (r.json["response_format"] for r in srv.requests)
    assert first == {"type": "json_schema", "json_schema": {"name": "spec", "schema": strict, "strict": True}}
    assert second["json_schema"]["strict"] is False


def test_reasoning_effort_and_no_key(srv):
    srv.add(Reply.sse(NAMED["OPENAI_BASIC_STREAM"], headers=SSE))
    openai(srv).chat(request(reasoning_effort="high"))
    assert srv.requests[0].json["reasoning_effort"] == "high"
    err = failure(lambda: provider("openai", srv, "/v1", key=None).chat(request()))
    assert err.kind == "auth" and len(srv.requests) == 1


def test_sdk_agrees_with_adapter_on_a_scripted_stream(srv):
    import openai as sdk

    answer = ScriptedAnswer(text="The quick brown fox, in a stream.", input_tokens=900, output_tokens=12,
                            cache_read_tokens=512, reasoning_tokens=3)
    srv.add_responder(ScriptedModel(answer), Match(path="/v1/chat/completions"))
    ours = openai(srv).chat(request())
    client = sdk.OpenAI(base_url=srv.url + "/v1", api_key=KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}],
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert text == ours.text == answer.text
    assert usage.prompt_tokens == ours.usage.input_tokens == 900
    assert usage.prompt_tokens_details.cached_tokens == ours.usage.cache_read_tokens == 512
    assert usage.completion_tokens == ours.usage.output_tokens == 12
    assert usage.completion_tokens_details.reasoning_tokens == ours.usage.reasoning_tokens == 3
    assert json.loads(srv.requests[1].body)["stream_options"] == {"include_usage": True}


def test_reasoning_models_never_get_temperature_or_stop(srv):
    srv.add(Reply.sse(NAMED["OPENAI_BASIC_STREAM"], headers=SSE), times=None)
    p = openai(srv)
    p.chat(request(model="gpt-5", temperature=0.2, stop=("END",)))
    p.chat(request(model="o3-mini", temperature=0.2))
    p.chat(request(model="gpt-4.1", temperature=0.2, stop=("END",)))
    sent = [r.json for r in srv.requests]
    assert "temperature" not in sent[0] and "stop" not in sent[0] and "temperature" not in sent[1]
    assert sent[2]["temperature"] == 0.2 and sent[2]["stop"] == ["END"]


def test_structured_output_refusal_is_a_content_filter_finish(srv):
    body = ('{"id":"r","object":"chat.completion","created":1,"model":"gpt-5","choices":[{"index":0,'
            '"message":{"role":"assistant","content":null,"refusal":"I can\'t help with that."},'
            '"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}')
    srv.add(Reply.json(body))
    result = openai(srv, stream=False).chat(request(json_schema={"type": "object"}))
    assert (result.finish_reason, result.text) == ("content_filter", "I can't help with that.")
