"""What a run will cost before it starts: per stage, the median and 90th percentile of tokens and dollars.

From this repository's history when it has enough runs, else every repository's,
else priced defaults (a typical token count per stage at the price of the first
model of the stage's chain). No model is called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from anvil.ledger.db import Ledger, from_pico
from anvil.ledger.migrations import unpriced_sql
from anvil.stages.names import STAGES

MIN_RUNS = 3  # fewer runs than this in a scope: look wider
# Typical tokens (input + output) per stage on a small change, for a ledger with no history.
DEFAULT_TOKENS: dict[str, int] = {"clarify": 3_000, "plan": 14_000, "build": 24_000, "test": 10_000,
                                  "validate": 5_000, "review": 14_000, "ship": 3_000}
DEFAULT_OUTPUT_SHARE = Decimal("0.2")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    s = sorted(values)
    k = min(len(s), max(1, math.ceil(q * len(s)))) - 1
    return s[k]


@dataclass(frozen=True)
class StageForecast:
    stage: str
    source: str  # "repo" / "all" / "default"
    runs: int
    tokens_p50: int
    tokens_p90: int
    dollars_p50: Decimal | None
    dollars_p90: Decimal | None

    def to_json(self) -> dict[str, object]:
        return {"stage": self.stage, "source": self.source, "runs": self.runs, "tokens_p50": self.tokens_p50,
                "tokens_p90": self.tokens_p90,
                "dollars_p50": None if self.dollars_p50 is None else str(self.dollars_p50),
                "dollars_p90": None if self.dollars_p90 is None else str(self.dollars_p90)}


@dataclass(frozen=True)
class Forecast:
    stages: list[StageForecast]
    total_tokens: tuple[int, int]
    total_dollars: tuple[Decimal | None, Decimal | None]
    source: str
    runs: int

    def to_json(self) -> dict[str, object]:
        lo, hi = self.total_dollars
        return {"source": self.source, "runs": self.runs, "stages": [s.to_json() for s in self.stages],
                "total_tokens": {"p50": self.total_tokens[0], "p90": self.total_tokens[1]},
                "total_dollars": {"p50": None if lo is None else str(lo), "p90": None if hi is None else str(hi)}}


def _history(ledger: Ledger, repo: str | None) -> dict[str, dict[str, tuple[int, Decimal | None]]]:
    """run id -> stage -> (tokens, dollars or None when part is unpriced), pipeline runs only."""
    sql = (f"SELECT run_id, stage, SUM(input_tokens + output_tokens), COALESCE(SUM(pico_usd), 0), "
           f"SUM({unpriced_sql()}) FROM attempts WHERE demo = 0 AND run_id NOT LIKE 'ask-%' "
           f"AND stage IN ({', '.join('?' * len(STAGES))})")
    args: list[object] = list(STAGES)
    if repo is not None:
        sql += " AND repo = ?"
        args.append(repo)
    runs: dict[str, dict[str, tuple[int, Decimal | None]]] = {}
    for run_id, stage, tokens, pico, unpriced in ledger.conn.execute(sql + " GROUP BY run_id, stage", args):
        dollars = None if unpriced else (from_pico(int(pico)) or Decimal(0))
        runs.setdefault(run_id, {})[stage] = (int(tokens or 0), dollars)
    return runs


def stage_history(ledger: Ledger, repo: str | None = None) -> dict[str, list[float]]:
    """Per stage: its tokens in each past pipeline run."""
    out: dict[str, list[float]] = {}
    for stages in _history(ledger, repo).values():
        for stage, (tokens, _) in stages.items():
            out.setdefault(stage, []).append(float(tokens))
    return out


def _dollars(values: list[Decimal | None], q: float) -> Decimal | None:
    if any(v is None for v in values):
        return None
    return Decimal(str(percentile([float(v) for v in values if v is not None], q))).quantize(Decimal("1e-6"))


def forecast(ledger: Ledger | None, repo: str | None,
             default_price: dict[str, tuple[Decimal | None, Decimal | None]]) -> Forecast:
    """`default_price`: per stage, (input, output) USD per million of its chain's first model."""
    runs: dict[str, dict[str, tuple[int, Decimal | None]]] = {}
    source = "default"
    if ledger is not None:
        for scope, key in ((repo, "repo"), (None, "all")):
            runs = _history(ledger, scope)
            if len(runs) >= MIN_RUNS:
                source = key
                break
        else:
            runs = {}
    stages = []
    for name in STAGES:
        seen = [r[name] for r in runs.values() if name in r]
        if seen:
            toks = [float(t) for t, _ in seen]
            dols = [d for _, d in seen]
            stages.append(StageForecast(name, source, len(seen), int(percentile(toks, 0.5)),
                                        int(percentile(toks, 0.9)), _dollars(dols, 0.5), _dollars(dols, 0.9)))
            continue
        tokens = DEFAULT_TOKENS[name]
        inp, outp = default_price.get(name, (None, None))
        cost = None
        if inp is not None and outp is not None:
            out_tokens = Decimal(tokens) * DEFAULT_OUTPUT_SHARE
            cost = ((Decimal(tokens) - out_tokens) * inp + out_tokens * outp) / Decimal(1_000_000)
            cost = cost.quantize(Decimal("1e-6"))
        stages.append(StageForecast(name, "default", 0, tokens, tokens * 2, cost, None if cost is None else cost * 2))
    if runs:
        totals_t = [float(sum(t for t, _ in r.values())) for r in runs.values()]
        totals_d: list[Decimal | None] = [None if any(d is None for _, d in r.values())
                                          else sum((d for _, d in r.values() if d is not None), Decimal(0))
                                          for r in runs.values()]
        total_tokens = (int(percentile(totals_t, 0.5)), int(percentile(totals_t, 0.9)))
        total_dollars = (_dollars(totals_d, 0.5), _dollars(totals_d, 0.9))
    else:
        total_tokens = (sum(s.tokens_p50 for s in stages), sum(s.tokens_p90 for s in stages))
        lo = [s.dollars_p50 for s in stages]
        hi = [s.dollars_p90 for s in stages]
        total_dollars = (None if None in lo else sum((x for x in lo if x is not None), Decimal(0)),
                         None if None in hi else sum((x for x in hi if x is not None), Decimal(0)))
    return Forecast(stages, total_tokens, total_dollars, source, len(runs))
