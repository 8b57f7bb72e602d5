"""Per stage and model: attempts, success rate with a credible interval, dollars per attempt and per success.

Read from the ledger's `outcomes` table (anvil.evidence.outcomes). "Expected
dollars per success" of a model is what an attempt costs divided by its
success rate: the price of a success *including* the failed attempts a stage
pays for before one succeeds on that model. A chain's figure adds what its
failures cost before the escalation that succeeded (`chain_cost`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from anvil.evidence import beta
from anvil.ledger.db import Ledger, from_pico


@dataclass(frozen=True)
class ModelStats:
    stage: str
    model: str
    attempts: int
    successes: int
    dollars: Decimal  # priced part of all its attempts
    unpriced: int  # calls of unknown price among them
    tokens: int

    @property
    def rate(self) -> float:
        """Posterior mean (uniform prior): never 0 or 1 from a handful of attempts."""
        a, b = beta.posterior(self.successes, self.attempts)
        return a / (a + b)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        return beta.interval(self.successes, self.attempts, level)

    def prob_above(self, threshold: float) -> float:
        return beta.prob_above(threshold, self.successes, self.attempts)

    @property
    def dollars_per_attempt(self) -> Decimal:
        return self.dollars / self.attempts if self.attempts else Decimal(0)

    @property
    def tokens_per_attempt(self) -> float:
        return self.tokens / self.attempts if self.attempts else 0.0

    @property
    def dollars_per_success(self) -> Decimal | None:
        """Expected dollars per success on this model alone; None when part of it is unpriced."""
        if self.unpriced:
            return None
        return self.dollars_per_attempt / Decimal(str(self.rate))

    def to_json(self) -> dict[str, object]:
        lo, hi = self.interval()
        per = self.dollars_per_success
        return {"stage": self.stage, "model": self.model, "attempts": self.attempts, "successes": self.successes,
                "success_rate": round(self.rate, 4), "interval_95": [round(lo, 4), round(hi, 4)],
                "dollars": str(self.dollars), "unpriced_calls": self.unpriced,
                "dollars_per_attempt": str(self.dollars_per_attempt.quantize(Decimal("1e-6"))),
                "tokens_per_attempt": round(self.tokens_per_attempt),
                "dollars_per_success": None if per is None else str(per.quantize(Decimal("1e-6")))}


def load(ledger: Ledger, *, stage: str | None = None, repo: str | None = None,
         include_demo: bool = False) -> list[ModelStats]:
    where, args = [], []
    if stage:
        where.append("stage = ?")
        args.append(stage)
    if repo is not None:
        where.append("repo = ?")
        args.append(repo)
    if not include_demo:
        where.append("demo = 0")
    sql = ("SELECT stage, model, COUNT(*), SUM(success), COALESCE(SUM(pico_usd), 0), SUM(unpriced), SUM(tokens) "
           "FROM outcomes" + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY stage, model "
           "ORDER BY stage, model")
    rows = ledger.conn.execute(sql, args).fetchall()
    return [ModelStats(s, m, int(n), int(ok), from_pico(int(pico)) or Decimal(0), int(unp), int(tok))
            for s, m, n, ok, pico, unp, tok in rows]


def chain_cost(chain: Sequence[ModelStats], retries: int) -> Decimal | None:
    """Expected dollars per success of walking `chain`, `retries` extra attempts on its last model.

    Attempt i is reached only if every attempt before it failed; the figure is the
    expected spend divided by the chance that some attempt succeeds.
    """
    if not chain:
        return None
    steps = list(chain) + [chain[-1]] * max(retries - len(chain) + 1, 0)
    spent, reach = Decimal(0), Decimal(1)
    for m in steps:
        if m.unpriced:
            return None
        spent += reach * m.dollars_per_attempt
        reach *= Decimal(str(1.0 - m.rate))
    solved = 1 - reach
    return spent / solved if solved > 0 else None
