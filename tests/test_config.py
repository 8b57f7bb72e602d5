"""Layered config: merge order, and every class of validation error names file, line and key."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.config.loader import ConfigError, load_config
from tests.foundation_helpers import git_repo, write


# These tests are about validating the repo layer itself, so they read it as approved (`anvil trust`);
# what an unapproved layer may set is tests/test_trust.py's subject.
def errors_of(repo: Path | None, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(repo, trusted=True, **kw)
    return info.value.errors


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_repo(tmp_path / "repo")


def test_bundled_defaults_load_and_cover_seven_stages() -> None:
    config = load_config(None)
    assert list(config.policy.stages) == ["clarify", "plan", "build", "test", "validate", "review", "ship"]
    assert all(stage.timeout > 0 for stage in config.policy.stages.values())
    assert config.policy.stage("plan").prefer == ("premium",)
    assert config.catalogue.walker.rate_limit_wait_cap == 20
    tiers = {m.tier for m in config.catalogue.models}
    assert tiers == {"local", "cheap", "premium"}


def test_layering_order_bundled_home_repo_env_flags(repo: Path) -> None:
    home = Path(os.environ["ANVIL_HOME"])
    write(home / "stage-policy.yaml", """
        budget: {max_dollars: 3}
        stages:
          review: {timeout: 111, retry_budget: 4}
          ship: {timeout: 50}
    """)
    write(repo / ".anvil/stage-policy.yaml", """
        budget: {max_dollars: 2}
        stages:
          review: {timeout: 222}
    """)
    config = load_config(repo, trusted=True, env={**os.environ, "ANVIL_BUDGET_TOKENS": "1000"})
    review = config.policy.stage("review")
    assert review.timeout == 222  # repo beats home
    assert review.retry_budget == 4  # home's other keys survive (key by key)
    assert review.prefer == ("premium",)  # bundled keys survive too
    assert config.policy.stage("ship").timeout == 50  # only home touched ship
    assert config.policy.budget.max_dollars == Decimal("2")
    assert config.policy.budget.max_tokens == 1000  # env
    flagged = load_config(repo, trusted=True, overrides={"budget.max_dollars": "0.50"})
    assert flagged.policy.budget.max_dollars == Decimal("0.50")  # flags beat everything


def test_pinning_a_model_in_the_repo_replaces_the_bundled_prefer(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          build: {model: claude-opus-5-5}
    """)
    build = load_config(repo, trusted=True).policy.stage("build")
    assert build.model == "claude-opus-5-5" and build.prefer is None
    assert build.timeout == 600  # the rest of the bundled stage is kept


def test_models_merge_by_id_and_providers_by_name(repo: Path) -> None:
    write(repo / ".anvil/models.yaml", """
        providers:
          anthropic: {base_url: "http://127.0.0.1:9999"}
          mine: {kind: openai_compatible, base_url: "http://127.0.0.1:8000/v1"}
        models:
          - id: claude-haiku-5-5
            context_window: 1000
          - id: my-model
            provider: mine
            tier: local
            price: {free: true}
    """)
    cat = load_config(repo, trusted=True).catalogue
    assert cat.providers["anthropic"].base_url == "http://127.0.0.1:9999"
    assert cat.providers["anthropic"].api_key_env == "ANTHROPIC_API_KEY"
    haiku = cat.model("claude-haiku-5-5")
    assert haiku.context_window == 1000 and haiku.tier == "cheap"
    assert cat.models[-1].id == "my-model"


def test_yaml_syntax_error_names_file_and_line(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          review:
            timeout: [1, 2
    """)
    [err] = errors_of(repo)
    assert err.startswith(".anvil/stage-policy.yaml:") or "/.anvil/stage-policy.yaml:" in err
    assert "YAML syntax" in err


def test_unknown_key_is_an_error_with_line(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          review:
            timout: 30
    """)
    [err] = errors_of(repo)
    assert ".anvil/stage-policy.yaml:3 stages.review.timout: unknown key" in err


def test_wrong_type_names_line_and_key(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          build:
            retry_budget: many
    """)
    [err] = errors_of(repo)
    assert ".anvil/stage-policy.yaml:3 stages.build.retry_budget:" in err
    assert "integer" in err


def test_stage_name_must_be_one_of_seven(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          reviw: {timeout: 5}
    """)
    [err] = errors_of(repo)
    assert ".anvil/stage-policy.yaml:2 stages.reviw: unknown stage 'reviw'" in err


def test_unknown_model_reference(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          plan:
            chain: [claude-opus-5-5, gpt-nonexistent]
    """)
    [err] = errors_of(repo)
    assert ".anvil/stage-policy.yaml:3 stages.plan.chain[1]: unknown model 'gpt-nonexistent'" in err


def test_unknown_provider_reference(repo: Path) -> None:
    write(repo / ".anvil/models.yaml", """
        models:
          - id: x
            provider: nowhere
            tier: cheap
    """)
    [err] = errors_of(repo)
    assert ".anvil/models.yaml:3 models[x].provider: unknown provider 'nowhere'" in err


def test_unknown_provider_kind(repo: Path) -> None:
    write(repo / ".anvil/models.yaml", """
        providers:
          p: {kind: opnai}
    """)
    [err] = errors_of(repo)
    assert ".anvil/models.yaml:2 providers.p.kind: unknown provider kind 'opnai'" in err


def test_missing_timeout_is_refused_before_anything_runs(tmp_path: Path) -> None:
    home = Path(os.environ["ANVIL_HOME"])
    # A user file cannot remove the bundled timeout, but null does, and a new
    # `defaults` without one does not supply it.
    write(home / "stage-policy.yaml", """
        stages:
          review:
            timeout: null
    """)
    [err] = errors_of(None)
    assert "stage-policy.yaml:3 stages.review.timeout: required" in err


def test_defaults_supply_timeout(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        defaults: {timeout: 42}
    """)
    # Bundled stages set their own timeouts, which win over defaults.
    assert load_config(repo, trusted=True).policy.stage("review").timeout == 300


def test_literal_key_in_yaml_is_refused_with_reason(repo: Path) -> None:
    write(repo / ".anvil/models.yaml", """
        providers:
          anthropic:
            api_key: sk-ant-123
    """)
    [err] = errors_of(repo)
    assert ".anvil/models.yaml:3 providers.anthropic.api_key: keys never go in YAML" in err
    assert "sk-ant-123" not in err


def test_key_pasted_into_api_key_env_is_refused(repo: Path) -> None:
    write(repo / ".anvil/models.yaml", """
        providers:
          anthropic:
            api_key_env: sk-ant-api03-abcdef
    """)
    [err] = errors_of(repo)
    assert ".anvil/models.yaml:3 providers.anthropic.api_key_env:" in err
    assert "NAME of an environment variable" in err


def test_all_errors_reported_at_once(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          review: {timout: 1}
          build: {retry_budget: -1}
    """)
    write(repo / ".anvil/models.yaml", """
        providers:
          p: {kind: nope}
    """)
    errs = errors_of(repo)
    assert len(errs) == 3
    assert any("models.yaml:2 providers.p.kind" in e for e in errs)


def test_two_routings_on_one_stage_in_one_file(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          plan:
            model: claude-opus-5-5
            chain: [claude-opus-5-5]
    """)
    [err] = errors_of(repo)
    assert ".anvil/stage-policy.yaml:2 stages.plan: give one of prefer, model, chain" in err


def test_home_file_errors_name_the_home_file() -> None:
    home = Path(os.environ["ANVIL_HOME"])
    write(home / "models.yaml", """
        walker:
          rate_limit_wait_cap: -1
    """)
    [err] = errors_of(None)
    assert "models.yaml:2 walker.rate_limit_wait_cap:" in err
