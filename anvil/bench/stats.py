"""What a set of result rows says: per policy summaries with Wilson intervals, and policy pairs."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from anvil.bench.results import TOKEN_KINDS, ResultRow
from anvil.ledger.db import dec_text

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n (0..1); (0, 1) when n is 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0/n and n/n,
    which small benchmarks hit all the time."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class PolicySummary:
    policy: str
    tasks: int = 0  # tasks that ran and were verified
    resolved: int = 0
    errors: int = 0  # tasks that could not run or be verified (left out of the rates)
    dollars: Decimal = Decimal(0)
    unpriced_calls: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_KINDS, 0))
    calls: int = 0
    wall_s: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.resolved / self.tasks if self.tasks else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.resolved, self.tasks)

    @property
    def per_task(self) -> Decimal | None:
        return self.dollars / self.tasks if self.tasks else None

    @property
    def per_resolved(self) -> Decimal | None:
        return self.dollars / self.resolved if self.resolved else None

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.interval
        money = (lambda d: None if d is None else dec_text(d.quantize(Decimal("0.000001"))))  # noqa: E731
        return {"tasks": self.tasks, "resolved": self.resolved, "policy": self.policy, "errors": self.errors,
                "resolved_rate": round(self.rate, 4), "resolved_ci95": [round(lo, 4), round(hi, 4)],
                "dollars": dec_text(self.dollars), "dollars_per_task": money(self.per_task),
                "dollars_per_resolved": money(self.per_resolved), "unpriced_calls": self.unpriced_calls,
                "tokens": dict(self.tokens), "calls": self.calls,
                "wall_s_per_task": round(self.wall_s / self.tasks, 2) if self.tasks else None,
                "failures_by_stage": dict(self.failures.most_common())}


def summarise(rows: list[ResultRow], order: list[str] | None = None) -> list[PolicySummary]:
    """One summary per policy: in `order` (the bench's --policy order), then as first seen."""
    out: dict[str, PolicySummary] = {name: PolicySummary(name) for name in order or []
                                     if any(r.policy == name for r in rows)}
    for r in rows:
        s = out.setdefault(r.policy, PolicySummary(r.policy))
        if not r.done:
            s.errors += 1
            continue
        s.tasks += 1
        s.resolved += int(r.resolved)
        s.dollars += Decimal(r.dollars or "0")
        s.unpriced_calls += r.unpriced_calls
        for k in TOKEN_KINDS:
            s.tokens[k] += int(r.tokens.get(k, 0))
        s.calls += r.calls
        s.wall_s += r.wall_s
        if not r.resolved:
            s.failures[r.failure_stage or "unknown"] += 1
    return list(out.values())


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    both: int
    only_a: int
    only_b: int
    neither: int

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "tasks": self.both + self.only_a + self.only_b + self.neither,
                "both": self.both, "only_a": self.only_a, "only_b": self.only_b, "neither": self.neither}


def pairs(rows: list[ResultRow], order: list[str] | None = None) -> list[Pair]:
    """Every two policies on the tasks both ran: resolved by both, by only one, by neither."""
    by: dict[str, dict[str, bool]] = {name: {} for name in order or [] if any(r.policy == name for r in rows)}
    for r in rows:
        if r.done:
            by.setdefault(r.policy, {})[r.task] = r.resolved
    names = list(by)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = by[a].keys() & by[b].keys()
            out.append(Pair(a, b, sum(by[a][t] and by[b][t] for t in common),
                            sum(by[a][t] and not by[b][t] for t in common),
                            sum(by[b][t] and not by[a][t] for t in common),
                            sum(not by[a][t] and not by[b][t] for t in common)))
    return out
