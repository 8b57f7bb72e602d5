"""Walker rules end to end: real adapters against the scripted vendor server over loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anvil.config.schema import PriceOverride
from anvil.ledger import Ledger
from anvil.providers import make_provider
from anvil.providers.scripted.model import ScriptedFailure, ScriptedModel
from anvil.providers.scripted.server import Match, ScriptedServer
from anvil.providers.types import ProviderSettings
from anvil.routing.burns import BurnList
from anvil.routing.walker import CallSite, ChainExhausted, RequestRejected, Walker
from tests.walker_helpers import Clock, request, resolved, settings

PRICE = PriceOverride(input=Decimal(1), output=Decimal(2))
# kind -> the path prefix its adapter expects in base_url
KINDS = {"anthropic": "", "openai": "/v1", "gemini": "", "ollama": "", "openrouter": "/api/v1"}


@pytest.fixture
def srv():
    with ScriptedServer(time_scale=0.01) as server:
        yield server


def walker(srv, tmp_path, clock, **kw):
    def factory(rm):
        return make_provider(ProviderSettings(name=rm.provider_name, kind=rm.provider.kind,
                                              base_url=srv.url + KINDS[rm.provider.kind], api_key="sk-test"))
    led = Ledger(tmp_path / "ledger.db")
    s = settings(**kw)
    return Walker(s, ledger=led, provider_factory=factory, clock=clock.time, sleep=clock.sleep,
                  rand=lambda: 0.0, timer=clock.time, burns=BurnList(clock=clock.time)), led


@pytest.mark.parametrize("kind", list(KINDS))
def test_long_retry_after_burns_and_quota_burns_provider(srv, tmp_path, kind):
    clock = Clock()
    limited = ScriptedModel("never", failures=[ScriptedFailure("rate_limit", retry_after=3600)])
    broke = ScriptedModel("never", failures=[ScriptedFailure("quota", times=5)])
    good = ScriptedModel("the answer", usage={"input_tokens": 1000, "output_tokens": 10})
    srv.add_responder(limited, match=Match(model="m-limited"))
    srv.add_responder(broke, match=Match(model="m-broke"))
    srv.add_responder(good, match=Match(model="m-good"))
    chain = [resolved("m-limited", "p-limited", kind=kind, price=PRICE),
             resolved("m-broke", "p-broke", kind=kind, price=PRICE),
             resolved("m-broke-2", "p-broke", kind=kind, price=PRICE),
             resolved("m-good", "p-good", kind=kind, price=PRICE)]
    w, led = walker(srv, tmp_path, clock)
    res = w.call(chain, request(), CallSite("run", "plan"))
    assert res.result.text == "the answer" and res.model.id == "m-good"
    assert clock.sleeps == []  # a 3600 s retry-after is not waited, quota is never retried
    assert len(limited.requests) == 1 and len(broke.requests) == 1
    assert [(a.model, a.outcome, a.kind) for a in res.attempts] == [
        ("m-limited", "error", "rate_limit"), ("m-broke", "error", "quota"),
        ("m-broke-2", "skipped", None), ("m-good", "ok", None)]
    rows = led.attempts("run")
    assert [(r["model"], r["error_kind"]) for r in rows] == [
        ("m-limited", "rate_limit"), ("m-broke", "quota"), ("m-good", None)]
    # 1000 * $1/M + 10 * $2/M = 0.001 + 0.00002
    assert rows[-1]["dollars"] == "0.00102"


@pytest.mark.parametrize("kind", ["anthropic", "openai", "gemini"])
def test_short_rate_limit_then_answer_same_model(srv, tmp_path, kind):
    clock = Clock()
    model = ScriptedModel("after the wait", failures=[ScriptedFailure("rate_limit", retry_after=2)])
    srv.add_responder(model, match=Match(model="m"))
    w, led = walker(srv, tmp_path, clock)
    res = w.call([resolved("m", "p", kind=kind, price=PRICE)], request(), CallSite("run", "plan"))
    assert res.result.text == "after the wait" and clock.sleeps == [2] and len(model.requests) == 2


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_overloaded_backs_off_then_next_model(srv, tmp_path, kind):
    clock = Clock()
    busy = ScriptedModel("never", failures=[ScriptedFailure("overloaded", times=9)])
    srv.add_responder(busy, match=Match(model="busy"))
    srv.add_responder(ScriptedModel("calm"), match=Match(model="calm"))
    w, led = walker(srv, tmp_path, clock, transient_retries=2)
    res = w.call([resolved("busy", "p1", kind=kind, price=PRICE), resolved("calm", "p2", kind=kind, price=PRICE)],
                 request(), CallSite("run", "plan"))
    assert res.result.text == "calm" and len(busy.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_broken_stream_resets_and_next_model_answers_clean(srv, tmp_path, kind):
    clock = Clock()
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("stream_cut")]), match=Match(model="cut"))
    srv.add_responder(ScriptedModel("whole answer"), match=Match(model="ok"))
    w, led = walker(srv, tmp_path, clock, transient_retries=0)
    events = []
    res = w.call([resolved("cut", "p1", kind=kind, price=PRICE), resolved("ok", "p2", kind=kind, price=PRICE)],
                 request(), CallSite("run", "plan"), on_event=events.append)
    names = [type(e).__name__ for e in events]
    assert "AttemptReset" in names
    after = events[names.index("AttemptReset") + 1:]
    assert "".join(e.text for e in after if type(e).__name__ == "TextDelta") == "whole answer"
    assert res.result.text == "whole answer"
    assert led.attempts("run")[0]["error_kind"] == "stream_broken"


def test_invalid_request_stops(srv, tmp_path):
    clock = Clock()
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("invalid_request")]), match=Match(model="a"))
    other = ScriptedModel("never")
    srv.add_responder(other, match=Match(model="b"))
    w, _ = walker(srv, tmp_path, clock)
    with pytest.raises(RequestRejected):
        w.call([resolved("a", "p1", kind="openai"), resolved("b", "p2", kind="openai")], request(),
               CallSite("run", "plan"))
    assert other.requests == []


def test_context_overflow_moves_to_bigger_window(srv, tmp_path):
    clock = Clock()
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("context_overflow")]), match=Match(model="small"))
    srv.add_responder(ScriptedModel("big enough"), match=Match(model="big"))
    w, _ = walker(srv, tmp_path, clock)
    res = w.call([resolved("small", "p1", kind="anthropic", window=8000),
                  resolved("mid", "p2", kind="anthropic", window=8000),
                  resolved("big", "p3", kind="anthropic", window=200_000)], request(), CallSite("run", "plan"))
    assert res.result.text == "big enough" and [a.outcome for a in res.attempts] == ["error", "skipped", "ok"]


def test_exhausted_names_provider_model_status(srv, tmp_path):
    clock = Clock()
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("auth", times=9)]), match=Match(model="a"))
    w, _ = walker(srv, tmp_path, clock)
    with pytest.raises(ChainExhausted) as info:
        w.call([resolved("a", "acme", kind="openai")], request(), CallSite("run", "plan"))
    msg = info.value.message
    assert "a (acme): auth HTTP 401" in msg and "burned every model of provider acme" in msg
    assert "sk-test" not in msg
