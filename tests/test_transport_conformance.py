"""Transport and framing cases C69-C73 over real loopback sockets (OpenAI framing, plus
Anthropic and Gemini bodies where the case asks)."""

from __future__ import annotations

import socket
import time

import pytest

from anvil.providers.scripted.server import Reply
from anvil.providers.sse import iter_sse
from anvil.providers.types import Usage
from tests.providers_helpers import failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

SSE = [("content-type", "text/event-stream")]


def openai(srv):
    return provider("openai", srv, "/v1")


def test_c69_one_byte_chunks_with_split_utf8(srv):
    body = NAMED["OPENAI_BASIC_STREAM"].replace(b'"content":"Hello"', '"content":"héllo ☃"'.encode())
    assert "☃".encode() in body
    srv.add(Reply.sse(body, headers=SSE))
    whole = openai(srv).chat(request())
    srv.add(Reply.sse(body, headers=SSE, chunk_size=1))
    split = openai(srv).chat(request())
    assert whole.text == split.text == "héllo ☃ there!"
    assert whole.usage == split.usage == Usage(input_tokens=19, output_tokens=4)


def test_c69_anthropic_stream_in_one_byte_chunks(srv):
    srv.add(Reply.sse(NAMED["ANTHROPIC_BASIC_STREAM"], headers=SSE, chunk_size=1))
    result = provider("anthropic", srv).chat(request())
    assert (result.text, result.usage) == ("Hello there!", Usage(11, 6))


def test_c69_gemini_crlf_body_split_between_cr_and_lf():
    body = NAMED["GEMINI_SSE_STREAM"]
    whole = list(iter_sse([body]))
    cut = body.index(b"\r\n\r\n") + 1  # between the first \r and its \n
    assert body[cut - 1 : cut + 1] == b"\r\n"
    assert list(iter_sse([body[:cut], body[cut:]])) == whole
    assert list(iter_sse(body[i : i + 1] for i in range(len(body)))) == whole
    assert len(whole) == 2 and whole[1].data.endswith('"responseId": "FakeResp1"}')


def test_c70_u2028_inside_json_string(srv):
    finish = b'data: {"id":"c70","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\ndata: [DONE]\n\n'  # noqa: E501
    srv.add(Reply.sse(CASES["C70"][0] + finish, headers=SSE))
    assert openai(srv).chat(request()).text == "a\u2028b"


@pytest.mark.parametrize("terminated", [True, False])
def test_c71_truncated_json_then_close(srv, terminated):
    srv.add(Reply.sse([CASES["C71"][0]], headers=SSE, cut=not terminated))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "stream_broken"
    assert "JSONDecodeError" not in str(err)


def test_c72a_head_then_silence_is_a_timeout(srv):
    srv.time_scale = 1.0
    srv.add(Reply.sse([], headers=SSE, stall=3.0))
    t0 = time.monotonic()
    err = failure(lambda: openai(srv).chat(request(timeout=0.5)))
    assert err.kind == "timeout"
    assert err.partial is False  # nothing was streamed: safe to retry
    assert time.monotonic() - t0 < 2.5


def test_c72b_two_deltas_then_stall(srv):
    srv.time_scale = 1.0
    events = [e + b"\n\n" for e in NAMED["OPENAI_BASIC_STREAM"].split(b"\n\n") if e]
    srv.add(Reply.sse(events[:3], headers=SSE, stall=3.0))
    err = failure(lambda: openai(srv).chat(request(timeout=0.5)))
    assert err.kind == "timeout"
    assert err.partial is True  # output was committed: the caller decides


def test_whole_exchange_deadline_with_a_trickling_server(srv):
    srv.time_scale = 1.0
    events = [e + b"\n\n" for e in NAMED["OPENAI_BASIC_STREAM"].split(b"\n\n") if e]
    srv.add(Reply.sse(events, headers=SSE, chunk_delay=0.3))  # each read is fast, the whole is not
    err = failure(lambda: openai(srv).chat(request(timeout=0.8)))
    assert err.kind == "timeout"


def test_c73a_empty_json_200(srv):
    srv.add(Reply(headers=[("content-type", "application/json")], body=b""))
    err = failure(lambda: openai(srv).chat(request()))
    assert (err.kind, err.status) == ("server", 200)


def test_c73b_html_200(srv):
    srv.add(Reply(headers=[("content-type", "text/html")], body=b"<html>maintenance</html>"))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "server"
    assert "maintenance" in err.message


def test_c73c_json_error_in_a_200(srv):
    srv.add(Reply.json('{"error":{"message":"fake upstream error","code":500}}'))
    err = failure(lambda: openai(srv).chat(request()))
    assert err.kind == "server"
    assert err.message == "fake upstream error"


def test_c73_odd_200_bodies_on_anthropic_too(srv):
    srv.add(Reply(headers=[("content-type", "text/html")], body=b"<html>maintenance</html>"))
    err = failure(lambda: provider("anthropic", srv).chat(request()))
    assert err.kind == "server"


def test_connection_refused_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings

    p = make_provider(ProviderSettings("x", "openai", base_url=f"http://127.0.0.1:{port}/v1", api_key="k"))
    err = failure(lambda: p.chat(request(timeout=2)))
    assert err.kind == "connection"
    assert err.provider == "x"
