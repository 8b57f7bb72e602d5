"""The NDJSON reader (Ollama native streams): same line rules, typed error on a cut line."""

from __future__ import annotations

import pytest

from anvil.providers.ndjson import iter_ndjson
from anvil.providers.types import UpstreamError
from tests.wire_cases_helpers import NAMED


def test_ollama_stream_any_chunking():
    body = NAMED["OLLAMA_CHAT_STREAM"]
    whole = list(iter_ndjson([body]))
    assert len(whole) == 4 and whole[-1]["done"] is True
    assert list(iter_ndjson(body[i : i + 1] for i in range(len(body)))) == whole
    for i in range(0, len(body), 7):
        assert list(iter_ndjson([body[:i], body[i:]])) == whole


def test_crlf_cr_blank_lines_and_u2028():
    body = b'{"a":1}\r\n\r\n{"b":"x\xe2\x80\xa8y"}\r{"c":3}'
    assert list(iter_ndjson([body[:8], body[8:]])) == [{"a": 1}, {"b": "x\u2028y"}, {"c": 3}]


def test_final_partial_line_is_stream_broken():
    with pytest.raises(UpstreamError) as info:
        list(iter_ndjson([b'{"a":1}\n{"message":{"content":"Hel']))
    assert info.value.kind == "stream_broken"


def test_garbage_line_is_stream_broken_not_a_json_error():
    with pytest.raises(UpstreamError) as info:
        list(iter_ndjson([b"<html>oops</html>\n"]))
    assert info.value.kind == "stream_broken"
    assert "JSONDecodeError" not in str(info.value)
