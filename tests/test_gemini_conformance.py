"""Gemini adapter against the scripted server, one test per wire.md case C39-C51.

Every test drives the real adapter over a real loopback socket with the case's exact
bytes, then checks text, normalised Usage, finish reason, error kind, status and
retry_after, and what went over the wire (key in the header, never in the URL).
"""

from __future__ import annotations

import json

from anvil.providers.scripted.model import (
    ScriptedAnswer,
    ScriptedFailure,
    ScriptedModel,
    ScriptedToolCall,
    render_for,
)
from anvil.providers.scripted.server import Match, Reply
from anvil.providers.types import (
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from tests.providers_helpers import KEY, failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES, NAMED

MODEL = "gemini-2.5-flash"
JSON_HEAD = [("content-type", "application/json; charset=UTF-8")]
SSE_HEAD = [("content-type", "text/event-stream")]


def gemini(srv, **options):
    return provider("gemini", srv, **options)


def ask(**kw):
    return request(MODEL, **kw)


def assert_key_only_in_header(srv) -> None:
    for sent in srv.requests:
        assert sent.headers.get("x-goog-api-key") == KEY
        assert "key" not in sent.query
        assert KEY not in sent.path


def test_c39_non_stream_answer_with_thoughts_and_cached_tokens(srv):
    srv.add(Reply.parse(CASES["C39"][0]), match=Match(path=f"/v1beta/models/{MODEL}:generateContent"))
    result = gemini(srv, stream=False).chat(ask())
    assert result.text == "Hello there!"
    assert result.reasoning_text == "Plan briefly."  # the thought is kept apart
    assert result.finish_reason == "stop"
    assert result.usage == Usage(input_tokens=2100, output_tokens=53, cache_read_tokens=1800, reasoning_tokens=50)
    assert result.served_model == "gemini-2.5-flash"
    assert result.request_id == "fakeResp39"
    sent = srv.requests[0]
    assert sent.path.endswith(":generateContent") and "alt" not in sent.query
    assert_key_only_in_header(srv)
    body = sent.json
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hello."}]}]
    assert body["generationConfig"]["maxOutputTokens"] == 4096


def test_c40_sse_stream_crlf_usage_from_last_chunk(srv):
    srv.add(Reply.sse(NAMED["GEMINI_SSE_STREAM"], headers=SSE_HEAD))
    seen = []
    result = gemini(srv).chat(ask(), on_event=seen.append)
    assert result.text == "Hello there!"
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " there!"]
    assert result.finish_reason == "stop"
    # the last snapshot, not a sum: prompt 9 (not 18), candidates 3 + thoughts 28
    assert result.usage == Usage(input_tokens=9, output_tokens=31, reasoning_tokens=28)
    assert result.ttft_s is not None
    sent = srv.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert_key_only_in_header(srv)


def test_c40_one_byte_chunks_split_between_cr_and_lf(srv):
    # C69's Gemini variant: every chunk boundary, including between \r and \n
    srv.add(Reply(headers=SSE_HEAD, body=NAMED["GEMINI_SSE_STREAM"], chunk_size=1))
    result = gemini(srv).chat(ask())
    assert result.text == "Hello there!"
    assert result.usage == Usage(input_tokens=9, output_tokens=31, reasoning_tokens=28)


def test_c40_eof_before_finish_reason_is_stream_broken(srv):
    first_event = NAMED["GEMINI_SSE_STREAM"].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    srv.add(Reply.sse([first_event], headers=SSE_HEAD))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "stream_broken"
    assert err.usage == Usage(input_tokens=9)  # what was reported before the cut


def test_c41_function_call_finishes_with_stop_and_signature_goes_back(srv):
    srv.add(Reply.parse(CASES["C41"][0]))
    tools = (ToolSpec("read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}},
                                                    "required": ["path"]}),)
    result = gemini(srv, stream=False).chat(ask(tools=tools))
    assert result.finish_reason == "tool_calls"  # STOP + functionCall parts
    (call,) = result.tool_calls
    assert call.name == "read_file" and call.arguments == {"path": "src/app.py"}
    assert call.extra == {"thoughtSignature": "RmFrZVNpZw=="}
    assert result.usage == Usage(input_tokens=80, output_tokens=12)
    decl = srv.requests[0].json["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "read_file" and decl["parametersJsonSchema"]["required"] == ["path"]

    # next turn: the functionCall part carries its signature back, the result is a functionResponse
    srv.add(Reply.parse(CASES["C39"][0]))
    follow = ask(tools=tools, messages=(
        Message("user", "Open src/app.py"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "print('hi')", tool_call_id=call.id, name="read_file"),
        Message("user", "What does it do?"),
    ))
    gemini(srv, stream=False).chat(follow)
    contents = srv.requests[1].json["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "read_file", "args": {"path": "src/app.py"}}, "thoughtSignature": "RmFrZVNpZw=="}]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "read_file", "response": {"content": "print('hi')"}}},
        {"text": "What does it do?"}]}


def test_c41_function_call_streamed(srv):
    body = json.loads(CASES["C41"][0].split(b"\n\n", 1)[1])
    srv.add(Reply.sse([b"data: " + json.dumps(body).encode() + b"\r\n\r\n"], headers=SSE_HEAD))
    result = gemini(srv).chat(ask())
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].arguments == {"path": "src/app.py"}


def test_c42_per_minute_429_is_rate_limit_with_retry_delay(srv):
    srv.add(Reply.parse(CASES["C42"][0]))
    srv.add(Reply.sse(NAMED["GEMINI_SSE_STREAM"], headers=SSE_HEAD))
    adapter = gemini(srv)
    err = failure(lambda: adapter.chat(ask()))
    assert err.kind == "rate_limit"
    assert err.status == 429
    assert err.retry_after == 17.0  # RetryInfo.retryDelay "17s", not the message's 17.2
    assert "exceeded your current quota" in err.message
    # the retry (the walker waits retry_after, scaled down in tests) then succeeds
    assert adapter.chat(ask()).text == "Hello there!"


def test_c43_daily_quota_not_retryable(srv):
    body = json.loads(CASES["C42"][0].split(b"\n\n", 1)[1])
    body["error"]["message"] = "You exceeded your current quota, please check your plan and billing details."
    body["error"]["details"] = [body["error"]["details"][0]]
    body["error"]["details"][0]["violations"][0]["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    srv.add(Reply.json(json.dumps(body, indent=2), status=429, headers=JSON_HEAD))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "quota"
    assert err.status == 429
    assert err.retry_after is None
    assert len(srv.requests) == 1  # one attempt: the adapter never retries by itself


def test_c44_context_overflow(srv):
    srv.add(Reply.parse(CASES["C44"][0]))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "context_overflow"
    assert err.status == 400
    assert (err.tokens_needed, err.context_limit) == (1200293, 1048576)


def test_c45_invalid_key_is_400_auth(srv):
    srv.add(Reply.parse(CASES["C45"][0]))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "auth"  # through details[].reason, not the status
    assert err.status == 400
    assert "API key not valid" in err.message
    assert KEY not in str(err)


def test_c46_missing_key_403(srv):
    srv.add(Reply.parse(CASES["C46"][0]),
            match=Match(when=lambda r: "x-goog-api-key" not in r.headers and "key" not in r.query))
    err = failure(lambda: provider("gemini", srv, key=None).chat(ask()))
    assert err.kind == "auth"
    assert err.status == 403
    assert srv.unmatched == []


def test_c47_503_overloaded(srv):
    srv.add(Reply.parse(CASES["C47"][0]))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "overloaded"
    assert err.status == 503


def test_c48_max_tokens_and_the_no_parts_variant(srv):
    with_text, no_parts = CASES["C48"]
    srv.queue([Reply.json(with_text, headers=JSON_HEAD), Reply.json(no_parts, headers=JSON_HEAD)])
    adapter = gemini(srv, stream=False)
    first = adapter.chat(ask())
    assert (first.text, first.finish_reason) == ("The answer is a very long", "length")
    assert first.usage == Usage(input_tokens=10, output_tokens=8)
    second = adapter.chat(ask())  # the whole budget went to thoughts: no parts at all
    assert (second.text, second.finish_reason) == ("", "length")
    assert second.usage == Usage(input_tokens=10, output_tokens=1024, reasoning_tokens=1024)


def test_c49_blocked_prompt_is_content_policy(srv):
    srv.add(Reply.json(CASES["C49"][0], headers=JSON_HEAD))
    err = failure(lambda: gemini(srv, stream=False).chat(ask()))
    assert err.kind == "content_policy"
    assert "PROHIBITED_CONTENT" in err.message
    assert err.usage == Usage(input_tokens=12)


def test_c50_error_chunk_mid_stream(srv):
    srv.add(Reply.sse(CASES["C50"][0], headers=SSE_HEAD))
    seen = []
    err = failure(lambda: gemini(srv).chat(ask(), on_event=seen.append))
    assert err.kind == "overloaded"
    assert err.partial is True  # "Hel" had already been handed on
    assert "partial output" in err.message
    assert seen == [TextDelta("Hel")]


def test_c51_models_list_with_paging(srv):
    page1, page2 = CASES["C51"]
    srv.add(
        Reply.json(page2, headers=JSON_HEAD),
        match=Match(path="/v1beta/models", when=lambda r: r.query.get("pageToken") == "p2"),
    )
    srv.add(Reply.json(page1, headers=JSON_HEAD), match=Match(path="/v1beta/models"))
    models = gemini(srv).list_models()
    assert [m.id for m in models] == ["gemini-2.5-flash"]  # prefix stripped, embedder dropped
    assert models[0].context_window == 1048576
    assert [r.query.get("pageToken") for r in srv.requests] == [None, "p2"]
    assert_key_only_in_header(srv)


# --- beyond the numbered cases ----------------------------------------------------------------


def test_key_never_in_error_message_or_recorded_url(srv):
    # a server that echoes the key back in its error must not get it into anvil's error
    srv.add(Reply.json({"error": {"code": 400, "message": f"bad key {KEY} (x-goog-api-key: {KEY})",
                                  "status": "INVALID_ARGUMENT"}}, status=400))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert KEY not in str(err) and KEY not in err.message
    assert_key_only_in_header(srv)


def test_request_body_reasoning_schema_and_stop(srv):
    srv.add(Reply.sse(NAMED["GEMINI_SSE_STREAM"], headers=SSE_HEAD))
    schema = {"type": "object", "properties": {"goal": {"type": "string"}}, "required": ["goal"],
              "additionalProperties": False}
    gemini(srv).chat(ask(reasoning_effort="low", json_schema=schema, stop=("\nUser:",), temperature=0.2))
    gen = srv.requests[0].json["generationConfig"]
    assert gen["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseJsonSchema"] == schema
    assert gen["stopSequences"] == ["\nUser:"] and gen["temperature"] == 0.2

    srv.add(Reply.sse(NAMED["GEMINI_SSE_STREAM"], headers=SSE_HEAD))
    gemini(srv).chat(request("gemini-3-pro-preview", reasoning_effort="high"))
    assert srv.requests[1].json["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high",
                                                                         "includeThoughts": True}


def test_scripted_model_speaks_gemini_streamed_and_not(srv):
    answer = ScriptedAnswer(text="Hi from the script.", reasoning="Think first.", input_tokens=500,
                            output_tokens=40, cache_read_tokens=300, reasoning_tokens=12)
    srv.add_responder(ScriptedModel([answer]), match=Match(model=MODEL))
    seen = []
    streamed = gemini(srv).chat(ask(), on_event=seen.append)
    plain = gemini(srv, stream=False).chat(ask())
    for result in (streamed, plain):
        assert result.text == "Hi from the script."
        assert result.reasoning_text == "Think first."
        assert result.usage == Usage(input_tokens=500, output_tokens=40, cache_read_tokens=300, reasoning_tokens=12)
        assert result.finish_reason == "stop"
    assert len([e for e in seen if isinstance(e, TextDelta)]) > 1
    assert any(isinstance(e, ReasoningDelta) for e in seen)
    raw = render_for(srv.requests[0], answer).body_bytes()  # the exact bytes that were served
    assert raw.startswith(b"data: {") and raw.endswith(b"}\r\n\r\n") and b"[DONE]" not in raw
    assert raw.count(b"\r\n\r\n") == raw.count(b"data: ")  # CRLF framing, one event per chunk


def test_scripted_model_gemini_tool_call_and_failures(srv):
    answer = ScriptedAnswer(tool_calls=(ScriptedToolCall("read_file", {"path": "a.py"}),))
    srv.add_responder(ScriptedModel([answer], failures=[ScriptedFailure("rate_limit", retry_after=3),
                                                        ScriptedFailure("quota")]))
    adapter = gemini(srv)
    first = failure(lambda: adapter.chat(ask()))
    assert (first.kind, first.retry_after) == ("rate_limit", 3.0)
    assert failure(lambda: adapter.chat(ask())).kind == "quota"
    result = adapter.chat(ask())
    assert result.finish_reason == "tool_calls"
    call: ToolCall = result.tool_calls[0]
    assert call.arguments == {"path": "a.py"} and call.extra.get("thoughtSignature")


def test_scripted_model_gemini_error_kinds_round_trip(srv):
    kinds = ["auth", "overloaded", "server", "model_not_found", "context_overflow", "invalid_request",
             "content_policy", "stream_broken"]
    failures = [ScriptedFailure("stream_cut" if k == "stream_broken" else k) for k in kinds]
    srv.add_responder(ScriptedModel(["never"], failures=failures))
    adapter = gemini(srv)
    got = [failure(lambda: adapter.chat(ask())).kind for _ in kinds]
    assert got == kinds


def test_stream_without_alt_sse_json_array_is_still_read(srv):
    # what a proxy that drops `alt=sse` sends back: one JSON array of responses (wire.md 4.1)
    events = [json.loads(e[len(b"data: "):]) for e in NAMED["GEMINI_SSE_STREAM"].split(b"\r\n\r\n") if e]
    srv.add(Reply.json(json.dumps(events, indent=1).replace("}\n,", "},\r\n"), headers=JSON_HEAD))
    result = gemini(srv).chat(ask())
    assert result.text == "Hello there!"
    assert result.usage == Usage(input_tokens=9, output_tokens=31, reasoning_tokens=28)


def test_call_ids_and_signatures_in_history(srv):
    srv.add(Reply.sse(NAMED["GEMINI_SSE_STREAM"], headers=SSE_HEAD), times=None)
    ours = ToolCall("call_openai_1", "grep", {"pattern": "x"})  # made by another provider
    theirs = ToolCall("fc-123", "read_file", {"path": "a"}, {"gemini_call_id": "fc-123", "thoughtSignature": "U2ln"})
    history = (Message("user", "go"), Message("assistant", "", tool_calls=(ours,)),
               Message("tool", "no match", tool_call_id="call_openai_1", name="grep"),
               Message("assistant", "", tool_calls=(theirs,)),
               Message("tool", "text", tool_call_id="fc-123", name="read_file"))
    gemini(srv).chat(request("gemini-3-pro-preview", messages=history))
    contents = srv.requests[0].json["contents"]
    # a foreign id is not sent; the foreign call gets Gemini 3's placeholder signature
    assert contents[1]["parts"] == [{"functionCall": {"name": "grep", "args": {"pattern": "x"}},
                                     "thoughtSignature": "skip_thought_signature_validator"}]
    assert "id" not in contents[2]["parts"][0]["functionResponse"]
    # Gemini's own id and signature go back unchanged
    assert contents[3]["parts"] == [{"functionCall": {"name": "read_file", "args": {"path": "a"}, "id": "fc-123"},
                                     "thoughtSignature": "U2ln"}]
    assert contents[4]["parts"][0]["functionResponse"]["id"] == "fc-123"
    gemini(srv).chat(ask(messages=history))  # 2.5: no placeholder needed
    assert "thoughtSignature" not in srv.requests[1].json["contents"][1]["parts"][0]


def test_pretty_printed_error_without_data_prefix_in_stream(srv):
    # google-genai buffers such a body until its braces balance (wire.md 4.4)
    first = NAMED["GEMINI_SSE_STREAM"].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    raw_error = json.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                      "status": "RESOURCE_EXHAUSTED"}}, indent=2).encode().replace(b"\n", b"\r\n")
    srv.add(Reply.sse([first, raw_error + b"\r\n"], headers=SSE_HEAD))
    err = failure(lambda: gemini(srv).chat(ask()))
    assert err.kind == "rate_limit"  # a bare "Resource has been exhausted": shared capacity, retry
    assert "Resource has been exhausted" in err.message


# --- independent check: the official google-genai SDK reads the scripted Gemini replies -------


def test_official_sdk_reads_scripted_gemini(srv):
    genai = __import__("pytest").importorskip("google.genai")
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types

    answer = ScriptedAnswer(text="Hi from the script.", reasoning="Think first.", input_tokens=500,
                            output_tokens=40, cache_read_tokens=300, reasoning_tokens=12,
                            tool_calls=(ScriptedToolCall("read_file", {"path": "a.py"}),))
    srv.add_responder(ScriptedModel([answer], failures=[ScriptedFailure("rate_limit", retry_after=7)]),
                      match=Match(model=MODEL))
    client = genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(base_url=srv.url))
    try:
        client.models.generate_content(model=MODEL, contents="hi")
        raise AssertionError("the scripted 429 was not raised")
    except genai_errors.ClientError as exc:
        assert exc.code == 429 and exc.status == "RESOURCE_EXHAUSTED"
    whole = client.models.generate_content(model=MODEL, contents="hi")
    parts = whole.candidates[0].content.parts
    assert [p.text for p in parts if p.text and not p.thought] == ["Hi from the script."]
    assert [p.text for p in parts if p.thought] == ["Think first."]
    call = next(p for p in parts if p.function_call)
    assert call.function_call.name == "read_file" and call.function_call.args == {"path": "a.py"}
    assert call.thought_signature  # base64 that the SDK decodes
    meta = whole.usage_metadata
    assert (meta.prompt_token_count, meta.cached_content_token_count, meta.thoughts_token_count,
            meta.candidates_token_count) == (500, 300, 12, 28)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert len(chunks) > 2
    assert "".join(p.text for c in chunks for p in (c.candidates[0].content.parts or [])
                   if p.text and not p.thought) == "Hi from the script."
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata.thoughts_token_count == 12
