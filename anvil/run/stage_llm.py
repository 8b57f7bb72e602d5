"""What a stage calls to talk to a model: resolver + walker + retries + escalation.

A stage never names a model (DESIGN.md 3). `StageLLM.ask(stage, system, user)`
resolves the stage's chain (with the stage's current escalation: tier offset,
reasoning effort, pinned model), hands it to the chain-walker (which checks the
budget and writes one ledger row per attempt), records the exchange in the run
folder, refreshes the stage's cost and tokens from the ledger, and, when a
schema is given, validates the answer, sending the validation error back to
the model on a retry that counts against the stage's `retry_budget`.

`retry(stage, reason, signature)` is the one place a stage's retry budget is
spent and its `on_retry` applied: `escalate_tier` moves one tier up the
stage's `prefer` list, `effort` raises the reasoning effort, `model` pins a
model. The same failure twice in a row (same signature) counts as stuck: it
escalates one tier more at once and raises the effort to high, even when
`on_retry` does not ask for it. The escalation is part of the run state, so a
resumed run keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from anvil.errors import EXIT_CHAIN_EXHAUSTED, EXIT_STAGE_EXHAUSTED, AnvilError
from anvil.evidence.outcomes import OutcomeLog
from anvil.evidence.stats import load as load_stats
from anvil.providers.types import ChatResult, Message, ReasoningEffort, ToolSpec
from anvil.routing.request import stage_request
from anvil.routing.resolver import resolve_stage
from anvil.routing.walker import CallSite, WalkerError
from anvil.stages.schemas import AnswerInvalid, parse_answer, schema_for

if TYPE_CHECKING:
    from pydantic import BaseModel

    from anvil.config.loader import Config
    from anvil.ledger.db import Ledger
    from anvil.routing.availability import Availability
    from anvil.routing.walker import Walker, WalkResult
    from anvil.run.events import Progress
    from anvil.run.store import Run
    from anvil.stages.names import StageName

STRUCTURED_RETRIES = 2  # invalid structured answers re-asked at most this many times per call


class StageFailed(AnvilError):
    """The one way a stage says it cannot finish (exit 4); `on_exhaust: skip` may skip it."""

    exit_code = EXIT_STAGE_EXHAUSTED

    def __init__(self, stage: str, reason: str, *, hint: str | None = None, message: str | None = None) -> None:
        super().__init__(message or f"stage {stage} failed: {reason}", hint=hint)
        self.stage = stage
        self.reason = reason


class StageExhausted(StageFailed):
    """A stage spent its retry budget."""

    def __init__(self, stage: str, reason: str, *, retries: int, hint: str | None = None) -> None:
        super().__init__(
            stage,
            reason,
            hint=hint or f"raise stages.{stage}.retry_budget or change its on_retry in stage-policy.yaml",
            message=f"stage {stage} spent its retry budget ({retries} retr{'y' if retries == 1 else 'ies'}): {reason}",
        )


class NoModelForStage(AnvilError):
    exit_code = EXIT_CHAIN_EXHAUSTED


@dataclass
class Escalation:
    tier_offset: int = 0
    effort: ReasoningEffort | None = None
    model: str | None = None
    retries: int = 0
    last_signature: str | None = None
    history: list[str] = field(default_factory=list)  # one line per retry, for `anvil show`


@dataclass
class Answer:
    text: str
    parsed: Any
    model: str
    provider: str
    attempts: list[Any]


AskUser = Callable[[str], bool]  # "retry budget spent: allow more? [y/N]"


class StageLLM:
    """One run's access to models. `progress` gets call_started/call_finished/stream events."""

    def __init__(
        self,
        *,
        config: Config,
        availability: dict[str, Availability],
        walker: Walker,
        run: Run,
        ledger: Ledger | None,
        progress: Progress,
        repo: str = "",
        demo: bool = False,
        structured_retries: int = STRUCTURED_RETRIES,
        ask_user: AskUser | None = None,
    ) -> None:
        self.config = config
        self.availability = availability
        self.walker = walker
        self.run = run
        self.ledger = ledger
        self.progress = progress
        self.repo = repo
        self.demo = demo
        self.structured_retries = structured_retries
        self.ask_user = ask_user
        self.outcomes = OutcomeLog(ledger, run.id, repo=repo, demo=demo,
                                   task=str(run.state.options.get("task") or ""))  # anvil bench's task id

    # ------------------------------------------------------------ escalation state

    def escalation(self, stage: StageName) -> Escalation:
        raw = self.run.state.escalation.get(stage)
        return Escalation(**raw) if raw else Escalation()

    def _save_escalation(self, stage: StageName, esc: Escalation) -> None:
        self.run.state.escalation[stage] = asdict(esc)

    def retry(self, stage: StageName, reason: str, *, signature: str | None = None) -> Escalation:
        """Spend one retry of `stage` and apply its on_retry; raises StageExhausted when none is left."""
        self.outcomes.close(stage, model=self.run.state.stage(stage).model, success=False, reason=reason)
        policy = self.config.policy.stage(stage)
        esc = self.escalation(stage)
        if esc.retries >= policy.retry_budget:
            if not (policy.on_exhaust == "ask" and self.ask_user is not None and self.ask_user(
                    f"stage {stage} spent its {policy.retry_budget} retries ({reason}); allow one more?")):
                self.run.event("stage.exhausted", stage=stage, reason=reason, retries=esc.retries)
                raise StageExhausted(stage, reason, retries=esc.retries)
        esc.retries += 1
        stuck = bool(signature) and signature == esc.last_signature
        esc.last_signature = signature or None
        on = policy.on_retry
        changes = []
        if on.escalate_tier:
            esc.tier_offset += 1
            changes.append("tier +1")
        if on.effort:
            esc.effort = on.effort
            changes.append(f"effort {on.effort}")
        if on.model:
            esc.model = on.model
            changes.append(f"model {on.model}")
        if stuck:  # the same failure again: a bigger step at once
            esc.tier_offset += 1
            esc.effort = "high"
            changes.append("stuck: tier +1, effort high")
        line = f"retry {esc.retries}/{policy.retry_budget}: {reason}" + (f" ({', '.join(changes)})" if changes else "")
        esc.history.append(line)
        self._save_escalation(stage, esc)
        self.run.event("stage.retry", stage=stage, reason=reason, retry=esc.retries, stuck=stuck,
                       tier_offset=esc.tier_offset, effort=esc.effort, model=esc.model)
        self.progress.note(stage, line)
        self.run.save()
        return esc

    # ------------------------------------------------------------ chains

    def chain(self, stage: StageName) -> list[Any]:
        esc = self.escalation(stage)
        evidence = None
        if self.config.policy.stage(stage).order == "expected_cost" and self.ledger is not None:
            evidence = {s.model: s for s in load_stats(self.ledger, stage=stage)}
        res = resolve_stage(stage, self.config, self.availability, tier_offset=esc.tier_offset,
                            pinned_model=esc.model, evidence=evidence)
        if not res.chain and (esc.tier_offset or esc.model):
            # An escalation that leaves nothing (no model in the higher tier): keep the base chain.
            res = resolve_stage(stage, self.config, self.availability)
        if not res.chain:
            why = "; ".join(f"{e.model_id}: {e.reason}" for e in res.excluded[:8])
            raise NoModelForStage(f"stage {stage}: no usable model ({res.routing}): {why or 'empty catalogue'}",
                                  hint="`anvil policy explain` shows why each model was left out; "
                                       "`anvil doctor` checks keys and servers")
        return res.chain

    # ------------------------------------------------------------ calls

    def ask(self, stage: StageName, system: str, user: str, *, schema: type[BaseModel] | None = None,
            history: Sequence[Message] | None = None, tools: Sequence[ToolSpec] = (),
            max_output_tokens: int | None = None) -> Answer:
        """One answer from the stage's chain; with `schema`, a validated one (see module docstring)."""
        messages = [Message("system", system, cache=True), *(history or ()), Message("user", user)]
        invalid = 0
        while True:
            result, walk = self._call(stage, messages, schema_for(schema) if schema else None,
                                      schema.__name__ if schema else "answer", max_output_tokens, tools)
            text = result.text
            if schema is None:
                return Answer(text, None, walk.model.id, walk.model.provider_name, walk.attempts)
            try:
                parsed = parse_answer(text, schema)
                return Answer(text, parsed, walk.model.id, walk.model.provider_name, walk.attempts)
            except AnswerInvalid as exc:
                invalid += 1
                self.run.event("stage.invalid_answer", stage=stage, model=walk.model.id, error=str(exc)[:500])
                if invalid > self.structured_retries:
                    raise StageExhausted(stage, f"{walk.model.id} gave no valid {schema.__name__} "
                                                f"after {invalid} tries: {exc}", retries=invalid - 1) from None
                self.retry(stage, f"invalid {schema.__name__} from {walk.model.id}")
                cut = (" It was cut off at the output limit: keep it shorter."
                       if result.finish_reason == "length" else "")
                messages += [Message("assistant", text or "(empty)"),
                             Message("user", f"That answer was not valid: {exc}{cut}\n\n"
                                             "Answer again with the complete JSON object only.")]

    def _call(self, stage: StageName, messages: list[Message], json_schema: dict[str, Any] | None, schema_name: str,
              max_output_tokens: int | None, tools: Sequence[ToolSpec] = ()) -> tuple[ChatResult, WalkResult]:
        policy = self.config.policy.stage(stage)
        esc = self.escalation(stage)
        chain = self.chain(stage)
        request = stage_request(policy, messages, json_schema=json_schema, schema_name=schema_name,
                                effort=esc.effort, max_output_tokens=max_output_tokens, tools=tools)
        st = self.run.state.stage(stage)
        st.attempts += 1
        self.outcomes.begin(stage)
        live = [rm.id for rm in chain if self.walker.burns.burned(rm.id, rm.provider_name) is None]
        self.progress.call_started(stage, (live or [chain[0].id])[0], live or [rm.id for rm in chain])
        site = CallSite(self.run.id, stage, self.repo, self.demo,
                        task=str(self.run.state.options.get("task") or ""))
        try:
            walk = self.walker.call(chain, request, site, on_event=lambda ev: self.progress.stream(stage, ev))
        except BaseException as exc:
            attempts = getattr(exc, "attempts", [])
            self._after_call(stage, attempts)
            self.run.record_exchange(stage, st.attempts, request, exc,
                                     extra={"attempts": [a.to_json() for a in attempts]})
            if isinstance(exc, WalkerError):
                self.run.event("call.failed", stage=stage, error=exc.message[:2000])
            raise
        self._after_call(stage, walk.attempts)
        if walk.model.id not in st.models:
            st.models.append(walk.model.id)
        st.model = walk.model.id
        self.run.record_exchange(stage, st.attempts, request, walk.result, model=walk.model.id,
                                 provider=walk.model.provider_name,
                                 extra={"attempts": [a.to_json() for a in walk.attempts]})
        self.run.event("call.ok", stage=stage, model=walk.model.id,
                       attempts=[a.line().strip() for a in walk.attempts if a.number or a.outcome == "skipped"],
                       dollars=walk.dollars, tokens=walk.result.usage.total_tokens)
        self.progress.call_finished(stage, walk.model.id, walk.result.usage, walk.dollars)
        self.run.save()
        return walk.result, walk

    def _after_call(self, stage: StageName, attempts: list[Any]) -> None:
        """Refresh the stage's and the run's cost from the ledger (the one source of truth) and the burns."""
        self.refresh_costs()
        self.run.state.burns = self.walker.burns.to_json()
        self.progress.spend(self.run.state.spend)

    def refresh_costs(self) -> None:
        if self.ledger is None:
            return
        for name, st in self.run.state.stages.items():
            s = self.ledger.spend(self.run.id, name)
            if s.attempts:
                st.cost = None if s.unpriced else s.dollars
                st.tokens = s.tokens
        total = self.ledger.spend(self.run.id)
        self.run.state.spend = None if total.unpriced else total.dollars
        self.run.state.spend_known = str(total.dollars)
        self.run.state.unpriced_attempts = total.unpriced

