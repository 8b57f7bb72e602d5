"""The chain-walker's rules (DESIGN.md 6), one test each, with a fake clock, sleep and random."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from anvil.errors import EXIT_CHAIN_EXHAUSTED
from anvil.ledger import Ledger
from anvil.providers.types import TextDelta, Usage
from anvil.routing.burns import BurnList
from anvil.routing.walker import AttemptReset, CallSite, ChainExhausted, RequestRejected, Walker
from tests.walker_helpers import Clock, FakeProvider, err, ok, priced, request, resolved, settings

SITE = CallSite(run_id="run-1", stage="build", repo="/repo")


def make(script: dict[str, list[Any]], tmp_path, *, rand: float = 0.0, burns: BurnList | None = None,
         **kw: Any) -> tuple[Walker, FakeProvider, Clock, Ledger]:
    clock = Clock()
    fake = FakeProvider("p", script)
    ledger = Ledger(tmp_path / "ledger.db")
    s = settings(**kw)
    w = Walker(s, ledger=ledger, provider_factory=lambda rm: fake, clock=clock.time, sleep=clock.sleep,
               rand=lambda: rand, timer=clock.time,
               burns=burns if burns is not None else BurnList(expiry=s.burn_expiry, clock=clock.time))
    return w, fake, clock, ledger


def rows(ledger: Ledger) -> list[dict]:
    return ledger.attempts("run-1")


def test_first_model_answers_one_row(tmp_path):
    w, fake, clock, ledger = make({"a": [ok("hi", model="a-2026")]}, tmp_path)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    assert res.result.text == "hi" and res.model.id == "a"
    assert fake.calls == ["a"]
    # 1000 in * $1/M + 100 out * $2/M = 0.001 + 0.0002 = 0.0012
    assert res.dollars == Decimal("0.0012") and res.cost_source == "override"
    (row,) = rows(ledger)
    assert row["outcome"] == "ok" and row["served_model"] == "a-2026" and row["dollars"] == "0.0012"
    assert row["stage"] == "build" and row["repo"] == "/repo" and row["attempt"] == 1 and row["chain_pos"] == 0


def test_short_rate_limit_waits_retry_after_and_retries_same_model(tmp_path):
    w, fake, clock, ledger = make({"a": [err("rate_limit", status=429, retry_after=3), ok()]}, tmp_path)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    assert res.model.id == "a" and fake.calls == ["a", "a"]
    assert clock.sleeps == [3]
    assert [r["outcome"] for r in rows(ledger)] == ["error", "ok"]
    assert rows(ledger)[0]["error_kind"] == "rate_limit" and rows(ledger)[0]["http_status"] == 429
    assert len(w.burns) == 0


def test_long_rate_limit_burns_model_and_moves_on_without_waiting(tmp_path):
    w, fake, clock, ledger = make({"a": [err("rate_limit", status=429, retry_after=3600)], "b": [ok()]},
                                  tmp_path, rate_limit_wait_cap=20)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    assert res.model.id == "b" and fake.calls == ["a", "b"] and clock.sleeps == []
    burn = w.burns.burned("a", "p1")
    assert burn is not None and burn.scope == "model" and "3600" in burn.reason
    assert "burned model" in res.attempts[0].next
    # burned for the rest of the run: the next call skips it without a request
    res2 = w.call([priced("a"), priced("b")], request(), SITE)
    assert fake.calls == ["a", "b", "b"] and res2.attempts[0].outcome == "skipped"


def test_rate_limit_again_after_the_retries_burns(tmp_path):
    w, fake, clock, _ = make({"a": [err("rate_limit", retry_after=1)], "b": [ok()]}, tmp_path,
                             rate_limit_retries=2)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    assert fake.calls == ["a", "a", "a", "b"] and clock.sleeps == [1, 1]
    assert w.burns.burned("a", "p1") is not None and res.model.id == "b"


def test_rate_limit_without_retry_after_backs_off(tmp_path):
    w, fake, clock, _ = make({"a": [err("rate_limit"), ok()]}, tmp_path, backoff_base=0.5, rand=0.0)
    w.call([priced("a")], request(), SITE)
    assert clock.sleeps == [0.5]


@pytest.mark.parametrize("kind", ["overloaded", "server", "timeout", "connection", "stream_broken"])
def test_transient_backoff_with_jitter_then_next_model_not_burned(tmp_path, kind):
    w, fake, clock, ledger = make({"a": [err(kind, status=529)], "b": [ok()]}, tmp_path,
                                  transient_retries=2, backoff_base=0.5, backoff_max=8, rand=1.0)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    # min(0.5*2**n, 8) * (1 - 0.25*1.0): n=0 -> 0.375, n=1 -> 0.75
    assert clock.sleeps == [0.375, 0.75]
    assert fake.calls == ["a", "a", "a", "b"] and res.model.id == "b"
    assert w.burns.burned("a", "p1") is None
    assert [r["error_kind"] for r in rows(ledger)] == [kind, kind, kind, None]


def test_backoff_is_capped_at_backoff_max(tmp_path):
    w, *_ = make({}, tmp_path, backoff_base=0.5, backoff_max=8, rand=0.5)
    # n=10: min(0.5*1024, 8) = 8; jitter 1 - 0.25*0.5 = 0.875 -> 7.0
    assert w.backoff(10) == pytest.approx(7.0)
    assert w.backoff(0) == pytest.approx(0.4375)


def test_transient_recovers_on_retry(tmp_path):
    w, fake, clock, _ = make({"a": [err("server", status=503), ok("fine")]}, tmp_path, rand=0.0)
    res = w.call([priced("a"), priced("b")], request(), SITE)
    assert res.result.text == "fine" and fake.calls == ["a", "a"] and clock.sleeps == [0.5]


@pytest.mark.parametrize("kind", ["quota", "auth"])
def test_quota_and_auth_burn_the_whole_provider_never_retried(tmp_path, kind):
    chain = [priced("a", "acme"), priced("a2", "acme"), priced("b", "other")]
    w, fake, clock, ledger = make({"a": [err(kind, status=429)], "b": [ok()]}, tmp_path)
    res = w.call(chain, request(), SITE)
    assert fake.calls == ["a", "b"] and clock.sleeps == []
    assert res.model.id == "b"
    assert res.attempts[1].outcome == "skipped" and res.attempts[1].model == "a2"
    burn = w.burns.burned("a2", "acme")
    assert burn is not None and burn.scope == "provider" and burn.target == "acme"
    assert len(rows(ledger)) == 2  # skipped models cost no call and no row


def test_model_not_found_burns_only_that_model(tmp_path):
    chain = [priced("a", "acme"), priced("a2", "acme")]
    w, fake, *_ = make({"a": [err("model_not_found", status=404)], "a2": [ok()]}, tmp_path)
    res = w.call(chain, request(), SITE)
    assert fake.calls == ["a", "a2"] and res.model.id == "a2"
    assert w.burns.burned("a", "acme").scope == "model" and w.burns.burned("a2", "acme") is None


def test_context_overflow_skips_to_a_larger_window(tmp_path):
    chain = [priced("small", window=8000), priced("same", window=8000), priced("smaller", window=4000),
             priced("big", window=200_000)]
    w, fake, clock, _ = make({"small": [err("context_overflow", status=400)], "big": [ok()]}, tmp_path)
    res = w.call(chain, request(), SITE)
    assert fake.calls == ["small", "big"] and res.model.id == "big" and clock.sleeps == []
    assert [a.outcome for a in res.attempts] == ["error", "skipped", "skipped", "ok"]
    assert len(w.burns) == 0  # the small model is fine for smaller prompts


@pytest.mark.parametrize("kind", ["invalid_request", "content_policy"])
def test_invalid_request_and_content_policy_stop_without_trying_others(tmp_path, kind):
    w, fake, clock, ledger = make({"a": [err(kind, status=400, message="bad tool schema")], "b": [ok()]}, tmp_path)
    with pytest.raises(RequestRejected) as info:
        w.call([priced("a"), priced("b")], request(), SITE)
    assert fake.calls == ["a"] and clock.sleeps == []
    assert kind in info.value.message and "bad tool schema" in info.value.message
    assert len(rows(ledger)) == 1


def test_exhausted_chain_is_one_error_listing_every_attempt(tmp_path):
    chain = [priced("a", "acme"), priced("b", "bee"), priced("c", "sea")]
    w, fake, clock, ledger = make({"a": [err("quota", status=429, message="insufficient_quota")],
                                   "b": [err("rate_limit", status=429, retry_after=999)],
                                   "c": [err("server", status=500, message="kaput")]},
                                  tmp_path, transient_retries=1)
    with pytest.raises(ChainExhausted) as info:
        w.call(chain, request(), SITE)
    e = info.value
    assert e.exit_code == EXIT_CHAIN_EXHAUSTED == 3
    assert [(a.model, a.kind) for a in e.attempts] == [("a", "quota"), ("b", "rate_limit"), ("c", "server"),
                                                      ("c", "server")]
    text = e.message
    for needle in ("acme", "bee", "sea", "quota HTTP 429: insufficient_quota", "rate_limit HTTP 429",
                   "server HTTP 500: kaput", "burned every model of provider acme", "burned model",
                   "backed off", "gave up after 1 retries"):
        assert needle in text, needle
    assert len(rows(ledger)) == 4


def test_empty_or_all_burned_chain_is_exhausted(tmp_path):
    w, fake, *_ = make({}, tmp_path)
    w.burns.burn_provider("p1", "quota: test")
    with pytest.raises(ChainExhausted) as info:
        w.call([priced("a")], request(), SITE)
    assert fake.calls == [] and "skipped" in info.value.message and "quota: test" in info.value.message


def test_failed_attempt_output_is_reset_never_mixed(tmp_path):
    w, fake, *_ = make({"a": [err("stream_broken")], "b": [ok("clean")]}, tmp_path, transient_retries=0)
    events: list[Any] = []
    res = w.call([priced("a"), priced("b")], request(), SITE, on_event=events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta", "TextDelta", "AttemptReset", "TextDelta", "TextDelta"]
    reset = events[2]
    assert isinstance(reset, AttemptReset) and reset.model == "a" and "stream_broken" in reset.reason
    # a display that clears on reset shows only the winning attempt's deltas
    shown: list[str] = []
    for e in events:
        if isinstance(e, AttemptReset):
            shown.clear()
        elif isinstance(e, TextDelta):
            shown.append(e.text)
    assert shown == ["par", "tial"] and res.result.text == "clean"


def test_failed_attempt_tokens_are_recorded(tmp_path):
    w, *_, ledger = make({"a": [err("stream_broken", usage=Usage(input_tokens=500, output_tokens=7))],
                          "b": [ok()]}, tmp_path, transient_retries=0)
    w.call([priced("a"), priced("b")], request(), SITE)
    first = rows(ledger)[0]
    # 500 * $1/M + 7 * $2/M = 0.0005 + 0.000014 = 0.000514
    assert first["outcome"] == "error" and first["input_tokens"] == 500 and first["dollars"] == "0.000514"


def test_budget_checked_before_every_attempt(tmp_path):
    checks: list[str] = []

    class Budget:
        def check(self, stage: str) -> None:
            checks.append(stage)

    w, fake, *_ = make({"a": [err("server"), err("server"), ok()]}, tmp_path, transient_retries=2)
    w.budget = Budget()
    w.call([priced("a")], request(), SITE)
    assert checks == ["build"] * 3 == ["build"] * len(fake.calls)


def test_request_carries_the_models_wire_name_and_window(tmp_path):
    seen: list[Any] = []
    fake = FakeProvider("p", {"wire-name": [ok()]})
    orig = fake.chat
    fake.chat = lambda req, on_event=None: (seen.append(req), orig(req, on_event))[1]  # type: ignore[method-assign]
    w = Walker(settings(), ledger=None, provider_factory=lambda rm: fake)
    w.call([resolved("cat-id", name="wire-name", window=32_000, price=None)], request(), SITE)
    assert seen[0].model == "wire-name" and seen[0].context_window == 32_000


def test_burns_round_trip_through_json_and_expire(tmp_path):
    clock = Clock()
    burns = BurnList(expiry=3600, clock=clock.time)
    burns.burn_model("a", "rate_limit: retry-after 3600s over the 20s cap")
    burns.burn_provider("acme", "quota: insufficient_quota")
    data = json.loads(json.dumps(burns.to_json()))
    restored = BurnList.from_json(data, expiry=3600, clock=clock.time)
    assert restored.burned("a", "x").scope == "model"
    assert restored.burned("zzz", "acme").scope == "provider"
    assert restored.burned("b", "x") is None
    clock.now += 3599
    assert len(restored) == 2
    clock.now += 1  # an hour old: expired, tried again (a rate limit or daily quota clears)
    assert restored.burned("a", "x") is None and restored.burned("zzz", "acme") is None
    assert restored.to_json() == []


def test_restored_burns_skip_models_on_resume(tmp_path):
    clock = Clock()
    old = BurnList(clock=clock.time)
    old.burn_provider("acme", "quota")
    restored = BurnList.from_json(old.to_json(), clock=clock.time)
    w, fake, *_ = make({"b": [ok()]}, tmp_path, burns=restored)
    res = w.call([priced("a", "acme"), priced("b", "bee")], request(), SITE)
    assert fake.calls == ["b"] and res.attempts[0].outcome == "skipped"


def test_missing_key_while_building_provider_burns_it_and_moves_on(tmp_path):
    from anvil.errors import UserError

    fake = FakeProvider("p", {"b": [ok()]})

    def factory(rm):
        if rm.provider_name == "nokey":
            raise UserError("no key for provider nokey: ACME_API_KEY is not set")
        return fake

    w = Walker(settings(), ledger=None, provider_factory=factory)
    res = w.call([priced("a", "nokey"), priced("b", "bee")], request(), SITE)
    assert res.model.id == "b" and "ACME_API_KEY" in res.attempts[0].message


def test_interrupt_mid_call_still_writes_its_row(tmp_path):
    w, fake, *_, ledger = make({"a": [KeyboardInterrupt()]}, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        w.call([priced("a")], request(), SITE)
    (row,) = rows(ledger)
    assert row["outcome"] == "error" and row["error_kind"] == "interrupted"


def test_answer_without_usage_is_unpriced_not_zero(tmp_path):
    from anvil.providers.types import ChatResult

    bare = ChatResult(text="hi", finish_reason="stop", usage=Usage(), served_model="a")
    w, fake, clock, ledger = make({"a": [bare]}, tmp_path)
    res = w.call([priced("a")], request(), SITE)
    assert res.dollars is None and res.cost_source == "unpriced"
    assert rows(ledger)[0]["dollars"] is None
    assert ledger.spend("run-1").unpriced == 1


def test_retry_after_exactly_at_the_cap_is_waited(tmp_path):
    w, fake, clock, _ = make({"a": [err("rate_limit", retry_after=20), ok()]}, tmp_path, rate_limit_wait_cap=20)
    w.call([priced("a")], request(), SITE)
    assert clock.sleeps == [20] and fake.calls == ["a", "a"]
    w2, fake2, clock2, _ = make({"a": [err("rate_limit", retry_after=20.5)], "b": [ok()]}, tmp_path / "2",
                                rate_limit_wait_cap=20)
    w2.call([priced("a"), priced("b")], request(), SITE)
    assert clock2.sleeps == [] and fake2.calls == ["a", "b"]


def test_overloaded_with_a_short_retry_after_waits_that_long(tmp_path):
    w, fake, clock, _ = make({"a": [err("overloaded", status=529, retry_after=3), ok()]}, tmp_path)
    w.call([priced("a")], request(), SITE)
    assert clock.sleeps == [3]
