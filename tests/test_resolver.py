"""The resolver: filtering (capability, complexity, context, provider) and ordering (tier, price, YAML order)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anvil.config.loader import load_config
from anvil.routing.availability import Availability
from anvil.routing.resolver import resolve_stage
from tests.foundation_helpers import git_repo, write

OK = Availability(True, "ok")

MODELS = """
providers:
  a: {kind: openai_compatible, base_url: "http://127.0.0.1:1/v1"}
  b: {kind: openai_compatible, base_url: "http://127.0.0.1:2/v1"}
  l: {kind: ollama, base_url: "http://127.0.0.1:3"}
models:
  - {id: prem-dear, provider: a, tier: premium, complexity_max: L, capabilities: [reasoning, code], price: {input: 10, output: 50}}
  - {id: prem-cheap, provider: b, tier: premium, complexity_max: L, capabilities: [reasoning, code], price: {input: 1, output: 5}}
  - {id: cheap-unpriced, provider: a, tier: cheap, complexity_max: M, capabilities: [reasoning, code]}
  - {id: cheap-one, provider: a, tier: cheap, complexity_max: M, capabilities: [reasoning, code], price: {input: 0.5, output: 1}}
  - {id: cheap-two, provider: b, tier: cheap, complexity_max: M, capabilities: [reasoning, code], price: {input: 0.5, output: 1}}
  - {id: cheap-small, provider: b, tier: cheap, complexity_max: M, capabilities: [reasoning, code], context_window: 4000, price: {input: 0.1, output: 0.1}}
  - {id: local-free, provider: l, tier: local, complexity_max: M, capabilities: [code]}
  - {id: local-priced, provider: l, tier: local, complexity_max: M, capabilities: [code], price: {input: 0.01, output: 0.01}}
  - {id: local-tiny, provider: l, tier: local, complexity_max: S, capabilities: [code]}
"""  # noqa: E501


@pytest.fixture
def config(tmp_path: Path):
    repo = git_repo(tmp_path / "r")
    # Replace the bundled catalogue: point every bundled model at a provider we control.
    write(repo / ".anvil/models.yaml", MODELS)
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          build: {prefer: [local, cheap, premium], capability: [code], complexity: M}
          plan: {prefer: [premium], capability: [reasoning], complexity: L}
          review: {chain: [prem-dear, cheap-one]}
          ship: {model: local-tiny}
          validate: {prefer: [local, cheap], capability: [reasoning], complexity: S}
    """)
    return load_config(repo)


def ours(chain) -> list[str]:
    mine = {"prem-dear", "prem-cheap", "cheap-unpriced", "cheap-one", "cheap-two", "cheap-small",
            "local-free", "local-priced", "local-tiny"}
    return [m.id for m in chain if m.id in mine]


def avail(config, **overrides):
    table = {name: OK for name in config.catalogue.providers}
    table.update(overrides)
    return table


def test_orders_by_tier_then_price_free_first_then_yaml_order(config) -> None:
    res = resolve_stage("build", config, avail(config))
    assert ours(res.chain) == [
        "local-free", "local-priced",  # local tier: free first
        "cheap-small", "cheap-one", "cheap-two", "cheap-unpriced",  # cheapest first, ties in YAML order, unknown last
        "prem-cheap", "prem-dear",
    ]


def test_override_price_wins_over_table(config) -> None:
    res = resolve_stage("plan", config, avail(config))
    dear = next(m for m in res.chain if m.id == "prem-dear")
    assert dear.price.source == "override" and str(dear.price.input) == "10"


def test_filters_complexity_capability_context_and_provider(config) -> None:
    res = resolve_stage("build", config, avail(config, b=Availability(False, "no key: set B_KEY")),
                        context_needed=8000)
    reasons = {e.model_id: e.reason for e in res.excluded}
    assert "complexity too high" in reasons["local-tiny"]
    assert "context too small" in reasons["cheap-small"] or "provider b unusable" in reasons["cheap-small"]
    assert reasons["cheap-two"] == "provider b unusable: no key: set B_KEY"
    validate = resolve_stage("validate", config, avail(config))
    assert {e.model_id: e.reason for e in validate.excluded}["local-free"] == "missing capability: reasoning"
    plan = resolve_stage("plan", config, avail(config))
    assert ours(plan.chain) == ["prem-cheap", "prem-dear"]
    assert {e.model_id: e.reason for e in plan.excluded}["cheap-one"] == "tier cheap not in prefer [premium]"


def test_context_filter(config) -> None:
    res = resolve_stage("build", config, avail(config), context_needed=8000)
    assert "cheap-small" not in ours(res.chain)
    assert "context too small: 4,000 < 8,000" in {e.model_id: e.reason for e in res.excluded}["cheap-small"]


def test_explicit_chain_keeps_its_order_and_pin(config) -> None:
    assert [m.id for m in resolve_stage("review", config, avail(config)).chain] == ["prem-dear", "cheap-one"]
    assert [m.id for m in resolve_stage("ship", config, avail(config)).chain] == ["local-tiny"]
    pinned = resolve_stage("build", config, avail(config), pinned_model="prem-dear")
    assert [m.id for m in pinned.chain] == ["prem-dear"]


def test_tier_offset_escalates(config) -> None:
    res = resolve_stage("build", config, avail(config), tier_offset=1)
    assert ours(res.chain)[0] == "cheap-small"
    assert not any(m.tier == "local" for m in res.chain)
    top = resolve_stage("build", config, avail(config), tier_offset=9)
    assert {m.tier for m in top.chain} == {"premium"}
