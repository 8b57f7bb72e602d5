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

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from anvil.errors import EXIT_STAGE_EXHAUSTED, AnvilError, NoUsableModel
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
    from anvil.routing.resolver import ResolvedModel
    from anvil.routing.walker import Walker, WalkResult
    from anvil.run.events import Progress
    from anvil.run.store import Run
    from anvil.stages.names import StageName
    from anvil.tools.base import ToolBox, ToolCallRecord, ToolResult
    from anvil.tools.loop import LoopOutcome, Turn

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


def too_small_hint(stage: str, model_id: str) -> str:
    return (f"every answer of {model_id} was cut off at its output cap: the model is too small for the {stage} "
            f"stage (raising retry_budget will not help); route {stage} to a bigger model (stages.{stage}.model "
            f"or prefer in stage-policy.yaml), or raise stages.{stage}.max_output_tokens")


class NoModelForStage(NoUsableModel):
    pass


class StageTimeout(StageFailed):
    """A stage ran past its wall-clock `timeout` (all its calls and tools, not the user's answers)."""

    def __init__(self, stage: str, timeout: float, *, calls: int, retries: int) -> None:
        super().__init__(stage, f"timeout {timeout:g}s",
                         message=f"stage {stage} ran out of its {timeout:g}s timeout after {calls} model call(s) "
                                 f"and {retries} retr{'y' if retries == 1 else 'ies'}",
                         hint=f"raise stages.{stage}.timeout in stage-policy.yaml (e.g. {int(timeout * 2)}s), "
                              "or lower its retry_budget")


@dataclass
class StageClock:
    """Wall-clock time a stage has used since it started; time waiting for the user is not counted."""

    started: float
    paused: float = 0.0  # seconds spent waiting for the user
    calls: int = 0


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
        clock: Callable[[], float] = time.monotonic,
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
        self.clock = clock
        self._clocks: dict[str, StageClock] = {}
        self.outcomes = OutcomeLog(ledger, run.id, repo=repo, demo=demo,
                                   task=str(run.state.options.get("task") or ""))  # anvil bench's task id

    # ------------------------------------------------------------ the stage's time

    def start_stage(self, stage: StageName) -> None:
        """The stage's `timeout` counts from now (each time the runner enters the stage)."""
        self._clocks[stage] = StageClock(self.clock())

    def waiting_for_user(self, stage: StageName, seconds: float) -> None:
        """`seconds` spent waiting for the user's answer: not part of the stage's time."""
        c = self._clocks.get(stage)
        if c is not None:
            c.paused += seconds

    def remaining(self, stage: StageName) -> float | None:
        """Seconds left of the stage's timeout (None: the stage was not started through the runner)."""
        c = self._clocks.get(stage)
        if c is None:
            return None
        limit = float(self.config.policy.stage(stage).timeout)
        return limit - (self.clock() - c.started - c.paused)

    def deadline(self, stage: StageName) -> float | None:
        left = self.remaining(stage)
        return None if left is None else self.clock() + left

    def _check_time(self, stage: StageName) -> float | None:
        """The seconds left, or StageTimeout when none are."""
        left = self.remaining(stage)
        if left is not None and left <= 0:
            policy = self.config.policy.stage(stage)
            c = self._clocks[stage]
            self.run.event("stage.timeout", stage=stage, timeout=float(policy.timeout), calls=c.calls)
            raise StageTimeout(stage, float(policy.timeout), calls=c.calls, retries=self.escalation(stage).retries)
        return left

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
                raise StageExhausted(stage, reason, retries=esc.retries,
                                     hint=exhaustion_hint(stage, reason, signature))
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
            raise NoModelForStage(res.no_model_message(), hint=res.no_model_hint())
        return res.chain

    # ------------------------------------------------------------ calls

    def ask(self, stage: StageName, system: str, user: str, *, schema: type[BaseModel] | None = None,
            history: Sequence[Message] | None = None, tools: Sequence[ToolSpec] = (),
            max_output_tokens: int | None = None) -> Answer:
        """One answer from the stage's chain; with `schema`, a validated one (see module docstring)."""
        from anvil.run.redact import replace_secrets

        # The last net for a key that reached a prompt (a test's output, a file in the repo): the model
        # never sees a secret of this run, whatever the stage put in.
        secrets = list(getattr(self.run, "secrets", []) or [])

        def clean(m: Message) -> Message:
            return replace(m, content=replace_secrets(m.content, secrets)) if secrets and m.content else m

        # Stable first: the system prompt and the stage's first message (its context) are cache breakpoints.
        earlier = list(history or ())
        if earlier and not earlier[0].cache:
            earlier[0] = replace(earlier[0], cache=True)
        messages = [clean(Message("system", system, cache=True)), *map(clean, earlier), clean(Message("user", user))]
        invalid = cut_off = 0
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
                cut_off += result.finish_reason == "length"
                self.run.event("stage.invalid_answer", stage=stage, model=walk.model.id, error=str(exc)[:500])
                # Every answer cut off at the output cap: more retries of the same model will not help.
                hint = too_small_hint(stage, walk.model.id) if cut_off == invalid else None
                if invalid > self.structured_retries:
                    raise StageExhausted(stage, f"{walk.model.id} gave no valid {schema.__name__} "
                                                f"after {invalid} tries: {exc}", retries=invalid - 1,
                                         hint=hint) from None
                try:
                    self.retry(stage, f"invalid {schema.__name__} from {walk.model.id}")
                except StageExhausted as spent:
                    spent.hint = hint or spent.hint
                    raise
                cut = (" It was cut off at the output limit: keep it shorter."
                       if result.finish_reason == "length" else "")
                messages += [Message("assistant", text or "(empty)"),
                             Message("user", f"That answer was not valid: {exc}{cut}\n\n"
                                             "Answer again with the complete JSON object only.")]

    def _call(self, stage: StageName, messages: Sequence[Message], json_schema: dict[str, Any] | None,
              schema_name: str, max_output_tokens: int | None, tools: Sequence[ToolSpec] = (), *,
              pin: str | None = None, exclude: frozenset[str] = frozenset()) -> tuple[ChatResult, WalkResult]:
        from anvil.routing.walker import DeadlineReached

        policy = self.config.policy.stage(stage)
        esc = self.escalation(stage)
        chain = self.chain(stage)
        if tools:  # a tool loop: only models that speak tools, never one that failed mid-loop
            chain = [rm for rm in self.tool_models(chain) if rm.id not in exclude]
        if pin is not None:  # a loop's later turns stay on the model that started it
            chain = [rm for rm in chain if rm.id == pin]
        if not chain:
            raise NoModelForStage(f"stage {stage}: no model of the chain is left for a tool loop "
                                  f"(failed mid-loop: {', '.join(sorted(exclude)) or 'none'})",
                                  hint="widen the stage's chain with more models that have the `tools` capability")
        self._check_time(stage)
        request = stage_request(policy, messages, json_schema=json_schema, schema_name=schema_name,
                                effort=esc.effort, max_output_tokens=max_output_tokens, tools=tools)
        if stage in self._clocks:
            self._clocks[stage].calls += 1
        st = self.run.state.stage(stage)
        st.attempts += 1
        self.outcomes.begin(stage)
        live = [rm.id for rm in chain if self.walker.burns.burned(rm.id, rm.provider_name) is None]
        self.progress.call_started(stage, (live or [chain[0].id])[0], live or [rm.id for rm in chain])
        # The ledger's `attempt` counts 1, 2, 3 across the stage's calls and retries (and resumes).
        base = self.ledger.spend(self.run.id, stage).attempts if self.ledger is not None else 0
        site = CallSite(self.run.id, stage, self.repo, self.demo, attempt_base=base,
                        time_left=(lambda: self.remaining(stage)) if stage in self._clocks else None,
                        task=str(self.run.state.options.get("task") or ""))
        try:
            walk = self.walker.call(chain, request, site, on_event=lambda ev: self.progress.stream(stage, ev))
        except DeadlineReached as exc:
            self._after_call(stage, exc.attempts)
            self.run.record_exchange(stage, st.attempts, request, exc,
                                     extra={"attempts": [a.to_json() for a in exc.attempts]})
            self._check_time(stage)  # raises StageTimeout
            raise
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

    # ------------------------------------------------------------ tools

    @staticmethod
    def tool_models(chain: Sequence[ResolvedModel]) -> list[ResolvedModel]:
        return [rm for rm in chain if "tools" in rm.model.capabilities]

    def can_use_tools(self, stage: StageName) -> bool:
        """Whether the stage's first usable model speaks native tool calls (else: the one-shot path)."""
        chain = self.chain(stage)
        live = [rm for rm in chain if self.walker.burns.burned(rm.id, rm.provider_name) is None] or chain
        return bool(live) and "tools" in live[0].model.capabilities

    def ask_with_tools(self, stage: StageName, system: str, user: str, box: ToolBox, *,
                       history: Sequence[Message] = (), max_output_tokens: int | None = None) -> LoopOutcome:
        """One attempt as a bounded tool loop (anvil.tools.loop) on the stage's tool-capable models."""
        from anvil.routing.walker import RequestRejected
        from anvil.tools.loop import LoopBounds, ToolLoop, Turn, TurnFailed

        policy = self.config.policy.stage(stage)
        # Stable first: the system prompt and the attempt's first message are cache breakpoints.
        first = [Message("system", system, cache=True), *history, Message("user", user, cache=True)]

        def take_turn(messages: Sequence[Message], tools: tuple[ToolSpec, ...], *, pin: str | None,
                      exclude: frozenset[str], timeout: float | None) -> Turn:
            try:
                result, walk = self._call(stage, messages, None, "answer", max_output_tokens, tools,
                                          pin=pin, exclude=exclude)
            except WalkerError as exc:
                if pin is None or isinstance(exc, RequestRejected):
                    raise
                self.run.event("tool.loop_restart", stage=stage, model=pin, error=exc.message[:500])
                self.progress.note(stage, f"{pin} failed mid-loop; the attempt restarts on the next model")
                raise TurnFailed(pin, exc) from exc
            return Turn(result, walk.model.id)

        def on_tool(record: ToolCallRecord, result: ToolResult, model: str) -> None:
            self.run.event("tool.call", stage=stage, model=model, tool=record.tool,
                           arguments=_short_args(record.arguments), ok=record.ok, chars=record.result_chars,
                           cut=record.cut or None, refused=record.refused or None)

        bounds = LoopBounds(max_turns=policy.max_turns, max_tool_calls=policy.max_tool_calls,
                            deadline=self.deadline(stage))
        out = ToolLoop(box, take_turn, bounds, on_tool=on_tool, restore=box.restore, clock=self.clock).run(first)
        self.run.event("tool.loop", stage=stage, model=out.model, stop=out.stop, turns=out.turns,
                       tool_calls=out.tool_calls, restarts=out.restarts)
        if out.stop == "timeout":
            self._check_time(stage)
        return out

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


def _short_args(args: dict[str, Any], limit: int = 300) -> dict[str, Any]:
    """Tool arguments for an event: long strings (file contents, edit text) cut to `limit` characters."""
    return {k: (v if not isinstance(v, str) or len(v) <= limit else v[:limit] + f"... [{len(v)} chars]")
            for k, v in args.items()}


def exhaustion_hint(stage: str, reason: str, signature: str | None) -> str:
    """What to do when a stage spent its retries, naming the actual cause (not just "raise retry_budget")."""
    sig = signature or ""
    if sig.startswith("validate:"):
        return ("validation kept failing after the change (validate.json in the run folder has the output); a "
                "command that cannot pass here belongs fixed on the base branch or out of .anvil/config.yaml")
    if sig.startswith("review:"):
        return ("the reviewer kept finding blocking problems (review.md in the run folder); fix them by hand "
                f"and resume, or raise stages.{stage}.retry_budget")
    if "(max_turns)" in reason or "(max_tool_calls)" in reason:
        return (f"the tool loop hit its bounds every time: raise stages.{stage}.max_turns / max_tool_calls, "
                "or name the symbols and lines to change in the plan so less has to be looked up")
    if sig and stage == "build":
        return ("the tests kept failing after the change (test.log in the run folder has the last run); "
                f"raise stages.{stage}.retry_budget or change its on_retry in stage-policy.yaml")
    if "edit block" in reason:
        return ("the model's edits kept failing to apply (the events list each block's outcome and the closest "
                f"lines); a stronger model may help: stages.{stage}.on_retry: {{escalate_tier: true}}")
    return f"raise stages.{stage}.retry_budget or change its on_retry in stage-policy.yaml"
