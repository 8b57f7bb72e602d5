"""Shared HTTP helpers (retry-after, durations, redaction) and the error classification table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from anvil.providers.errors import classify, overflow_numbers, parse_error_body
from anvil.providers.http import parse_duration, rate_limit_headers, redact, redact_headers, retry_after_seconds
from anvil.providers.scripted.server import Reply
from tests.providers_helpers import KEY, failure, provider, request  # noqa: F401
from tests.wire_cases_helpers import CASES

NOW = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC).timestamp()


def test_retry_after_ms_wins_over_seconds():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "3"}) == 3.0


def test_retry_after_http_date_uses_the_injected_clock():
    when = format_datetime(datetime(2026, 1, 1, 0, 0, 17, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=lambda: NOW) == 17.0
    assert retry_after_seconds({"retry-after": when}, now=lambda: NOW + 60) == 0.0


@pytest.mark.parametrize("text,seconds", [("6m0s", 360.0), ("1.2s", 1.2), ("12ms", 0.012),
                                          ("1h2m3.5s", 3723.5), ("9m38.016s", 578.016)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", None, "2026-01-01T00:00:02Z", "6 minutes", "5"])
def test_parse_duration_rejects_non_durations(text):
    assert parse_duration(text) is None


def test_rate_limit_headers_picked_out():
    h = {"x-ratelimit-remaining-tokens": "0", "anthropic-ratelimit-requests-reset": "t", "content-type": "x"}
    assert rate_limit_headers(h) == {"x-ratelimit-remaining-tokens": "0", "anthropic-ratelimit-requests-reset": "t"}


def test_redact_removes_keys_and_credential_values():
    text = (f"key {KEY} | Authorization: Bearer abc.def-123 | x-api-key: sk-ant-api03-zzzzzzzzzzzzzzzzzz | "
            f"GET /v1beta/models/m:generateContent?alt=sse&key=AIzaSyFAKEFAKE | {{\"x-goog-api-key\": \"AIzaXYZ\"}} "
            f"| sk-proj-abcdefghijklmnopqrstuvwxyz")
    out = redact(text, (KEY,))
    for secret in (KEY, "abc.def-123", "sk-ant-api03-zzzz", "AIzaSyFAKEFAKE", "AIzaXYZ", "sk-proj-abcdefghijklmnop"):
        assert secret not in out, secret
    assert "alt=sse" in out and "[redacted]" in out


def test_recorded_headers_of_real_requests_carry_no_key(srv):
    srv.add(Reply.parse(CASES["C12"][0]), times=None)
    for kind, path in (("openai", "/v1"), ("anthropic", "")):
        failure(lambda kind=kind, path=path: provider(kind, srv, path).chat(request()))
    assert any(KEY in str(r.headers) for r in srv.requests)  # the server did get it ...
    for r in srv.requests:  # ... and what a run store would record does not
        recorded = redact_headers(r.headers, (KEY,))
        assert KEY not in str(recorded)
        assert recorded.get("authorization", "[redacted]") == "[redacted]"
        assert recorded.get("x-api-key", "[redacted]") == "[redacted]"
    assert redact_headers({"Content-Type": "x", "X-Note": f"k={KEY}"}, (KEY,)) == {
        "Content-Type": "x", "X-Note": "k=[redacted]"}


def test_key_echoed_by_the_server_never_reaches_the_error(srv):
    body = {"error": {"message": f"Incorrect API key provided: {KEY}. Header was Bearer {KEY}",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}
    srv.add(Reply.json(body, status=401), times=None)
    for kind, path in (("openai", "/v1"), ("anthropic", ""), ("openrouter", "/api/v1")):
        err = failure(lambda kind=kind, path=path: provider(kind, srv, path).chat(request()))
        assert err.kind == "auth"
        assert KEY not in str(err) and KEY not in err.message and KEY not in repr(err.args)


def test_key_never_in_connection_errors():
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings

    p = make_provider(ProviderSettings("x", "openai", base_url=f"http://127.0.0.1:9/{KEY}", api_key=KEY))
    err = failure(lambda: p.chat(request(timeout=2)))
    assert err.kind == "connection" and KEY not in str(err)


# --- classification ------------------------------------------------------------


def body_of(case: str, index: int = 0) -> tuple[int, str]:
    reply = Reply.parse(CASES[case][index])
    return reply.status, reply.body.decode()


@pytest.mark.parametrize("case,kind", [
    ("C07", "overloaded"), ("C08", "rate_limit"), ("C09", "quota"), ("C10", "context_overflow"),
    ("C11", "context_overflow"), ("C12", "auth"), ("C13", "invalid_request"), ("C18", "server"),
    ("C24", "rate_limit"), ("C26", "quota"), ("C27", "quota"), ("C28", "context_overflow"),
    ("C29", "context_overflow"), ("C30", "invalid_request"), ("C31", "auth"), ("C32", "model_not_found"),
    ("C33", "overloaded"), ("C42", "rate_limit"), ("C44", "context_overflow"), ("C45", "auth"),
    ("C46", "auth"), ("C47", "overloaded"), ("C54", "quota"), ("C55", "context_overflow"),
    ("C56", "context_overflow"), ("C59", "model_not_found"), ("C64", "context_overflow"),
    ("C65", "context_overflow"), ("C74", "invalid_request"),
])
def test_classify_every_error_case(case, kind):
    status, body = body_of(case)
    assert classify(status, parse_error_body(body)) == kind


def test_classify_gemini_daily_quota_and_groq_413():
    status, body = body_of("C42")
    daily = body.replace("PerMinute", "PerDay")
    assert classify(status, parse_error_body(daily)) == "quota"
    status, body = body_of("C67", 1)
    assert (status, classify(status, parse_error_body(body))) == (413, "quota")


@pytest.mark.parametrize(
    "body,kind",
    [
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "overloaded"),
        ({"type": "error", "error": {"type": "api_error", "message": "Internal"}}, "server"),
        ({"error": {"message": "x", "type": "server_error", "param": None, "code": None}}, "server"),
        (
            {
                "error": {
                    "code": 502,
                    "message": "Network connection lost.",
                    "metadata": {"error_type": "provider_unavailable"},
                }
            },
            "server",
        ),
        ({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}, "overloaded"),
        ({"error": {"code": "server_error", "message": "Provider disconnected unexpectedly"}}, "server"),
        ({"error": "an error was encountered while running the model"}, "server"),
    ],
)
def test_classify_errors_inside_a_200_stream(body, kind):
    assert classify(None, parse_error_body(json.dumps(body))) == kind


@pytest.mark.parametrize(
    "status,body,kind",
    [
        (402, '{"error":{"type":"billing_error","message":"Your credit balance is too low"}}', "quota"),
        (
            400,
            '{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}',  # noqa: E501
            "quota",
        ),
        (
            403,
            '{"error":{"code":403,"message":"Input was flagged","metadata":{"reasons":["violence"],"flagged_input":"..."}}}',  # noqa: E501
            "content_policy",
        ),
        (408, '{"error":{"code":408,"message":"Timed out"}}', "timeout"),
        (409, '{"error":{"message":"conflict"}}', "server"),
        (504, "<html><title>504 Gateway Time-out</title></html>", "server"),
        (422, '{"detail":"bad"}', "invalid_request"),
        (404, '{"error":"model \\"llama9:70b\\" not found, try pulling it first"}', "model_not_found"),
        (
            400,
            '{"error":{"message":"Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens"}}',  # noqa: E501
            "context_overflow",
        ),
        (200, '{"error":{"message":"fake upstream error","code":500}}', "server"),
        (
            413,
            '{"type":"error","error":{"type":"request_too_large","message":"Request too large: the body exceeds 32 MB"}}',  # noqa: E501
            "invalid_request",
        ),
        (
            400,
            '{"error":{"message":"You passed 40000 input tokens and requested 8000 output tokens. However, the model\'s context length is only 32768 tokens, resulting in a maximum input length of 24768 tokens.","type":"BadRequestError","param":"input_tokens","code":400}}',  # noqa: E501
            "context_overflow",
        ),
    ],
)
def test_classify_more_bodies(status, body, kind):
    assert classify(status, parse_error_body(body)) == kind


def test_parse_error_body_envelopes():
    assert parse_error_body("").message == "empty response body"
    html = parse_error_body("<html><head><title>520: Web server is returning an unknown error</title></head></html>")
    assert (html.is_json, html.message) == (False, "520: Web server is returning an unknown error")
    legacy = parse_error_body('{"object":"error","message":"m","type":"BadRequestError","param":null,"code":400}')
    assert (legacy.message, legacy.type, legacy.numeric_code) == ("m", "BadRequestError", 400)
    raw = parse_error_body(Reply.parse(CASES["C56"][0]).body)
    assert raw.raw and "prompt is too long" in raw.raw


def test_overflow_numbers():
    for case, expected in (("C10", (208310, 200000)), ("C28", (130517, 128000)), ("C44", (1200293, 1048576)),
                           ("C65", (1407, 256)), ("C29", (None, None)), ("C64", (41648, 32768))):
        assert overflow_numbers(parse_error_body(body_of(case)[1])) == expected, case


def test_overflow_numbers_vllm_new_wording():
    info = parse_error_body('{"error":{"message":"You passed 40000 input tokens and requested 8000 output tokens. '
                            'However, the model\'s context length is only 32768 tokens.","code":400}}')
    assert overflow_numbers(info) == (48000, 32768)
