"""Per-call dollars: every number below is worked out by hand in the comments.

Prices are genai-prices' table at a fixed call time (the bundled snapshot, never fetched),
models.yaml overrides, provider-reported costs, free local models, and unknown ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from anvil.config.schema import ModelEntry, PriceOverride, ProviderEntry
from anvil.ledger import Ledger
from anvil.ledger.pricing import call_cost, genai_prices_version
from anvil.providers.types import Usage
from anvil.routing.walker import CallSite, Walker
from tests.walker_helpers import FakeProvider, ok, request, resolved, settings

AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def cost(kind: str, price_list: str | None, model_id: str, usage: Usage, served: str | None = None, **kw):
    provider = ProviderEntry(kind=kind, price_list=price_list)
    model = ModelEntry(id=model_id, provider="p", tier="cheap", **kw)
    return call_cost(model, provider, usage, served_model=served, at=AT)


def test_anthropic_with_cache_reads_and_writes():
    # Claude Sonnet 4.5: $3/M input, $0.30/M cache read, $3.75/M cache write, $15/M output.
    # anvil's input_tokens is the WHOLE input: 12,000 = 2,000 uncached + 8,000 read + 2,000 written.
    #   2,000 * 3    =  6,000
    #   8,000 * 0.30 =  2,400
    #   2,000 * 3.75 =  7,500
    #     700 * 15   = 10,500
    #   total 26,400 micro-dollars per million -> $0.0264
    # (billing the cached tokens twice, as input too, would give 0.0264 + 10,000*3/1e6 = $0.0564)
    u = Usage(input_tokens=12_000, cache_read_tokens=8_000, cache_write_tokens=2_000, output_tokens=700)
    c = cost("anthropic", "anthropic", "claude-sonnet-4-5", u, served="claude-sonnet-4-5-20250929")
    assert c.source == "table" and c.dollars == Decimal("0.0264")
    assert c.prices_version == genai_prices_version()


def test_openai_with_cached_input():
    # gpt-4o-2024-08-06: $2.50/M input, $1.25/M cached input, $10/M output.
    #   5,000 input of which 3,072 cached: 1,928 * 2.5 = 4,820; 3,072 * 1.25 = 3,840
    #   400 output * 10 = 4,000
    #   12,660 / 1e6 = $0.01266
    u = Usage(input_tokens=5_000, cache_read_tokens=3_072, output_tokens=400)
    c = cost("openai", "openai", "gpt-4o", u, served="gpt-4o-2024-08-06")
    assert c.source == "table" and c.dollars == Decimal("0.01266")


def test_gemini_over_its_long_context_threshold():
    # gemini-2.5-pro: over 200k input tokens the whole call is billed at the long-context tier:
    # $2.50/M input (not 1.25), $0.25/M cached (not 0.125), $15/M output (not 10).
    #   250,000 input, 50,000 cached: 200,000 * 2.5 = 500,000; 50,000 * 0.25 = 12,500
    #   2,000 output * 15 = 30,000
    #   542,500 / 1e6 = $0.5425
    u = Usage(input_tokens=250_000, cache_read_tokens=50_000, output_tokens=2_000)
    c = cost("gemini", None, "gemini-2.5-pro", u)  # kind gemini -> genai-prices "google"
    assert c.source == "table" and c.dollars == Decimal("0.5425")
    # ... and under the threshold, the base tier: 100,000 * 1.25 + 1,000 * 10 = 135,000 -> $0.135
    c2 = cost("gemini", "google", "gemini-2.5-pro", Usage(input_tokens=100_000, output_tokens=1_000))
    assert c2.dollars == Decimal("0.135")


def test_openrouter_reported_cost_wins():
    provider = ProviderEntry(kind="openrouter", price_list="openrouter")
    model = ModelEntry(id="anthropic/claude-sonnet-4.5", provider="or", tier="premium")
    c = call_cost(model, provider, Usage(input_tokens=10, output_tokens=2),
                  provider_cost=Decimal("0.00012345"), at=AT)
    assert c.source == "provider" and c.dollars == Decimal("0.00012345") and c.prices_version is None


def test_unknown_model_is_unpriced_never_zero():
    c = cost("openai_compatible", None, "mystery-model-7b", Usage(input_tokens=1000, output_tokens=100))
    assert c.source == "unpriced" and c.dollars is None


def test_override_prices_cache_parts_at_their_own_price():
    # $2/M input, $0.5/M cache read, $4/M cache write (own prices), $8/M output:
    #   1,000 input = 600 uncached + 300 read + 100 written:
    #   600*2 = 1,200; 300*0.5 = 150; 100*4 = 400; 50 output * 8 = 400 -> 2,150 / 1e6 = $0.00215
    price = PriceOverride(input=Decimal(2), output=Decimal(8), cache_read=Decimal("0.5"), cache_write=Decimal(4))
    u = Usage(input_tokens=1_000, cache_read_tokens=300, cache_write_tokens=100, output_tokens=50)
    c = cost("openai", "openai", "gpt-4o", u, price=price)
    assert c.source == "override" and c.dollars == Decimal("0.00215")


def test_local_models_are_free():
    c = cost("ollama", None, "qwen2.5-coder:7b", Usage(input_tokens=9000, output_tokens=900))
    assert c.source == "free" and c.dollars == Decimal(0)


def test_walker_writes_the_priced_row(tmp_path):
    # Through the walker: the row keeps exact decimal text, the served id and the table version.
    fake = FakeProvider("p", {"gpt-4o": [ok(model="gpt-4o-2024-08-06", inp=1_000_000, out=0)]})
    ledger = Ledger(tmp_path / "l.db")
    w = Walker(settings(), ledger=ledger, provider_factory=lambda rm: fake)
    res = w.call([resolved("gpt-4o", kind="openai", price_list="openai")], request(), CallSite("r", "plan"))
    # 1,000,000 input * $2.50/M = $2.5
    assert res.dollars == Decimal("2.5") and res.cost_source == "table"
    (row,) = ledger.attempts("r")
    assert row["dollars"] == "2.5" and row["cost_source"] == "table"
    assert row["prices_version"] == genai_prices_version() and row["served_model"] == "gpt-4o-2024-08-06"
    assert ledger.spend("r").dollars == Decimal("2.5")


def test_a_provider_without_a_price_list_is_unpriced_never_another_vendors_rate():
    # Cerebras serving gpt-oss-120b through `openai_compatible`: genai-prices matches provider ids by
    # substring ("openai_compatible" contains "openai") and would bill OpenAI's rate. Unknown, with why.
    u = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    c = cost("openai_compatible", None, "gpt-oss-120b", u)
    assert (c.dollars, c.source) == (None, "unpriced")
    assert "no price list for provider kind 'openai_compatible'" in c.note and "price_list" in c.note
    # the vendor the user names prices it: Cerebras lists $0.35/M in + $0.75/M out
    named = cost("openai_compatible", "cerebras", "gpt-oss-120b", u)
    assert (named.source, named.dollars) == ("table", Decimal("1.10"))
    bogus = cost("openai_compatible", "no-such-vendor", "gpt-oss-120b", u)
    assert bogus.source == "unpriced" and "not a genai-prices provider id" in bogus.note


def test_unpriced_reason_reaches_the_ledger_and_cost_report(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.setenv("ANVIL_HOME", str(tmp_path))
    rm = resolved("gpt-oss-120b", "cerebras-compat", kind="openai_compatible")
    with Ledger(tmp_path / "ledger.db") as led:
        w = Walker(settings(), ledger=led, provider_factory=lambda _: FakeProvider("c", {"gpt-oss-120b": [ok()]}))
        w.call([rm], request(), CallSite("r-unpriced", "build"))
        row = led.attempts("r-unpriced")[0]
    assert row["dollars"] is None and row["cost_source"] == "unpriced"
    assert "no price list" in row["cost_note"]
    anvil = str(Path(sys.executable).with_name("anvil"))
    r = subprocess.run([anvil, "cost", "report", "--all", "--json"], capture_output=True, text=True,
                       cwd=tmp_path, env={**__import__("os").environ, "ANVIL_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    reasons = json.loads(r.stdout)["unpriced_reasons"]
    assert any("no price list for provider kind 'openai_compatible'" in k for k in reasons)
    table = subprocess.run([anvil, "cost", "report", "--all"], capture_output=True, text=True, cwd=tmp_path,
                           env={**__import__("os").environ, "ANVIL_HOME": str(tmp_path), "COLUMNS": "200"})
    assert "unpriced (1): no price list for provider kind 'openai_compatible'" in table.stdout
