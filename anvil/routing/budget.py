"""Budgets: a circuit breaker checked before every call (DESIGN.md 5).

The run budget (`budget:` in stage-policy.yaml: dollars and tokens) and an
optional per-stage `max_dollars` are compared with what the ledger says the run
has spent so far. A call that would START past a limit raises `BudgetExceeded`
(exit code 5); a call already under way finishes (it is already paid for).
Unpriced attempts count as unknown: they cannot push the dollar total, and the
message says how many there were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from anvil.errors import EXIT_BUDGET, AnvilError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.ledger.db import Ledger


class BudgetExceeded(AnvilError):
    exit_code = EXIT_BUDGET

    def __init__(self, message: str, *, spent: Decimal, tokens: int, limit: str) -> None:
        super().__init__(message, hint="raise it with `anvil resume RUN --budget N` "
                                       "or `budget:` in stage-policy.yaml")
        self.spent = spent
        self.tokens = tokens
        self.limit = limit


def _money(d: Decimal) -> str:
    return f"${d.quantize(Decimal('0.0001'))}" if d >= Decimal("0.0001") or d == 0 else f"${d}"


@dataclass
class BudgetGuard:
    """Checks one run's spend (from the ledger) against its limits before each call."""

    ledger: Ledger | None  # None: no ledger, nothing to check against
    run_id: str
    max_dollars: Decimal | None = None
    max_tokens: int | None = None
    stage_caps: Mapping[str, Decimal] = field(default_factory=dict)
    # per stage: tokens past which the stage is a runaway (k x its historical 90th percentile)
    runaway_tokens: Mapping[str, int] = field(default_factory=dict)
    stop_runaway: bool = False  # budget.max_tokens: auto
    on_runaway: Callable[[str, int, int], None] | None = None  # (stage, tokens, limit): flag it
    _flagged: set[str] = field(default_factory=set)

    @classmethod
    def from_config(cls, config: Config, ledger: Ledger | None, run_id: str, *,
                    on_runaway: Callable[[str, int, int], None] | None = None) -> BudgetGuard:
        policy = config.policy
        caps: dict[str, Decimal] = {
            name: st.max_dollars for name, st in policy.stages.items() if st.max_dollars is not None
        }
        auto = policy.budget.max_tokens == "auto"
        max_tokens = None if auto or policy.budget.max_tokens is None else int(policy.budget.max_tokens)
        runaway = runaway_limits(ledger, policy.budget.runaway_factor) if ledger is not None else {}
        return cls(ledger, run_id, policy.budget.max_dollars, max_tokens, caps, runaway, auto, on_runaway)

    @property
    def active(self) -> bool:
        return (self.max_dollars is not None or self.max_tokens is not None or bool(self.stage_caps)
                or bool(self.runaway_tokens))

    def check(self, stage: str) -> None:
        if not self.active:
            return
        if self.ledger is None:  # a limit that cannot be checked must not pass silently
            raise AnvilError("a budget is set but this run has no ledger to check it against")
        spend = self.ledger.spend(self.run_id)
        unknown = (f" (plus {spend.unpriced} attempt(s) of unknown price)" if spend.unpriced else "")
        if self.max_dollars is not None and spend.dollars >= self.max_dollars:
            raise BudgetExceeded(
                f"budget reached before the next {stage} call: run {self.run_id} has spent "
                f"{_money(spend.dollars)}{unknown} of its {_money(Decimal(self.max_dollars))} budget",
                spent=spend.dollars, tokens=spend.tokens, limit="max_dollars")
        if self.max_tokens is not None and spend.tokens >= self.max_tokens:
            raise BudgetExceeded(
                f"token budget reached before the next {stage} call: run {self.run_id} has used "
                f"{spend.tokens:,} of its {self.max_tokens:,} tokens ({_money(spend.dollars)}{unknown})",
                spent=spend.dollars, tokens=spend.tokens, limit="max_tokens")
        self._check_runaway(stage)
        cap = self.stage_caps.get(stage)
        if cap is not None:
            stage_spend = self.ledger.spend(self.run_id, stage)
            if stage_spend.dollars >= cap:
                raise BudgetExceeded(
                    f"stage {stage} reached its max_dollars cap: it has spent "
                    f"{_money(stage_spend.dollars)} of {_money(Decimal(cap))} in run {self.run_id} "
                    f"(run total {_money(spend.dollars)}{unknown})",
                    spent=spend.dollars, tokens=spend.tokens, limit=f"stages.{stage}.max_dollars")

    def _check_runaway(self, stage: str) -> None:
        limit = self.runaway_tokens.get(stage)
        if limit is None or self.ledger is None:
            return
        used = self.ledger.spend(self.run_id, stage).tokens
        if used <= limit:
            return
        if self.stop_runaway:
            raise BudgetExceeded(
                f"stage {stage} ran away: {used:,} tokens in this run, past {limit:,} "
                f"(its 90th percentile in the ledger's history times the runaway factor)",
                spent=self.ledger.spend(self.run_id).dollars, tokens=used, limit="max_tokens: auto")
        if stage not in self._flagged and self.on_runaway is not None:
            self._flagged.add(stage)
            self.on_runaway(stage, used, limit)


RUNAWAY_MIN_RUNS = 5  # runs of history a stage needs before it can be called a runaway


def runaway_limits(ledger: Ledger, factor: float) -> dict[str, int]:
    """Per stage: `factor` times the 90th percentile of its tokens per run, over the ledger's pipeline runs."""
    from anvil.evidence.forecast import percentile, stage_history

    out = {}
    for stage, tokens in stage_history(ledger).items():
        if len(tokens) >= RUNAWAY_MIN_RUNS:
            out[stage] = int(percentile(tokens, 0.9) * factor)
    return out
