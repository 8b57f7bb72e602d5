"""Anthropic adapter against the scripted server, one test per wire.md case C01-C19 (+ C74)."""

from __future__ import annotations

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedModel, ScriptedToolCall
from anvil.providers.scripted.server import Match, Reply
from anvil.providers.types import Message, TextDelta, Usage
from tests.providers_helpers import KEY, failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

BASIC = NAMED["ANTHROPIC_BASIC_STREAM"]
SSE_HEAD = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]


def _basic_events() -> list[bytes]:
    return [e + b"\n\n" for e in BASIC.split(b"\n\n") if e]


def anthropic(srv, **options):
    return provider("anthropic", srv, **options)


def test_c01_non_stream_text_with_cache_usage(srv):
    srv.add(Reply.parse(CASES["C01"][0]))
    result = anthropic(srv, stream=False).chat(request())
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=2060, output_tokens=6, cache_read_tokens=2048)
    assert result.request_id == "req_fake_c01"
    sent = srv.requests[0]
    assert "stream" not in sent.json
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"


def test_c02_basic_stream_with_ping(srv):
    srv.add(Reply.sse(BASIC, headers=SSE_HEAD + [("request-id", "req_fake_c02")]))
    seen = []
    result = anthropic(srv).chat(request(), on_event=seen.append)
    assert result.text == "Hello there!"
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=11, output_tokens=6)
    assert result.request_id == "req_fake_c02"
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " there!"]
    assert srv.requests[0].json["stream"] is True
    assert result.ttft_s is not None


def test_c03_text_then_tool_use_with_empty_first_fragment(srv):
    events = _basic_events()
    start = events[0].replace(b"msg_01FakeBasic", b"msg_fake_c03")
    text_block = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'  # noqa: E501
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I\'ll read it."}}\n\n'  # noqa: E501
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    )
    srv.add(Reply.sse([start, text_block, NAMED["ANTHROPIC_TOOL_STREAM"], CASES["C03"][0]], headers=SSE_HEAD))
    result = anthropic(srv).chat(request())
    assert result.text == "I'll read it."
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("toolu_01FakeTool", "read_file", {"path": "src/app.py"})
    assert result.finish_reason == "tool_calls"
    assert result.usage.output_tokens == 65


def test_c04_thinking_then_text(srv):
    srv.add(Reply.sse(CASES["C04"][0], headers=SSE_HEAD))
    result = anthropic(srv).chat(request(reasoning_effort="medium"))
    assert result.text == "Done."
    assert result.reasoning_text == "Check the file first."
    assert result.usage == Usage(input_tokens=30, output_tokens=40, reasoning_tokens=31)
    thinking = srv.requests[0].json["thinking"]
    assert thinking["type"] == "enabled" and 1024 <= thinking["budget_tokens"] < 4096
    assert "temperature" not in srv.requests[0].json


def test_c04_thinking_signature_is_sent_back_with_the_tool_turn(srv):
    model = ScriptedModel([ScriptedAnswer(reasoning="Need the file.", tool_calls=(
        ScriptedToolCall("read_file", {"path": "a.py"}, id="toolu_1"),)), "It prints hi."])
    srv.add_responder(model)
    p = anthropic(srv)
    first = p.chat(request())
    blocks = first.tool_calls[0].extra["anthropic_thinking"]
    assert blocks[0]["signature"] and blocks[0]["thinking"] == "Need the file."
    follow_up = request(messages=(Message("user", "Open a.py"),
                                  Message("assistant", "", tool_calls=first.tool_calls),
                                  Message("tool", "print('hi')", tool_call_id="toolu_1", name="read_file")))
    assert p.chat(follow_up).text == "It prints hi."
    assistant = srv.requests[1].json["messages"][1]
    assert assistant["content"][0] == blocks[0]
    assert assistant["content"][1]["type"] == "tool_use"
    assert srv.requests[1].json["messages"][2]["content"][0]["type"] == "tool_result"


def test_c05_error_event_after_200(srv):
    srv.add(Reply.sse(CASES["C05"][0], headers=SSE_HEAD))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert err.kind == "overloaded"
    assert err.partial is True  # "Hello" was already streamed: flagged, not returned
    assert "Overloaded" in err.message
    assert err.usage == Usage(input_tokens=11, output_tokens=1)  # what message_start billed


def test_c06_clean_eof_without_message_stop(srv):
    events = _basic_events()
    cut_at = next(i for i, e in enumerate(events) if b"content_block_delta" in e)
    srv.add(Reply.sse(events[: cut_at + 1], headers=SSE_HEAD))  # then the 0-length terminator
    err = failure(lambda: anthropic(srv).chat(request()))
    assert err.kind == "stream_broken"


def test_c07_529_then_success(srv):
    srv.queue([Reply.parse(CASES["C07"][0]), Reply.parse(CASES["C01"][0])])
    p = anthropic(srv, stream=False)
    err = failure(lambda: p.chat(request()))
    assert (err.kind, err.status, err.request_id) == ("overloaded", 529, "req_fake_c07a")
    assert err.retry_after is None  # no header: the walker backs off (0.5 s, jittered)
    assert p.chat(request()).text == "Hello there!"
    assert len(srv.requests) == 2


def test_c08_429_with_retry_after(srv):
    srv.add(Reply.parse(CASES["C08"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert (err.kind, err.status, err.retry_after) == ("rate_limit", 429, 2.0)
    assert err.rate_limits["anthropic-ratelimit-input-tokens-remaining"] == "0"
    assert err.rate_limits["anthropic-ratelimit-requests-reset"] == "2026-01-01T00:00:02Z"


def test_c09_spend_limit_429_is_quota(srv):
    srv.add(Reply.parse(CASES["C09"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert err.kind == "quota"
    assert len(srv.requests) == 1


def test_c10_context_overflow_prompt_too_long(srv):
    srv.add(Reply.parse(CASES["C10"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert (err.tokens_needed, err.context_limit) == (208310, 200000)


def test_c11_context_overflow_input_plus_max_tokens(srv):
    srv.add(Reply.parse(CASES["C11"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert err.kind == "context_overflow"
    assert (err.tokens_needed, err.context_limit) == (199759 + 8192, 200000)


def test_c12_bad_key(srv):
    srv.add(Reply.parse(CASES["C12"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert (err.kind, err.status) == ("auth", 401)
    assert KEY not in str(err)


def test_c13_no_sampling_params_under_2026_10_21(srv):
    rejects = Match(when=lambda r: r.headers["anthropic-version"] == "2026-10-21" and "temperature" in r.json)
    srv.add(Reply.parse(CASES["C13"][0]), rejects, times=None)
    srv.add(Reply.sse(BASIC, headers=SSE_HEAD), times=None)
    p = anthropic(srv, api_version="2026-10-21")
    assert p.chat(request(temperature=0.3)).text == "Hello there!"
    assert srv.requests[0].headers["anthropic-version"] == "2026-10-21"
    assert "temperature" not in srv.requests[0].json
    anthropic(srv).chat(request(temperature=0.3))  # 2023-06-01 still accepts it
    assert srv.requests[1].json["temperature"] == 0.3


def test_c14_non_stream_cut_at_max_tokens(srv):
    srv.add(Reply.parse(CASES["C14"][0]))
    result = anthropic(srv, stream=False).chat(request())
    assert result.finish_reason == "length"
    assert result.text == "The answer is a very long"
    assert result.usage == Usage(input_tokens=20, output_tokens=8)


def test_c15_stream_ending_on_stop_sequence(srv):
    body = BASIC.replace(
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}\n\n',  # noqa: E501
        CASES["C15"][0],
    )
    assert body != BASIC
    srv.add(Reply.sse(body, headers=SSE_HEAD))
    result = anthropic(srv).chat(request(stop=("\nHuman:",)))
    assert result.finish_reason == "stop"
    assert result.text == "Hello there!"
    assert srv.requests[0].json["stop_sequences"] == ["\nHuman:"]


def test_c16_unknown_event_and_fields_are_tolerated(srv):
    events = _basic_events()
    events[0] = events[0].replace(
        b'"stop_sequence":null,"usage"', b'"stop_sequence":null,"stop_details":null,"container":null,"usage"'
    )
    assert b"stop_details" in events[0]
    events.insert(2, CASES["C16"][0])
    srv.add(Reply.sse(events, headers=SSE_HEAD))
    result = anthropic(srv).chat(request())
    assert (result.text, result.finish_reason, result.usage) == ("Hello there!", "stop", Usage(11, 6))


def test_c17_model_context_window_exceeded(srv):
    srv.add(Reply.parse(CASES["C14"][0].replace(b'"max_tokens"', b'"model_context_window_exceeded"')))
    err = failure(lambda: anthropic(srv, stream=False).chat(request()))
    assert err.kind == "context_overflow"
    assert err.usage == Usage(input_tokens=20, output_tokens=8)  # billed even though it failed


def test_c18_edge_520_html(srv):
    srv.add(Reply.parse(CASES["C18"][0]))
    err = failure(lambda: anthropic(srv).chat(request()))
    assert (err.kind, err.status) == ("server", 520)
    assert "520: Web server is returning an unknown error" in err.message


def test_c19_models_list_in_two_pages(srv):
    page1, page2 = CASES["C19"]
    srv.add(Reply.json(page2), Match(path="/v1/models", when=lambda r: r.query.get("after_id") == "claude-opus-fake"))
    srv.add(Reply.parse(page1), Match(path="/v1/models"))
    models = anthropic(srv).list_models()
    assert [m.id for m in models] == ["claude-opus-fake", "claude-haiku-fake"]
    assert models[0].context_window == 200000 and models[1].context_window is None
    assert srv.requests[1].query["after_id"] == "claude-opus-fake"


def test_c74_version_header_always_sent(srv):
    srv.add(Reply.parse(CASES["C74"][0]), Match(when=lambda r: "anthropic-version" not in r.headers), times=None)
    srv.add(Reply.sse(BASIC, headers=SSE_HEAD), times=None)
    assert anthropic(srv).chat(request()).text == "Hello there!"
    assert all(r.headers.get("anthropic-version") == "2023-06-01" for r in srv.requests)


def test_cache_breakpoints_on_system_and_marked_messages(srv):
    srv.add(Reply.sse(BASIC, headers=SSE_HEAD))
    msgs = [Message("system", "Big stable prompt")] + [
        Message("user" if i % 2 == 0 else "assistant", f"turn {i}", cache=True) for i in range(5)]
    anthropic(srv).chat(request(messages=msgs))
    body = srv.requests[0].json
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    marked = [b for m in body["messages"] for b in m["content"] if "cache_control" in b]
    assert len(marked) == 3  # 4 breakpoints at most, the latest messages win
    assert marked[-1]["text"] == "turn 4"


def test_sdk_agrees_with_adapter_on_a_scripted_stream(srv):
    import anthropic as sdk

    answer = ScriptedAnswer(text="The quick brown fox, in a stream.", input_tokens=900, output_tokens=12,
                            cache_read_tokens=512, cache_write_tokens=100)
    srv.add_responder(ScriptedModel(answer))
    ours = anthropic(srv).chat(request())
    client = sdk.Anthropic(base_url=srv.url, api_key=KEY, max_retries=0)
    with client.messages.stream(model="test-model", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    sdk_text = "".join(b.text for b in final.content if b.type == "text")
    u = final.usage
    assert sdk_text == ours.text == answer.text
    assert u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens == ours.usage.input_tokens == 900
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (512, 100)
    assert u.output_tokens == ours.usage.output_tokens == 12


# --- real-recording miss (issue 14): server-side compaction passes in usage.iterations ---------------

COMPACTION_WHOLE = (
    b'HTTP/1.1 200 OK\ncontent-type: application/json\nrequest-id: req_fake_compact\n\n'
    b'{"id":"msg_fake_compact","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
    b'"content":[{"type":"compaction","content":"Summary of the earlier turns (fake)."},'
    b'{"type":"text","text":"Done."}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":229,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    b'"output_tokens":5,"iterations":[{"type":"compaction","input_tokens":55196,"output_tokens":131},'
    b'{"type":"message","input_tokens":229,"output_tokens":5}],"service_tier":"standard"}}\n')

COMPACTION_STREAM = (
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_fake_c2","type":"message",'
    '"role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":229,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,'
    '"output_tokens":1}}}\n\n'
    'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":'
    '{"type":"text","text":""}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
    '{"type":"text_delta","text":"Done."}}\n\n'
    'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    '"stop_sequence":null},"usage":{"output_tokens":5,"iterations":[{"type":"compaction",'
    '"input_tokens":55196,"cache_read_input_tokens":0,"output_tokens":131},{"type":"message",'
    '"input_tokens":229,"cache_read_input_tokens":100,"output_tokens":5}]}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_compaction_iterations_are_billed_on_top_of_the_message_usage(srv):
    srv.add(Reply.parse(COMPACTION_WHOLE))
    result = anthropic(srv, stream=False).chat(request(extra={"context_management": {"edits": [
        {"type": "compact_20260112"}]}}))
    assert result.text == "Done."
    assert result.usage == Usage(input_tokens=55425, output_tokens=136)  # not 229 / 5


def test_compaction_iterations_in_a_stream(srv):
    srv.add(Reply.sse(COMPACTION_STREAM, headers=SSE_HEAD))
    result = anthropic(srv).chat(request())
    assert result.usage == Usage(input_tokens=55196 + 229 + 100, output_tokens=136, cache_read_tokens=100)
