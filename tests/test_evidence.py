"""Evidence-based routing (issue 18): outcomes, stats, the tuner, the forecast.

Units on a real SQLite ledger filled with simulated attempts of known success rates;
end to end through the real `anvil` binary on a scripted run.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from anvil.evidence import beta
from anvil.evidence.forecast import forecast, percentile
from anvil.evidence.stats import ModelStats, chain_cost, load
from anvil.evidence.tune import propose, render_diff, write_layer
from anvil.ledger.db import AttemptRow, Ledger, to_pico
from tests.e2e_helpers import start


def test_beta_cdf_and_interval_match_known_values() -> None:
    assert beta.cdf(0.5, 2, 3) == pytest.approx(0.6875, abs=1e-9)  # I_0.5(2,3) = 11/16
    assert beta.cdf(0.3, 1, 1) == pytest.approx(0.3, abs=1e-9)
    lo, hi = beta.interval(8, 10)
    assert 0.45 < lo < 0.55 and 0.9 < hi < 0.97  # Beta(9, 3): 95% interval ~ (0.48, 0.94)
    assert beta.prob_above(0.5, 9, 10) > 0.99 and beta.prob_above(0.5, 1, 10) < 0.01


def _fill(ledger: Ledger, rates: dict[str, float], dollars: dict[str, str], n: int, *, stage: str = "build",
          seed: int = 7) -> None:
    rng = random.Random(seed)
    for model, p in rates.items():
        for i in range(n):
            ok = rng.random() < p
            ledger.record_outcome(("2026-12-01T00:00:00.000000Z", f"sim-{model}-{i}", "r", stage, 1, model, int(ok),
                                   "" if ok else "tests failed", to_pico(Decimal(dollars[model])), 0, 1000, "", 0))


def test_tuner_recovers_the_cheapest_order_per_success(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    # nano fails most of the time: cheap per attempt, dear per success; mini is the best buy
    _fill(ledger, {"nano": 0.2, "mini": 0.9, "opus": 0.97}, {"nano": "0.003", "mini": "0.004", "opus": "0.05"}, 60)
    rows = load(ledger)
    prop = propose("build", ["nano", "mini", "opus"], rows, min_success=0.7, confidence=0.9, retries=2)
    assert prop.proposed == ["mini", "opus", "nano"]  # eligible cheapest-per-success first, the rest after
    assert prop.eligible == ["mini", "opus"]
    assert prop.proposed_cost is not None and prop.current_cost is not None
    assert prop.proposed_cost < prop.current_cost
    diff = render_diff([prop])
    assert "-    chain: [nano, mini, opus]" in diff and "+    chain: [mini, opus, nano]" in diff and "mini:" in diff


def test_thin_data_keeps_the_users_order_and_says_what_would_settle_it(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    _fill(ledger, {"nano": 0.8}, {"nano": "0.001"}, 3)
    prop = propose("build", ["opus", "nano"], load(ledger), min_success=0.7, confidence=0.9, retries=2)
    assert not prop.changed and "more attempt" in prop.note
    empty = propose("plan", ["opus"], load(ledger), min_success=0.7, confidence=0.9, retries=2)
    assert not empty.changed and "no attempts" in empty.note


def test_unpriced_attempts_never_price_a_success() -> None:
    s = ModelStats("build", "m", 10, 8, Decimal("0.1"), 2, 100)
    assert s.dollars_per_success is None and chain_cost([s], 2) is None


def test_write_layer_sets_the_chain_and_drops_prefer(tmp_path) -> None:
    path = tmp_path / "stage-policy.yaml"
    path.write_text("stages:\n  build:\n    prefer: [local, cheap]\n    retry_budget: 2\n")
    ledger = Ledger(tmp_path / "l.db")
    _fill(ledger, {"nano": 0.2, "mini": 0.9}, {"nano": "0.001", "mini": "0.004"}, 60)
    prop = propose("build", ["nano", "mini"], load(ledger), min_success=0.7, confidence=0.9, retries=2)
    assert write_layer(path, [prop]) == ["build"]
    text = path.read_text()
    assert "prefer" not in text and "retry_budget: 2" in text and "- mini" in text


def _run_rows(ledger: Ledger, run: str, rng: random.Random) -> None:
    for stage, mean in (("plan", 12_000), ("build", 20_000)):
        tokens = int(rng.lognormvariate(0, 0.4) * mean)
        ledger.record(AttemptRow(ts="2026-12-01T00:00:00.000000Z", run_id=run, repo="r", stage=stage, attempt=1,
                                 chain_pos=0, provider="p", provider_kind="openai", model="m", requested_model="m",
                                 served_model="m", outcome="ok", error_kind=None, http_status=200,
                                 error_message=None, input_tokens=tokens, cache_read_tokens=0, cache_write_tokens=0,
                                 output_tokens=0, reasoning_tokens=0, latency_s=1.0, ttft_s=0.1,
                                 dollars=Decimal(tokens) / 1_000_000, cost_source="table", prices_version=None,
                                 request_id=None))


def test_forecast_p90_covers_held_out_runs_at_about_its_rate(tmp_path) -> None:
    rng = random.Random(3)
    history = Ledger(tmp_path / "history.db")
    for i in range(200):
        _run_rows(history, f"run-{i}", rng)
    fc = forecast(history, "r", {})
    assert fc.source == "repo" and fc.runs == 200
    build = next(s for s in fc.stages if s.stage == "build")
    held = [int(rng.lognormvariate(0, 0.4) * 20_000) for _ in range(400)]
    covered = sum(t <= build.tokens_p90 for t in held) / len(held)
    assert 0.85 <= covered <= 0.95  # the 90th percentile covers ~90% of runs it never saw
    assert build.dollars_p50 is not None and build.dollars_p90 is not None and build.dollars_p50 < build.dollars_p90


def test_forecast_without_history_uses_priced_defaults(tmp_path) -> None:
    fc = forecast(None, None, {"build": (Decimal("1"), Decimal("5"))})
    build = next(s for s in fc.stages if s.stage == "build")
    assert build.source == "default" and build.dollars_p50 is not None and build.dollars_p50 > 0
    plan = next(s for s in fc.stages if s.stage == "plan")
    assert plan.dollars_p50 is None  # no price known for it: unpriced, never $0
    assert fc.total_dollars == (None, None)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9


@pytest.mark.e2e
def test_stats_tune_and_estimate_on_real_runs(tmp_path) -> None:
    e2e = start(tmp_path, ScriptedPipeline(example_answers(failing_first_build=True)))
    try:
        empty = e2e.anvil("policy", "stats")
        assert empty.code == 0 and "not enough data" in empty.stdout
        assert "not enough data" in e2e.anvil("policy", "tune").stdout
        e2e.init()
        before = len(e2e.server.requests)
        est = e2e.anvil("run", "anything", "--estimate", "--json")
        assert est.code == 0, est.stderr
        assert len(e2e.server.requests) == before  # a forecast calls no model
        assert json.loads(est.stdout)["forecast"]["source"] == "default"
        run_id = e2e.run_ok()["run_id"]
    finally:
        e2e.server.stop()
    stats = json.loads(e2e.anvil("policy", "stats", "--json").stdout)["models"]
    builds = {m["model"]: m for m in stats if m["stage"] == "build"}
    # the first build (local) failed its tests; the escalated one (cheap) passed
    assert builds["scripted-local"]["attempts"] == 1 and builds["scripted-local"]["successes"] == 0
    assert builds["scripted-cheap"]["successes"] == 1
    assert all(m["attempts"] >= 1 for m in stats) and {m["stage"] for m in stats} >= {"clarify", "plan", "ship"}
    tune = json.loads(e2e.anvil("policy", "tune", "--json").stdout)
    assert {p["stage"] for p in tune["stages"]} >= {"build", "plan"}
    assert all(not p["changed"] for p in tune["stages"])  # one run is thin evidence: orders kept
    assert run_id


def test_order_expected_cost_puts_the_cheapest_success_first() -> None:
    from anvil.config.loader import load_config
    from anvil.routing.resolver import resolve_stage

    config = load_config(None)
    base = [m.id for m in resolve_stage("build", config, {}).chain]
    assert len(base) >= 2
    last = base[-1]
    evidence = {last: ModelStats("build", last, 20, 19, Decimal("0.02"), 0, 1000),
                base[0]: ModelStats("build", base[0], 20, 4, Decimal("0.04"), 0, 1000)}
    assert [m.id for m in resolve_stage("build", config, {}, evidence=evidence).chain] == base  # price order: default
    config.policy.stages["build"] = config.policy.stage("build").model_copy(update={"order": "expected_cost"})
    res = resolve_stage("build", config, {}, evidence=evidence)
    assert [m.id for m in res.chain][:2] == [last, base[0]] and "expected cost" in res.routing
    thin = {last: ModelStats("build", last, 2, 2, Decimal("0.001"), 0, 10)}  # under MIN_EVIDENCE: no move
    assert [m.id for m in resolve_stage("build", config, {}, evidence=thin).chain] == base


def test_a_stage_past_its_usual_tokens_is_flagged_and_auto_stops_it(tmp_path) -> None:
    from anvil.routing.budget import BudgetExceeded, BudgetGuard, runaway_limits

    rng = random.Random(5)
    ledger = Ledger(tmp_path / "l.db")
    for i in range(10):
        _run_rows(ledger, f"run-{i}", rng)
    limits = runaway_limits(ledger, 3.0)
    assert 3 * 20_000 < limits["build"] < 3 * 60_000  # 3 x the 90th percentile of ~20k-token builds
    for _ in range(12):  # this run's build: far more than usual
        _run_rows(ledger, "now", random.Random(9))
    flagged: list[tuple[str, int, int]] = []
    guard = BudgetGuard(ledger, "now", runaway_tokens=limits, on_runaway=lambda *a: flagged.append(a))
    guard.check("build")
    guard.check("build")
    assert len(flagged) == 1 and flagged[0][0] == "build" and flagged[0][1] > flagged[0][2]
    with pytest.raises(BudgetExceeded, match="ran away"):
        BudgetGuard(ledger, "now", runaway_tokens=limits, stop_runaway=True).check("build")
