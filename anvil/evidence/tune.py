"""`anvil policy tune`: per stage, the chain that minimises expected dollars per success, where evidence allows.

A model is *eligible* for a stage when its posterior says, with probability at
least `confidence`, that its success rate is above `min_success`. Eligible
models go first, cheapest success first (ordering attempts by cost over success
chance minimises the expected spend of "try until one succeeds"); the rest of
the user's chain follows in the user's order, as fallbacks. Where no model has
enough evidence either way, the user's order is kept and the proposal says how
many more attempts would settle it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml

from anvil.evidence.stats import ModelStats, chain_cost

MAX_SETTLE = 500  # attempts: beyond this, "settle" is not a useful number


@dataclass
class Proposal:
    stage: str
    current: list[str]
    proposed: list[str]
    evidence: dict[str, ModelStats] = field(default_factory=dict)
    eligible: list[str] = field(default_factory=list)
    note: str = ""  # why the order is kept, or what would settle it
    current_cost: Decimal | None = None
    proposed_cost: Decimal | None = None

    @property
    def changed(self) -> bool:
        return self.proposed != self.current

    def to_json(self) -> dict[str, object]:
        return {"stage": self.stage, "current": self.current, "proposed": self.proposed, "changed": self.changed,
                "eligible": self.eligible, "note": self.note,
                "current_dollars_per_success": None if self.current_cost is None else str(self.current_cost),
                "proposed_dollars_per_success": None if self.proposed_cost is None else str(self.proposed_cost),
                "evidence": [s.to_json() for s in self.evidence.values()]}


def settle_after(s: ModelStats, min_success: float, confidence: float) -> int | None:
    """More attempts, at the rate seen so far, before the evidence says yes or no (None: not within reach)."""
    rate = s.successes / s.attempts if s.attempts else 0.5
    for extra in range(1, MAX_SETTLE + 1):
        ok = s.successes + round(rate * extra)
        more = ModelStats(s.stage, s.model, s.attempts + extra, ok, s.dollars, s.unpriced, s.tokens)
        p = more.prob_above(min_success)
        if p >= confidence or p <= 1 - confidence:
            return extra
    return None


def propose(stage: str, current: Sequence[str], stats: Sequence[ModelStats], *, min_success: float,
            confidence: float, retries: int) -> Proposal:
    by_model = {s.model: s for s in stats if s.stage == stage}
    prop = Proposal(stage, list(current), list(current), {m: by_model[m] for m in current if m in by_model})
    eligible = [m for m in current if m in by_model and by_model[m].prob_above(min_success) >= confidence
                and by_model[m].dollars_per_success is not None]
    prop.eligible = eligible
    if not eligible:
        tried = [by_model[m] for m in current if m in by_model]
        if not tried:
            prop.note = "no attempts recorded for this stage's models: keeping your order"
            return prop
        best = max(tried, key=lambda s: s.rate)
        n = settle_after(best, min_success, confidence)
        prop.note = (f"not enough evidence: keeping your order; about {n} more attempt(s) of {best.model} would "
                     f"settle whether it clears {min_success:.0%}" if n else
                     f"no model clears {min_success:.0%} with {confidence:.0%} confidence: keeping your order")
        return prop
    ordered = sorted(eligible, key=lambda m: by_model[m].dollars_per_success or Decimal("Infinity"))
    prop.proposed = ordered + [m for m in current if m not in ordered]
    known = lambda chain: [by_model[m] for m in chain if m in by_model]  # noqa: E731
    prop.current_cost = chain_cost(known(current), retries)
    prop.proposed_cost = chain_cost(known(prop.proposed), retries)
    below = [m for m in current if m not in ordered]
    if below:
        prop.note = f"kept last, as fallbacks only (not shown to clear {min_success:.0%}): {', '.join(below)}"
    return prop


def evidence_line(s: ModelStats) -> str:
    lo, hi = s.interval()
    per = s.dollars_per_success
    cost = f"${per:.4f}/success" if per is not None else "unpriced"
    return f"{s.model}: {s.successes}/{s.attempts} ok ({s.rate:.0%}, 95% {lo:.0%}-{hi:.0%}), {cost}"


def render_diff(proposals: Sequence[Proposal]) -> str:
    """The change as a diff of stage-policy.yaml, the evidence in comments."""
    out = ["--- stage-policy.yaml (current)", "+++ stage-policy.yaml (tuned)", " stages:"]
    for p in proposals:
        if not p.changed:
            continue
        out.append(f"   {p.stage}:")
        out.append(f"-    chain: [{', '.join(p.current)}]")
        out.append(f"+    chain: [{', '.join(p.proposed)}]")
        for m in p.proposed:
            if m in p.evidence:
                out.append(f"+    # {evidence_line(p.evidence[m])}")
    return "\n".join(out) + "\n"


def write_layer(path: Path, proposals: Sequence[Proposal]) -> list[str]:
    """Set each changed stage's `chain` in the layer file at `path` (created if missing); returns the stages."""
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None) or {}
    stages = data.setdefault("stages", {}) or {}
    data["stages"] = stages
    written = []
    for p in proposals:
        if not p.changed:
            continue
        entry = stages.get(p.stage) or {}
        for key in ("prefer", "model"):  # an explicit chain replaces tier preference and a pinned model
            entry.pop(key, None)
        entry["chain"] = list(p.proposed)
        stages[p.stage] = entry
        written.append(p.stage)
    if written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return written
