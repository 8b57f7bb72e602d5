"""The shared SSE parser: byte-level line splitting, chunk boundaries anywhere, comments."""

from __future__ import annotations

import random

from anvil.providers.sse import SSEEvent, iter_sse
from tests.wire_cases_helpers import NAMED


def parse(*chunks: bytes) -> list[SSEEvent]:
    return list(iter_sse(chunks))


def test_basic_events_and_names():
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [SSEEvent("a", "1"), SSEEvent(None, "2")]


def test_every_line_ending_and_mixes():
    expected = [SSEEvent("e", "x"), SSEEvent(None, "y")]
    for sep in (b"\n", b"\r\n", b"\r"):
        assert parse(b"event: e" + sep + b"data: x" + sep + sep + b"data: y" + sep + sep) == expected
    assert parse(b"event: e\r\ndata: x\n\rdata: y\r\r") == expected


def test_multiple_data_lines_joined_with_newline():
    assert parse(b"data: a\ndata: b\ndata:\n\n") == [SSEEvent(None, "a\nb\n")]


def test_exactly_one_space_stripped():
    assert parse(b"data:  two\n\ndata:none\n\n") == [SSEEvent(None, " two"), SSEEvent(None, "none")]


def test_comments_ids_retry_and_unknown_fields_skipped():
    body = b": OPENROUTER PROCESSING\n\n: keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n"
    assert parse(body) == [SSEEvent(None, "x")]


def test_event_without_data_is_not_dispatched():
    assert parse(b"event: ping\n\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_u2028_and_friends_do_not_split_lines():
    raw = "a\u2028b\u2029c\x85d\x1ce".encode()
    assert parse(b"data: " + raw + b"\n\n") == [SSEEvent(None, raw.decode())]


def test_utf8_split_across_chunks():
    body = "data: héllo ☃\n\n".encode()
    assert [parse(body[:i], body[i:]) for i in range(len(body))] == [[SSEEvent(None, "héllo ☃")]] * len(body)


def test_cr_held_back_until_next_chunk():
    assert parse(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [SSEEvent(None, "a"), SSEEvent(None, "b")]


def test_unterminated_event_at_eof_is_yielded_for_the_adapter_to_judge():
    assert parse(b"data: 1\n\ndata: {\"trunc") == [SSEEvent(None, "1"), SSEEvent(None, '{"trunc')]
    assert parse(b"data: 1\r") == [SSEEvent(None, "1")]


def test_bom_at_start_is_ignored():
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent(None, "x")]


def test_every_split_of_real_streams_gives_the_same_events():
    rng = random.Random(7)
    for name in ("ANTHROPIC_BASIC_STREAM", "OPENAI_BASIC_STREAM", "OPENROUTER_STREAM", "GEMINI_SSE_STREAM"):
        body = NAMED[name]
        whole = parse(body)
        assert whole and all(e.data for e in whole)
        for _ in range(50):
            cuts = sorted(rng.sample(range(1, len(body)), 5))
            pieces = [body[a:b] for a, b in zip([0] + cuts, cuts + [len(body)], strict=False)]
            assert parse(*pieces) == whole, name
        assert parse(*(body[i : i + 1] for i in range(len(body)))) == whole


def test_empty_chunks_are_harmless():
    assert parse(b"", b"data: x", b"", b"\n", b"", b"\n") == [SSEEvent(None, "x")]


# --- the exact delta fast path (anvil.providers.fastpath) ---------------------------

from anvil.providers.fastpath import DeltaTemplate  # noqa: E402

HEAD = 'data: {"id":"x","choices":[{"index":0,"delta":{"content":'
TAIL = '},"finish_reason":null}]}'


def test_template_matches_only_the_learned_shape():
    t = DeltaTemplate('"content":"')
    assert t.match(HEAD + '"a"' + TAIL) is None  # nothing learned yet
    t.learn(HEAD + '"a"' + TAIL, "a")
    for raw, value in (('"b"', "b"), ('""', ""), ('"q\\"uote\\n\\u2028 \\\\"', 'q"uote\n\u2028 \\'),
                       ('"\\"content\\":\\"x"', '"content":"x'), ('"☃"', "☃")):
        assert t.match(HEAD + raw + TAIL) == value, raw
    for other in (HEAD + '"b"},"finish_reason":"stop"}]}',  # another suffix
                  HEAD + '"b","tool_calls":[]' + TAIL,  # a second key after the string
                  HEAD + 'null' + TAIL,
                  HEAD + '"unterminated' + TAIL,
                  'data: {"id":"y","choices":[{"index":0,"delta":{"content":"b"' + TAIL,
                  "event: x\n" + HEAD + '"b"' + TAIL):
        assert t.match(other) is None, other


def test_template_is_not_learned_from_an_ambiguous_or_different_value():
    t = DeltaTemplate('"content":"')
    t.learn('data: {"content":"a","x":{"content":"a"}}', "a")  # marker twice
    assert t.prefix is None
    t.learn(HEAD + '"a"' + TAIL, "b")  # the value at the marker is not the decoded text
    assert t.prefix is None


def test_adapter_output_is_identical_with_mixed_and_tricky_events(srv):
    import json as _json
    import random

    from anvil.providers.scripted.server import Reply
    from tests.providers_helpers import provider, request

    rng = random.Random(3)
    pieces = ["plain", "", ' "quoted" ', "back\\slash", "line\nbreak", "\u2028", "☃", '"content":"fake"', "\t"]
    chunks, expected_text = [], []
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta, finish=None):
        obj = dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
        chunks.append(f"data: {_json.dumps(obj, ensure_ascii=rng.random() < 0.5)}\n\n".encode())

    chunk({"role": "assistant", "content": ""})
    for i in range(400):
        if i == 150:
            chunk({"reasoning_content": "thinking"})
        if i == 250:
            chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": "f", "arguments": "{}"}}]})
        text = rng.choice(pieces)
        expected_text.append(text)
        chunk({"content": text})
    chunk({}, "tool_calls")
    chunks.append(b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":400}}\n\n')
    chunks.append(b"data: [DONE]\n\n")
    body = b"".join(chunks)
    for size in (7, 100, 4096, len(body)):
        srv.add(Reply.sse([body], chunk_size=size))
        result = provider("openai", srv, "/v1").chat(request())
        assert result.text == "".join(expected_text), size
        assert result.reasoning_text == "thinking"
        assert [c.id for c in result.tool_calls] == ["call_1"]


def test_anthropic_text_blocks_around_a_tool_block_keep_their_order(srv):
    from anvil.providers.scripted.server import Reply
    from tests.providers_helpers import provider, request

    def ev(name, obj):
        import json as _json

        return f"event: {name}\ndata: {_json.dumps(obj)}\n\n"

    body = ev("message_start", {"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 1}}})
    for index, words in ((0, ["a", "b", "c"]), (2, ["x", "y"])):
        body += ev("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": ""}})
        for w in words:
            body += ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": w}})
        if index == 0:
            body += ev("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "t1", "name": "f", "input": {}}})
            body += ev("content_block_delta", {"type": "content_block_delta", "index": 1,
                                               "delta": {"type": "input_json_delta", "partial_json": '{"k": 1}'}})
    body += ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                 "usage": {"output_tokens": 9}})
    body += ev("message_stop", {"type": "message_stop"})
    for size in (5, 64, len(body)):
        srv.add(Reply.sse([body.encode()], chunk_size=size))
        result = provider("anthropic", srv).chat(request())
        assert result.text == "abcxy"
        assert result.tool_calls[0].arguments == {"k": 1}
