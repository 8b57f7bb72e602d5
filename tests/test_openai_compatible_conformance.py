"""OpenAI-compatible presets against the scripted server: OpenRouter C52-C56, Ollama /v1 C63,
generic servers C64-C68, plus the preset table (base URLs, max_tokens, json_schema)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anvil.providers.openai_compatible import PRESETS, quirks_for
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedModel
from anvil.providers.scripted.server import Reply
from anvil.providers.types import ProviderSettings, Usage
from tests.providers_helpers import failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

SSE = [("content-type", "text/event-stream")]


def openrouter(srv):
    return provider("openrouter", srv, "/api/v1")


def test_c52_openrouter_processing_comments_and_cost(srv):
    srv.add(Reply.sse(NAMED["OPENROUTER_STREAM"], headers=SSE + [("x-generation-id", "gen-fake52")]))
    result = openrouter(srv).chat(request(reasoning_effort="high"))
    assert result.text == "Hello"
    assert result.provider_cost == Decimal("0.000111")
    assert isinstance(result.provider_cost, Decimal) and str(result.provider_cost) == "0.000111"
    assert result.usage == Usage(input_tokens=12, output_tokens=5)
    assert result.request_id == "gen-fake52"
    assert result.served_model == "anthropic/claude-sonnet-4.5"
    sent = srv.requests[0]
    assert sent.path == "/api/v1/chat/completions"
    assert sent.json["max_tokens"] == 4096 and sent.json["reasoning"] == {"effort": "high"}
    assert sent.json["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_c53_openrouter_error_mid_stream_despite_done(srv):
    srv.add(Reply.sse(CASES["C53"][0], headers=SSE))
    err = failure(lambda: openrouter(srv).chat(request()))
    assert err.kind == "server"
    assert err.partial is True
    assert "Provider disconnected unexpectedly" in err.message


def test_c54_openrouter_402_out_of_credits(srv):
    srv.add(Reply.parse(CASES["C54"][0]))
    err = failure(lambda: openrouter(srv).chat(request()))
    assert (err.kind, err.status) == ("quota", 402)


def test_c55_openrouter_context_check(srv):
    srv.add(Reply.parse(CASES["C55"][0]))
    err = failure(lambda: openrouter(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert (err.tokens_needed, err.context_limit) == (42832, 32768)


def test_c56_upstream_overflow_in_metadata_raw(srv):
    srv.add(Reply.parse(CASES["C56"][0]))
    err = failure(lambda: openrouter(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert (err.tokens_needed, err.context_limit) == (210000, 200000)


def test_c63_ollama_v1_reasoning_field(srv):
    srv.add(Reply.sse(CASES["C63"][0], headers=SSE))
    p = provider("openai_compatible", srv, "/v1", key=None)
    result = p.chat(request(model="qwen3:8b"))
    assert (result.reasoning_text, result.text) == ("Think", "Hi")
    assert result.usage == Usage(input_tokens=9, output_tokens=2)
    sent = srv.requests[0]
    assert "authorization" not in sent.headers
    assert sent.json["max_tokens"] == 4096 and "max_completion_tokens" not in sent.json


def test_c64_vllm_legacy_error_envelope(srv):
    srv.add(Reply.parse(CASES["C64"][0]))
    err = failure(lambda: provider("vllm", srv, "/v1").chat(request()))
    assert err.kind == "context_overflow"
    assert err.context_limit == 32768 and err.tokens_needed == 41648
    assert err.message.startswith("This model's maximum context length is 32768 tokens")


@pytest.mark.parametrize("status", [500, 400])
def test_c65_llamacpp_exceed_context_size_even_as_500(srv, status):
    body = CASES["C65"][0]
    if status == 400:
        body = body.replace(b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 400 Bad Request").replace(
            b'"code":500', b'"code":400')
    srv.add(Reply.parse(body))
    err = failure(lambda: provider("llamacpp", srv, "/v1", key=None).chat(request()))
    assert (err.kind, err.status) == ("context_overflow", status)
    assert (err.tokens_needed, err.context_limit) == (1407, 256)


def test_c66_deepseek_keepalive_reasoning_and_cache_hits(srv):
    srv.add(Reply.sse(CASES["C66"][0], headers=SSE))
    result = provider("deepseek", srv, "/v1").chat(request(model="deepseek-reasoner"))
    assert (result.reasoning_text, result.text, result.finish_reason) == ("Think", "Hi", "stop")
    assert result.usage == Usage(input_tokens=100, output_tokens=10, cache_read_tokens=64, reasoning_tokens=5)


def test_c67_groq_x_groq_usage_then_413(srv):
    stream, too_large = CASES["C67"]
    srv.queue([Reply.sse(stream, headers=SSE), Reply.parse(too_large)])
    p = provider("groq", srv, "/openai/v1")
    result = p.chat(request(model="llama-3.3-70b-versatile"))
    assert result.text == "Hi"
    assert result.usage == Usage(input_tokens=23, output_tokens=1)
    err = failure(lambda: p.chat(request(model="llama-3.3-70b-versatile")))
    assert (err.kind, err.status) == ("quota", 413)  # too large for the TPM window: never retried
    assert len(srv.requests) == 2


def test_groq_429_wait_read_from_the_message_when_no_header(srv):
    body = {"error": {"message": "Rate limit reached for model `llama-3.3-70b-versatile` on requests per day (RPD): "
                                 "Limit 1000, Used 1000, Requested 1. Please try again in 9m38.016s.",
                      "type": "requests", "code": "rate_limit_exceeded"}}
    srv.add(Reply.json(body, status=429))
    err = failure(lambda: provider("groq", srv, "/openai/v1").chat(request()))
    assert err.kind == "rate_limit"
    assert err.retry_after == pytest.approx(578.016)


def test_c68_lmstudio_empty_200_is_an_error(srv):
    srv.add(Reply.sse(CASES["C68"][0], headers=SSE))
    err = failure(lambda: provider("lmstudio", srv, "/v1", key=None).chat(request()))
    assert err.kind == "context_overflow"
    assert "empty completion" in err.message
    assert err.usage == Usage(input_tokens=36000)


def test_llamacpp_structured_output_uses_json_schema(srv):
    srv.add_responder(ScriptedModel('{"a": "b"}'))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    result = provider("llamacpp", srv, "/v1", key=None).chat(request(json_schema=schema))
    assert result.text == '{"a": "b"}'
    sent = srv.requests[0].json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_deepseek_structured_output_falls_back_to_json_object(srv):
    srv.add_responder(ScriptedModel('{"a": "b"}'))
    provider("deepseek", srv, "/v1").chat(request(json_schema={"type": "object"}))
    assert srv.requests[0].json["response_format"] == {"type": "json_object"}


def test_scripted_openrouter_cost_round_trips_exactly(srv):
    srv.add_responder(ScriptedModel(ScriptedAnswer(text="ok", cost=Decimal("0.0000123456789"))))
    result = openrouter(srv).chat(request())
    assert result.provider_cost == Decimal("0.0000123456789")


def test_presets_table():
    assert set(PRESETS) == {"openai_compatible", "openrouter", "deepseek", "groq", "mistral", "together",
                            "opencode", "vllm", "llamacpp", "lmstudio"}
    assert all(q.max_tokens_field == "max_tokens" for q in PRESETS.values())
    assert PRESETS["openrouter"].base_url == "https://openrouter.ai/api/v1"
    assert PRESETS["groq"].base_url == "https://api.groq.com/openai/v1"
    overridden = quirks_for(ProviderSettings("x", "vllm", options={"max_tokens_field": "max_completion_tokens"}))
    assert overridden.max_tokens_field == "max_completion_tokens"
    with pytest.raises(ValueError, match="unknown openai_compatible preset"):
        quirks_for(ProviderSettings("x", "openai_compatible", options={"quirks": "nope"}))


def test_generic_preset_needs_a_base_url():
    from anvil.providers import make_provider

    p = make_provider(ProviderSettings("x", "openai_compatible"))
    with pytest.raises(ValueError, match="base_url is required"):
        p.chat(request())


def test_openrouter_finish_reason_error_without_an_error_body(srv):
    body = ('data: {"id":"g","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
            'data: {"id":"g","choices":[{"index":0,"delta":{},"finish_reason":"error"}]}\n\ndata: [DONE]\n\n')
    srv.add(Reply.sse(body, headers=SSE))
    err = failure(lambda: openrouter(srv).chat(request()))
    assert err.kind == "server" and err.partial is True


# --- real-recording misses (issue 14): typed content parts, tool_use_failed -------------------------

MISTRAL_WHOLE = (
    b'HTTP/1.1 200 OK\ncontent-type: application/json\nx-request-id: req_fake_mistral1\n\n'
    b'{"id":"fake-mistral-1","object":"chat.completion","model":"magistral-medium-2509",'
    b'"usage":{"prompt_tokens":12,"total_tokens":40,"completion_tokens":28},"created":1761000000,'
    b'"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","tool_calls":null,'
    b'"content":[{"type":"thinking","thinking":[{"type":"text","text":"The user greets. "},'
    b'{"type":"text","text":"Answer briefly."}]},{"type":"text","text":"Hello"},{"type":"text","text":"!"}]}}]}\n')

MISTRAL_STREAM = (
    'data: {"id":"fake-mistral-2","object":"chat.completion.chunk","created":1761000000,'
    '"model":"magistral-small-2509","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    '"finish_reason":null}]}\n\n'
    'data: {"id":"fake-mistral-2","object":"chat.completion.chunk","created":1761000000,'
    '"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking",'
    '"thinking":[{"type":"text","text":"Think"}]}]},"finish_reason":null}]}\n\n'
    'data: {"id":"fake-mistral-2","object":"chat.completion.chunk","created":1761000000,'
    '"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"thinking",'
    '"thinking":[{"type":"text","text":"ing"}]}]},"finish_reason":null}]}\n\n'
    'data: {"id":"fake-mistral-2","object":"chat.completion.chunk","created":1761000000,'
    '"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":[{"type":"text","text":"Hi"}]},'
    '"finish_reason":null}]}\n\n'
    'data: {"id":"fake-mistral-2","object":"chat.completion.chunk","created":1761000000,'
    '"model":"magistral-small-2509","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":9,"total_tokens":15,"completion_tokens":6}}\n\n'
    'data: [DONE]\n\n')


@pytest.mark.parametrize("kind", ["mistral", "openai_compatible", "openrouter", "together", "vllm"])
def test_content_as_a_list_of_typed_parts_whole(srv, kind):
    srv.add(Reply.parse(MISTRAL_WHOLE))
    result = provider(kind, srv, "/v1", stream=False).chat(request(model="magistral-medium-2509"))
    assert result.text == "Hello!"  # the text parts, joined with no separator
    assert result.reasoning_text == "The user greets. Answer briefly."  # the thinking parts
    assert result.usage == Usage(input_tokens=12, output_tokens=28)


@pytest.mark.parametrize("kind", ["mistral", "groq", "deepseek", "lmstudio"])
def test_content_as_a_list_of_typed_parts_streamed(srv, kind):
    srv.add(Reply.sse(MISTRAL_STREAM, headers=SSE))
    seen = []
    result = provider(kind, srv, "/v1", stream_options=False).chat(request(model="magistral-small-2509"),
                                                                   on_event=seen.append)
    assert (result.reasoning_text, result.text) == ("Thinking", "Hi there")
    assert result.usage == Usage(input_tokens=9, output_tokens=6)
    assert [type(e).__name__ for e in seen].count("ReasoningDelta") == 2


GROQ_TOOL_USE_FAILED = (
    b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\nx-request-id: req_fake_groq_tuf\n\n'
    b'{"error":{"message":"Failed to call a function. Please adjust your prompt. See \'failed_generation\' '
    b'for more details.","type":"invalid_request_error","code":"tool_use_failed",'
    b'"failed_generation":"<function=read_file{\\"path\\": \\"a.py\\"}</function>"}}\n')

GROQ_TOOL_USE_FAILED_STREAM = (
    'data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1761000000,'
    '"model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{"role":"assistant","content":null},'
    '"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_fake"}}\n\n'
    'data: {"error":{"message":"Failed to call a function. Please adjust your prompt. See \'failed_generation\' '
    'for more details.","type":"invalid_request_error","code":"tool_use_failed",'
    '"failed_generation":"<function=read_file>{\\"path\\": 1}"}}\n\n')


def test_groq_tool_use_failed_400_is_the_models_fault_not_the_requests(srv):
    srv.add(Reply.parse(GROQ_TOOL_USE_FAILED))
    err = failure(lambda: provider("groq", srv, "/openai/v1").chat(request(model="llama-3.3-70b-versatile")))
    assert (err.kind, err.status) == ("server", 400)  # retried, then the next model; never "stop the walk"


def test_groq_tool_use_failed_inside_a_200_stream(srv):
    srv.add(Reply.sse(GROQ_TOOL_USE_FAILED_STREAM, headers=SSE))
    err = failure(lambda: provider("groq", srv, "/openai/v1").chat(request(model="llama-3.3-70b-versatile")))
    assert err.kind == "server" and "Failed to call a function" in err.message
