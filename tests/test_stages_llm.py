"""StageLLM: the real resolver, walker, ledger and run store, with scripted providers (the layer under
test is the retry/escalation/validation logic, not an adapter)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from anvil.config.loader import load_config
from anvil.demo.scripted_run import KEY_ENV, scripted_models_yaml
from anvil.errors import EXIT_CHAIN_EXHAUSTED, EXIT_STAGE_EXHAUSTED
from anvil.ledger import Ledger
from anvil.routing.walker import Walker
from anvil.run.stage_llm import NoModelForStage, StageExhausted, StageLLM
from anvil.run.store import RunStore
from anvil.stages.schemas import Spec
from anvil.ui.progress import NullProgress
from tests.walker_helpers import FakeProvider, ok


class Notes(NullProgress):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, stage: str, text: str) -> None:
        self.notes.append(f"{stage}: {text}")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ANVIL_HOME", str(home))
    monkeypatch.setenv(KEY_ENV, "k")
    (home / "models.yaml").write_text(scripted_models_yaml("http://127.0.0.1:9"))
    repo = tmp_path / "repo"
    repo.mkdir()

    def make(script: dict, policy: str = "") -> tuple[StageLLM, FakeProvider, Ledger]:
        if policy:
            (home / "stage-policy.yaml").write_text(policy)
        config = load_config(repo)
        from anvil.routing.availability import check_providers

        avail = {k: v for k, v in check_providers(config, probe=False).items()}
        provider = FakeProvider("scripted", script)
        ledger = Ledger(home / "ledger.db")
        run = RunStore(repo).create("req")
        walker = Walker(config.catalogue.walker, ledger=ledger, provider_factory=lambda rm: provider,
                        config=config, sleep=lambda s: None)
        llm = StageLLM(config=config, availability=avail, walker=walker, run=run, ledger=ledger,
                       progress=Notes(), repo=str(repo))
        return llm, provider, ledger

    return make


def test_invalid_structured_answer_is_retried_with_the_error_and_counts_against_the_budget(setup):
    llm, provider, ledger = setup({"scripted-cheap": [ok("not json at all"), ok('{"goal": "g"}')]})
    answer = llm.ask("clarify", "anvil stage: clarify", "request", schema=Spec)
    assert answer.parsed == Spec(goal="g") and answer.model == "scripted-cheap"
    assert llm.escalation("clarify").retries == 1
    st = llm.run.state.stage("clarify")
    assert st.attempts == 2 and st.models == ["scripted-cheap"]
    # two ledger rows, and the stage's cost is the ledger's
    spend = ledger.spend(llm.run.id, "clarify")
    assert spend.attempts == 2 and st.cost == spend.dollars > 0 and llm.run.state.spend == spend.dollars
    kinds = [e["kind"] for e in llm.run.events()]
    assert "stage.invalid_answer" in kinds and "stage.retry" in kinds
    assert len(llm.run.exchanges()) == 2


def test_structured_retries_stop_when_the_stage_budget_is_spent(setup):
    llm, provider, _ = setup({"scripted-cheap": [ok("nope")]},
                             "stages:\n  clarify: {retry_budget: 1}\n")
    with pytest.raises(StageExhausted) as exc:
        llm.ask("clarify", "sys", "user", schema=Spec)
    assert exc.value.exit_code == EXIT_STAGE_EXHAUSTED
    assert len(provider.calls) == 2  # the first answer and one retry


def test_retry_escalates_the_tier_and_stuck_escalates_further(setup):
    llm, provider, _ = setup({"scripted-local": [ok("a")], "scripted-cheap": [ok("b")],
                              "scripted-premium": [ok("c")]})
    assert [rm.id for rm in llm.chain("build")][0] == "scripted-local"
    llm.retry("build", "tests failed", signature="sig-1")
    assert llm.chain("build")[0].id == "scripted-cheap"  # build: on_retry escalate_tier
    esc = llm.retry("build", "tests failed again", signature="sig-1")  # same failure: stuck
    assert esc.tier_offset == 3 and esc.effort == "high"
    assert llm.chain("build")[0].id == "scripted-premium"  # capped at the last tier of prefer
    assert llm.ask("build", "sys", "user").text == "c"
    assert provider.calls == ["scripted-premium"]
    assert any("stuck" in n for n in llm.progress.notes)
    # escalations live in the run state (a resumed run keeps them)
    saved = json.loads(llm.run.state_path.read_text())["escalation"]["build"]
    assert saved["retries"] == 2 and saved["tier_offset"] == 3
    llm.retry("build", "x", signature="sig-2")
    with pytest.raises(StageExhausted, match="spent its retry budget"):
        llm.retry("build", "y")


def test_on_exhaust_ask_lets_the_user_allow_one_more(setup):
    llm, _, _ = setup({}, "stages:\n  review: {retry_budget: 0, on_exhaust: ask}\n")
    answers = iter([True, False])
    llm.ask_user = lambda q: next(answers)
    llm.retry("review", "blocking finding")
    with pytest.raises(StageExhausted):
        llm.retry("review", "blocking finding")


def test_a_stage_without_a_usable_model_is_a_chain_error(setup):
    llm, _, _ = setup({})
    llm.availability = {name: type(a)(False, "no key: set X") for name, a in llm.availability.items()}
    with pytest.raises(NoModelForStage) as exc:
        llm.chain("plan")
    assert exc.value.exit_code == EXIT_CHAIN_EXHAUSTED and "no usable model" in exc.value.message


def test_unpriced_calls_make_the_stage_cost_unknown_not_zero(setup, tmp_path):
    home = tmp_path / "home"
    (home / "models.yaml").write_text(
        (home / "models.yaml").read_text()
        + """  - {id: scripted-mystery, provider: scripted-openai, tier: local, capabilities: [code],
     complexity_max: L, context_window: 128000}
"""
    )
    llm, _, ledger = setup({"scripted-local": [ok("x")], "scripted-mystery": [ok("y")]},
                           "stages:\n  ship: {model: scripted-mystery}\n")
    llm.ask("build", "sys", "user")
    assert llm.run.state.stage("build").cost == Decimal(0)  # free (local): known, zero
    llm.ask("ship", "sys", "user")
    assert llm.run.state.stage("ship").cost is None  # unpriced: unknown, never $0
    assert llm.run.state.spend is None and llm.run.state.unpriced_attempts == 1
