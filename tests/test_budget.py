"""The run budget and per-stage caps: checked from the ledger before every call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anvil.errors import EXIT_BUDGET
from anvil.ledger import Ledger
from anvil.routing.budget import BudgetExceeded, BudgetGuard
from anvil.routing.walker import CallSite, Walker
from tests.walker_helpers import FakeProvider, err, ok, priced, request, settings

# each ok() call: 1000 in * $1/M + 100 out * $2/M = $0.0012, 1,100 tokens


def setup(tmp_path, guard_kw, script=None):
    led = Ledger(tmp_path / "l.db")
    guard = BudgetGuard(led, "run", **guard_kw)
    fake = FakeProvider("p", script or {"a": [ok()], "b": [ok()]})
    return Walker(settings(), ledger=led, provider_factory=lambda rm: fake, budget=guard,
                  sleep=lambda s: None), fake, led


def test_dollar_budget_stops_the_call_that_would_start_past_it(tmp_path):
    w, fake, led = setup(tmp_path, {"max_dollars": Decimal("0.003")})
    w.call([priced("a")], request(), CallSite("run", "build"))  # spent 0.0012
    w.call([priced("a")], request(), CallSite("run", "build"))  # spent 0.0024 (< 0.003: may start)
    w.call([priced("a")], request(), CallSite("run", "build"))  # started at 0.0024; ends at 0.0036
    with pytest.raises(BudgetExceeded) as info:
        w.call([priced("a")], request(), CallSite("run", "build"))
    e = info.value
    assert e.exit_code == EXIT_BUDGET == 5 and len(fake.calls) == 3
    assert "$0.0036" in e.message and "$0.0030" in e.message and "run run" in e.message
    assert e.spent == Decimal("0.0036")


def test_token_budget(tmp_path):
    w, fake, _ = setup(tmp_path, {"max_tokens": 2000})
    w.call([priced("a")], request(), CallSite("run", "plan"))  # 1,100 tokens
    w.call([priced("a")], request(), CallSite("run", "plan"))  # 2,200 tokens
    with pytest.raises(BudgetExceeded) as info:
        w.call([priced("a")], request(), CallSite("run", "plan"))
    assert "2,200 of its 2,000 tokens" in info.value.message


def test_budget_checked_between_retries_of_one_call(tmp_path):
    # the failed attempts cost money too (tokens billed before the error): the check before
    # the retry sees them and stops the walk
    from anvil.providers.types import Usage

    costly = err("server", usage=Usage(input_tokens=1_000_000, output_tokens=0))  # $1 each
    w, fake, _ = setup(tmp_path, {"max_dollars": Decimal("1.5")}, {"a": [costly]})
    with pytest.raises(BudgetExceeded):
        w.call([priced("a")], request(), CallSite("run", "build"))
    assert len(fake.calls) == 2  # $0 -> call, $1 -> call, $2 -> stop before the third


def test_stage_cap_only_limits_its_stage(tmp_path):
    w, fake, _ = setup(tmp_path, {"stage_caps": {"review": Decimal("0.001")}})
    w.call([priced("a")], request(), CallSite("run", "review"))  # review at $0.0012
    with pytest.raises(BudgetExceeded) as info:
        w.call([priced("a")], request(), CallSite("run", "review"))
    assert "stage review reached its max_dollars cap" in info.value.message
    w.call([priced("a")], request(), CallSite("run", "build"))  # other stages go on


def test_other_runs_spend_does_not_count(tmp_path):
    w, fake, led = setup(tmp_path, {"max_dollars": Decimal("0.001")})
    w.call([priced("a")], request(), CallSite("another-run", "build"))
    w.call([priced("a")], request(), CallSite("run", "build"))  # this run had spent $0


def test_unpriced_spend_is_named_not_counted_as_zero_dollars(tmp_path):
    from tests.walker_helpers import resolved

    w, fake, _ = setup(tmp_path, {"max_dollars": Decimal("0.001")}, {"a": [ok()], "mystery": [ok()]})
    w.call([resolved("mystery", kind="openai_compatible")], request(), CallSite("run", "build"))
    w.call([priced("a")], request(), CallSite("run", "build"))
    with pytest.raises(BudgetExceeded) as info:
        w.call([priced("a")], request(), CallSite("run", "build"))
    assert "1 attempt(s) of unknown price" in info.value.message


def test_from_config_reads_budget_and_stage_caps(tmp_path):
    from anvil.config.loader import load_config

    cfg = load_config(None, overrides={"budget.max_dollars": "0.50", "stages.review.max_dollars": "0.2"},
                      env={"ANVIL_HOME": str(tmp_path)})
    g = BudgetGuard.from_config(cfg, Ledger(tmp_path / "l.db"), "run")
    assert g.max_dollars == Decimal("0.50") and g.stage_caps == {"review": Decimal("0.2")}
