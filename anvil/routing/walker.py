"""The chain-walker: one call, walked down a stage's chain of models (DESIGN.md 6).

For each model of the chain (skipping burned ones) it checks the budget, calls
the provider, writes one ledger row for the attempt, and on an `UpstreamError`
decides by its kind:

- rate_limit: retry_after <= cap -> wait it and retry the same model (at most
  `rate_limit_retries` times; no retry_after -> backoff); longer, or again after
  the retries -> burn the model for the run, next model;
- overloaded, server, timeout, connection, stream_broken: backoff with jitter,
  `transient_retries` retries, then the next model (not burned: it may recover);
- quota, auth: burn every model of the provider (its key), next; never retried;
- model_not_found: burn the model, next;
- context_overflow: skip to the next model with a larger context window;
- invalid_request, content_policy: stop (`RequestRejected`): no model fixes it.

An exhausted chain raises ONE `ChainExhausted` listing every attempt. A failed
attempt's streamed deltas are never mixed with the next model's: the caller's
`on_event` gets an `AttemptReset` so a live display can clear what it showed.
Time, sleep and randomness are injected.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from anvil.errors import EXIT_CHAIN_EXHAUSTED, AnvilError
from anvil.ledger.bounds import clamp_usage, sane_cost
from anvil.ledger.db import AttemptRow, utc_now_iso
from anvil.ledger.pricing import CallCost, call_cost
from anvil.providers.types import ReasoningDelta, TextDelta, ToolCallDelta, UpstreamError, Usage, UsageUpdate
from anvil.routing.burns import BurnList
from anvil.routing.factory import build_provider

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.config.schema import WalkerSettings
    from anvil.ledger.db import Ledger
    from anvil.providers.types import ChatRequest, ChatResult, Provider, StreamEvent
    from anvil.routing.budget import BudgetGuard
    from anvil.routing.resolver import ResolvedModel
    from anvil.telemetry import Telemetry

TRANSIENT = frozenset({"overloaded", "server", "timeout", "connection", "stream_broken"})
FATAL = frozenset({"invalid_request", "content_policy"})


@dataclass(frozen=True)
class AttemptReset:
    """Stream event: the deltas shown so far belong to a failed attempt; clear them."""

    attempt: int
    model: str
    reason: str


@dataclass
class Attempt:
    """One try (or one skipped model) of a walk, for errors, `--json` and the run state."""

    number: int  # 0 for a model skipped without a call
    model: str
    provider: str
    chain_pos: int
    outcome: str  # "ok" | "error" | "skipped"
    kind: str | None = None
    status: int | None = None
    message: str = ""
    next: str = ""  # what the walker did next: "retry after 2s", "burned model; next", ...
    served_model: str | None = None
    dollars: Decimal | None = None
    cost_source: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    def line(self) -> str:
        if self.outcome == "skipped":
            return f"  - {self.model} ({self.provider}): skipped: {self.message}"
        status = f" HTTP {self.status}" if self.status is not None else ""
        what = "ok" if self.outcome == "ok" else f"{self.kind}{status}: {self.message}"
        then = f" -> {self.next}" if self.next else ""
        return f"  {self.number}. {self.model} ({self.provider}): {what}{then}"

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dollars"] = None if self.dollars is None else str(self.dollars)
        return d


class WalkerError(AnvilError):
    """A call that could not be served; `.attempts` says what was tried."""

    exit_code = EXIT_CHAIN_EXHAUSTED

    def __init__(self, message: str, attempts: list[Attempt], *, hint: str | None = None) -> None:
        self.attempts = attempts
        lines = [a.line() for a in attempts]
        super().__init__("\n".join([message, *lines]) if lines else message, hint=hint)


class DeadlineReached(WalkerError):
    """The stage's time ran out before (another) attempt could start (the caller says which timeout)."""


class ChainExhausted(WalkerError):
    """Every model of the chain failed or was skipped."""


class RequestRejected(WalkerError):
    """invalid_request / content_policy: the request itself is the problem, no other model tried."""

    def __init__(self, message: str, attempts: list[Attempt], error: Exception) -> None:
        super().__init__(message, attempts, hint="fix the request (or the stage's prompt); "
                                                 "another model would refuse it too")
        self.error = error


@dataclass(frozen=True)
class CallSite:
    """Who is calling: stamped on every ledger row. `time_left` (seconds, or None for no bound)
    is the stage's wall-clock allowance: checked before every attempt, and no attempt's
    timeout runs past it."""

    run_id: str
    stage: str
    repo: str = ""
    demo: bool = False
    time_left: Callable[[], float | None] | None = None
    client: str = ""  # served traffic (`anvil serve`): the client's user agent
    session: str = ""  # ... the conversation
    preset: str = ""  # ... the model name the client asked for
    attempt_base: int = 0  # attempts this stage made in earlier calls: ledger numbers go on from there
    task: str = ""  # the benchmark task id (`anvil run --task`), for `cost report --by task`


# ChatResult -> None when the answer is usable, else why not ("empty answer", "tool call 1: bad JSON")
Verify = Callable[[Any], str | None]


class BadAnswer(Exception):
    """An answer that came back whole but is structurally unusable (see `Walker.call`'s `verify`).

    Shaped like an `UpstreamError` where the ledger reads one: its tokens were billed."""

    kind = "bad_answer"
    status = None

    def __init__(self, message: str, result: ChatResult) -> None:
        super().__init__(message)
        self.message = message
        self.usage = result.usage
        self.request_id = result.request_id


@dataclass
class WalkResult:
    result: ChatResult
    model: ResolvedModel  # the model that answered
    attempts: list[Attempt]
    dollars: Decimal | None
    cost_source: str


ProviderFactory = Callable[[Any], Any]  # ResolvedModel -> Provider


def _message(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Walker:
    """Walks chains for one run. Holds the run's burns; writes the ledger.

    `provider_factory(resolved_model)` builds the adapter (default: built from
    `config` with `anvil.routing.factory.build_provider`, one per provider name).
    `budget` is anything with `check(stage)` raising before a call that must not start.
    """

    def __init__(self, settings: WalkerSettings, *, ledger: Ledger | None, burns: BurnList | None = None,
                 provider_factory: ProviderFactory | None = None, config: Config | None = None,
                 budget: BudgetGuard | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random,
                 timer: Callable[[], float] = time.perf_counter, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.ledger = ledger
        self.burns = burns if burns is not None else BurnList(expiry=settings.burn_expiry, clock=clock)
        self.budget = budget
        self._clock, self._sleep, self._rand, self._timer = clock, sleep, rand, timer
        self.telemetry = telemetry  # each attempt as a span (OpenTelemetry export)
        self._providers: dict[str, Any] = {}
        if provider_factory is None:
            if config is None:
                raise ValueError("Walker needs a provider_factory or a config")

            provider_factory = lambda rm: build_provider(config, rm.provider_name)  # noqa: E731
        self._factory = provider_factory

    # ------------------------------------------------------------ helpers

    def backoff(self, n: int) -> float:
        """Seconds before retry n (0-based): min(base*2**n, max) minus up to 25% jitter."""
        s = self.settings
        return min(s.backoff_base * 2 ** n, s.backoff_max) * (1 - 0.25 * self._rand())

    def _provider(self, rm: ResolvedModel) -> Provider:
        p = self._providers.get(rm.provider_name)
        if p is None:
            p = self._providers[rm.provider_name] = self._factory(rm)
        return p

    def _row(self, site: CallSite, number: int, pos: int, rm: ResolvedModel, request: ChatRequest,
             started: datetime, elapsed: float, usage: Usage, *, result: ChatResult | None = None,
             error: BaseException | None = None, internal: str | None = None, state: str = "settled",
             estimated: bool = False) -> tuple[AttemptRow, CallCost]:
        """Price an attempt and build its ledger row: (AttemptRow, CallCost)."""
        usage, flags = clamp_usage(usage)
        served = result.served_model if result is not None else None
        provider_cost, cost_flags = sane_cost(getattr(result, "provider_cost", None))
        flags += cost_flags
        cost = call_cost(rm.model, rm.provider, usage, served_model=served, provider_cost=provider_cost,
                         at=started)
        if (result is not None and usage.input_tokens == 0 and usage.output_tokens == 0
                and cost.source in ("table", "override")):
            # an answer without any usage: the adapter (or CLI) gave no counts, so the cost is
            # unknown, not $0 (a failed attempt without tokens really cost nothing)
            cost = CallCost(None, "unpriced", note="the answer reported no token counts")
        if state == "interrupted" and cost.dollars == 0 and cost.source not in ("free", "override"):
            cost = CallCost(None, "unpriced", note="interrupted before any token was counted")
        message = getattr(error, "message", None) or (str(error) if error is not None else None)
        row = AttemptRow(
            ts=utc_now_iso(started), run_id=site.run_id, repo=site.repo, stage=site.stage,
            attempt=number, chain_pos=pos, provider=rm.provider_name, provider_kind=rm.provider.kind,
            model=rm.id, requested_model=request.model, served_model=served,
            outcome="ok" if result is not None else "error",
            error_kind=getattr(error, "kind", None) or internal if result is None else None,
            http_status=getattr(error, "status", None),
            error_message=_message(message) if message else None,
            input_tokens=usage.input_tokens, cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_s=result.latency_s if result is not None and result.latency_s else elapsed,
            ttft_s=result.ttft_s if result is not None else None,
            dollars=cost.dollars, cost_source=cost.source, prices_version=cost.prices_version,
            request_id=(result.request_id if result is not None else getattr(error, "request_id", None)),
            demo=site.demo, client=site.client, session=site.session, preset=site.preset,
            state=state, estimated=estimated,
            flags=("usage_clamped: " + ", ".join(flags))[:500] if flags else None,
            cost_note=cost.note if cost.dollars is None else None, task=site.task)
        return row, cost

    def _open(self, site: CallSite, number: int, pos: int, rm: ResolvedModel, req: ChatRequest,
              started: datetime, meter: _Meter) -> int | None:
        """The `started` row, written before the call: a killed process still leaves it."""
        if self.ledger is None:
            return None
        usage, estimated = meter.counted()
        row, _ = self._row(site, number, pos, rm, req, started, 0.0, usage, internal="in_flight",
                           state="started", estimated=estimated)
        return int(self.ledger.start(row))

    def _progress(self, row_id: int | None, rm: ResolvedModel, meter: _Meter, started: datetime,
                  elapsed: float) -> None:
        if row_id is None or self.ledger is None:
            return
        usage, estimated = meter.counted()
        usage, _ = clamp_usage(usage)
        cost = call_cost(rm.model, rm.provider, usage, at=started)
        try:
            self.ledger.progress(row_id, usage, estimated, cost.dollars, cost.source, elapsed)
        except sqlite3.Error:  # a busy ledger must not break the call: the settle writes the truth
            pass

    def _settle(self, row_id: int | None, site: CallSite, number: int, pos: int, rm: ResolvedModel,
                req: ChatRequest, started: datetime, elapsed: float, meter: _Meter,
                result: ChatResult | None = None, error: BaseException | None = None,
                internal: str | None = None) -> CallCost:
        """Write the attempt's final row (settling its started row); returns the CallCost."""
        estimated = False
        reported: Usage | None = getattr(error, "usage", None)
        if result is not None:
            usage = result.usage
        elif reported is not None:
            usage = reported
        elif internal is not None or getattr(error, "partial", False):
            usage, estimated = meter.counted()  # interrupted or broken mid-stream: what was counted
        else:
            usage = Usage()  # refused before any output: the provider bills nothing
        state = "interrupted" if internal == "interrupted" else "settled"
        row, cost = self._row(site, number, pos, rm, req, started, elapsed, usage, result=result, error=error,
                              internal=internal, state=state, estimated=estimated)
        if self.ledger is not None:
            if row_id is None:
                self.ledger.record(row)
            else:
                self.ledger.settle(row_id, row)
        if self.telemetry is not None:
            try:
                self.telemetry.model_call(row, getattr(result, "finish_reason", None))
            except Exception:  # export is best-effort: it never breaks a call that worked
                pass
        return cost

    def _request_for(self, request: ChatRequest, rm: ResolvedModel) -> ChatRequest:
        m = rm.model
        return replace(request, model=m.wire_name, context_window=rm.context_window,
                       max_output_tokens=min(request.max_output_tokens, m.max_output_tokens))

    # ------------------------------------------------------------ the walk

    def call(self, chain: Sequence[ResolvedModel], request: ChatRequest, site: CallSite,
             on_event: Callable[[Any], None] | None = None, verify: Verify | None = None,
             on_attempt: Callable[[ResolvedModel], None] | None = None) -> WalkResult:
        """Serve `request` from the first model of `chain` that can (see the module docstring).

        `verify(result)` (the gateway's check before it commits an answer to its client) names
        what is structurally wrong with an answer; such an answer is an error attempt
        (`bad_answer`, its tokens billed) and the walk moves on to the next model.
        `on_attempt(resolved_model)` is told which model is about to be called."""
        walk = _Walk(number=site.attempt_base)
        for pos, rm in enumerate(chain):
            why_not = self._skip_reason(rm, walk)
            if why_not:
                walk.attempts.append(Attempt(0, rm.id, rm.provider_name, pos, "skipped", message=why_not))
                continue
            tries = _Tries()
            while True:
                if self.budget is not None:
                    self.budget.check(site.stage)  # BudgetExceeded propagates: the run stops here
                try:
                    provider = self._provider(rm)
                except AnvilError as exc:  # e.g. a missing key: this provider cannot serve the run
                    self.burns.burn_provider(rm.provider_name, _message(exc.message))
                    walk.attempts.append(Attempt(0, rm.id, rm.provider_name, pos, "skipped",
                                                 message=f"{exc.message}; burned provider"))
                    break
                left = site.time_left() if site.time_left is not None else None
                if left is not None and left <= 0:
                    raise DeadlineReached(f"stage {site.stage}: out of time before attempt {walk.number + 1}",
                                          walk.attempts)
                walk.number += 1
                req = self._request_for(request, rm)
                if left is not None and left < req.timeout:
                    req = replace(req, timeout=max(1.0, left))
                shown = [False]
                if on_attempt is not None:
                    on_attempt(rm)
                started = datetime.fromtimestamp(self._clock(), UTC)
                t0 = self._timer()
                meter = _Meter(_estimate_input(req), t0)
                row_id = self._open(site, walk.number, pos, rm, req, started, meter)

                def forward(event: StreamEvent, _shown: list[bool] = shown, _meter: _Meter = meter,
                            _row: int | None = row_id, _rm: ResolvedModel = rm, _started: datetime = started,
                            _t0: float = t0) -> None:
                    _shown[0] = True
                    now = self._timer()
                    if _meter.see(event, now):
                        self._progress(_row, _rm, _meter, _started, now - _t0)
                    if on_event is not None:
                        on_event(event)

                try:
                    result = provider.chat(req, forward)
                except UpstreamError as err:
                    cost = self._settle(row_id, site, walk.number, pos, rm, req, started, self._timer() - t0,
                                        meter, error=err)
                    att = Attempt(walk.number, rm.id, rm.provider_name, pos, "error", err.kind, err.status,
                                  _message(err.message), dollars=cost.dollars, cost_source=cost.source)
                    walk.attempts.append(att)
                    if shown[0] and on_event is not None:  # the display clears what this attempt showed
                        on_event(AttemptReset(walk.number, rm.id, f"{err.kind}: {_message(err.message, 120)}"))
                    wait = self._after_failure(err, rm, att, walk, tries)
                    if wait is None:
                        break
                    self._sleep(wait)
                    continue
                except BaseException as exc:  # a bug or an interrupt: still leaves its ledger row
                    internal = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                                else getattr(exc, "ledger_kind", "internal"))  # e.g. the gateway's client_gone
                    try:
                        self._settle(row_id, site, walk.number, pos, rm, req, started, self._timer() - t0,
                                     meter, error=exc, internal=internal)
                    except Exception:  # never hide the original failure behind a ledger problem
                        pass
                    raise
                bad = verify(result) if verify is not None else None
                if bad:
                    unusable = BadAnswer(bad, result)
                    cost = self._settle(row_id, site, walk.number, pos, rm, req, started, self._timer() - t0,
                                        meter, error=unusable)
                    walk.attempts.append(Attempt(walk.number, rm.id, rm.provider_name, pos, "error", unusable.kind,
                                                 message=_message(bad), next="next model",
                                                 dollars=cost.dollars, cost_source=cost.source))
                    if shown[0] and on_event is not None:
                        on_event(AttemptReset(walk.number, rm.id, f"bad_answer: {_message(bad, 120)}"))
                    break
                cost = self._settle(row_id, site, walk.number, pos, rm, req, started, self._timer() - t0,
                                    meter, result=result)
                u = result.usage
                walk.attempts.append(Attempt(walk.number, rm.id, rm.provider_name, pos, "ok",
                                             served_model=result.served_model, dollars=cost.dollars,
                                             cost_source=cost.source, input_tokens=u.input_tokens,
                                             output_tokens=u.output_tokens))
                return WalkResult(result, rm, walk.attempts, cost.dollars, cost.source)
        names = ", ".join(rm.id for rm in chain) or "(empty)"
        raise ChainExhausted(
            f"stage {site.stage}: every model of the chain failed ({names})",
            walk.attempts,
            hint="see `anvil doctor` for provider status, or widen the stage's chain in stage-policy.yaml",
        )

    def _skip_reason(self, rm: ResolvedModel, walk: _Walk) -> str | None:
        burn = self.burns.burned(rm.id, rm.provider_name)
        if burn is not None:
            return burn.describe()
        if rm.context_window <= walk.min_window:
            return (f"context window {rm.context_window:,} is not larger than the "
                    f"{walk.min_window:,} that overflowed")
        return None

    def _after_failure(
        self, err: UpstreamError, rm: ResolvedModel, att: Attempt, walk: _Walk, tries: _Tries
    ) -> float | None:
        """The rules of DESIGN.md 6: seconds to wait before retrying the same model, or None to
        move on to the next one (after burning what must be burned). Fatal kinds raise."""
        s, kind, ra = self.settings, err.kind, err.retry_after
        if kind in FATAL:
            att.next = "stopped: no other model tried"
            raise RequestRejected(
                f"{rm.provider_name}/{rm.id} refused the request ({kind}"
                f"{f' HTTP {err.status}' if err.status else ''}): {_message(err.message)}",
                walk.attempts, err) from err
        if kind == "rate_limit":
            if tries.rate < s.rate_limit_retries and (ra is None or ra <= s.rate_limit_wait_cap):
                wait = ra if ra is not None else self.backoff(tries.rate)
                tries.rate += 1
                att.next = f"waited {wait:.3g}s, retried"
                return wait
            why = (f"retry-after {ra:g}s over the {s.rate_limit_wait_cap:g}s cap"
                   if ra is not None and ra > s.rate_limit_wait_cap
                   else f"still rate-limited after {tries.rate} retries")
            self.burns.burn_model(rm.id, f"rate_limit: {why}")
            att.next = f"burned model ({why}); next model"
            return None
        if kind in TRANSIENT:
            if tries.transient < s.transient_retries:
                # a 529 may say how long to wait; a short wait is honoured, else backoff
                wait = ra if ra is not None and ra <= s.rate_limit_wait_cap else self.backoff(tries.transient)
                tries.transient += 1
                att.next = f"backed off {wait:.3g}s, retried"
                return wait
            att.next = f"gave up after {tries.transient} retries; next model"
            return None
        if kind in ("quota", "auth"):
            self.burns.burn_provider(rm.provider_name, f"{kind}: {_message(err.message, 120)}")
            att.next = f"burned every model of provider {rm.provider_name}; next model"
        elif kind == "model_not_found":
            self.burns.burn_model(rm.id, f"model_not_found: {_message(err.message, 120)}")
            att.next = "burned model; next model"
        elif kind == "context_overflow":
            walk.min_window = max(walk.min_window, rm.context_window)
            att.next = f"next model with a context window over {rm.context_window:,}"
        else:
            att.next = "next model"  # an unknown kind: do not loop on it
        return None


PROGRESS_EVERY = 1.0  # seconds between updates of a streaming call's started row


def _estimate_input(request: ChatRequest) -> int:
    """The request's input tokens, estimated locally (chars / 4) before anything is sent."""
    from anvil.retrieval.tokens import estimate_tokens  # lazy: the retrieval package costs ~65 ms to import

    parts = [m.content for m in request.messages]
    parts += [f"{t.name} {t.description} {t.parameters}" for t in request.tools]
    return estimate_tokens("".join(parts))


class _Meter:
    """What a call has streamed so far: the provider's usage when it said, else estimates."""

    def __init__(self, input_estimate: int, t0: float) -> None:
        self.input_estimate = input_estimate
        self.chars = 0
        self.reported: Usage | None = None  # the last UsageUpdate's
        self.last = t0
        self.updated = False

    def see(self, event: StreamEvent, now: float) -> bool:
        """Count one stream event; True when the started row is due for an update."""
        if isinstance(event, (TextDelta, ReasoningDelta)):
            self.chars += len(event.text)
        elif isinstance(event, ToolCallDelta):
            self.chars += len(event.arguments_fragment) + len(event.name or "")
        elif isinstance(event, UsageUpdate):
            self.reported = event.usage
        else:
            return False
        if not self.updated or now - self.last >= PROGRESS_EVERY:
            self.updated, self.last = True, now
            return True
        return False

    def counted(self) -> tuple[Usage, bool]:
        """(usage so far, whether any part of it is an estimate)."""
        u = self.reported or Usage()
        out_estimate = (self.chars + 3) // 4
        estimated = u.input_tokens == 0 or out_estimate > u.output_tokens
        return replace(u, input_tokens=u.input_tokens or self.input_estimate,
                        output_tokens=max(u.output_tokens, out_estimate)), estimated


@dataclass
class _Walk:
    """The state of one call's walk down the chain."""

    attempts: list[Attempt] = field(default_factory=list)
    number: int = 0  # attempts made (1-based numbers in the ledger)
    min_window: int = 0  # after a context overflow: only models with a larger window


@dataclass
class _Tries:
    """Retries spent on the current model."""

    rate: int = 0
    transient: int = 0
