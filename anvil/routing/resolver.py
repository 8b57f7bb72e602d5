"""The resolver: a stage's policy + the catalogue + availability -> an ordered chain.

Pure: no I/O, no clock. Filter the catalogue (capability, complexity, context
needed, provider usable), then order the survivors by the stage's tier
preference, inside a tier by price (free first, cheapest next, unknown last),
then by YAML order. A pinned `model` or explicit `chain` keeps its own order.
`anvil policy explain` prints exactly what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anvil.ledger.pricing import ModelPrice, model_price

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.config.schema import ModelEntry, ProviderEntry, StagePolicy
    from anvil.evidence.stats import ModelStats
    from anvil.routing.availability import Availability

_COMPLEXITY_RANK = {"S": 0, "M": 1, "L": 2}


@dataclass(frozen=True)
class ResolvedModel:
    model: ModelEntry
    provider_name: str
    provider: ProviderEntry
    price: ModelPrice

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def tier(self) -> str:
        return self.model.tier

    @property
    def context_window(self) -> int:
        return self.model.context_window


@dataclass(frozen=True)
class Excluded:
    model_id: str
    reason: str


@dataclass(frozen=True)
class Resolution:
    stage: str
    chain: list[ResolvedModel] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    routing: str = ""  # how the chain was built: "prefer local > cheap", "pinned", "chain"


def _tier_order(prefer: tuple[str, ...], offset: int) -> tuple[str, ...]:
    """Escalation drops the first `offset` tiers, keeping at least the last one."""
    if offset <= 0:
        return prefer
    return prefer[min(offset, len(prefer) - 1):]


def _why_not(
    model: ModelEntry, stage: StagePolicy, need_ctx: int, availability: Mapping[str, Availability]
) -> str | None:
    missing = [c for c in stage.capability if c not in model.capabilities]
    if missing:
        return f"missing capability: {', '.join(missing)}"
    if _COMPLEXITY_RANK[model.complexity_max] < _COMPLEXITY_RANK[stage.complexity]:
        return f"complexity too high: stage needs {stage.complexity}, model handles up to {model.complexity_max}"
    if need_ctx and model.context_window < need_ctx:
        return f"context too small: {model.context_window:,} < {need_ctx:,} tokens needed"
    avail = availability.get(model.provider)
    if avail is not None and not avail.usable:
        return f"provider {model.provider} unusable: {avail.reason}"
    return None


def resolve_stage(stage_name: str, config: Config, availability: Mapping[str, Availability], *,
                  context_needed: int | None = None, tier_offset: int = 0,
                  pinned_model: str | None = None, evidence: Mapping[str, ModelStats] | None = None) -> Resolution:
    """The ordered chain of models for one stage (see the module docstring)."""
    stage = config.policy.stage(stage_name)
    catalogue = config.catalogue
    need_ctx = max(context_needed or 0, stage.context_needed)
    models = list(catalogue.models)
    excluded: list[Excluded] = []

    def resolved(m: ModelEntry) -> ResolvedModel:
        provider = catalogue.providers[m.provider]
        return ResolvedModel(m, m.provider, provider, model_price(m, provider))

    explicit = [pinned_model] if pinned_model else ([stage.model] if stage.model else list(stage.chain or ()))
    if explicit:
        by_id = {m.id: m for m in models}
        chain: list[ResolvedModel] = []
        for mid in explicit:
            m = by_id.get(mid)
            if m is None:
                excluded.append(Excluded(mid, "not in the catalogue"))
                continue
            # A pin is the user's explicit choice: only hard blockers remove it.
            avail = availability.get(m.provider)
            if avail is not None and not avail.usable:
                excluded.append(Excluded(mid, f"provider {m.provider} unusable: {avail.reason}"))
            elif need_ctx and m.context_window < need_ctx:
                excluded.append(Excluded(mid, f"context too small: {m.context_window:,} < {need_ctx:,} tokens needed"))
            else:
                chain.append(resolved(m))
        for m in models:
            if m.id not in explicit:
                excluded.append(Excluded(m.id, "not in the stage's pinned model/chain"))
        how = "pinned model" if (pinned_model or stage.model) else "explicit chain"
        return Resolution(stage_name, chain, excluded, how)

    tiers = _tier_order(tuple(stage.prefer or ("local", "cheap", "premium")), tier_offset)
    survivors: list[tuple[int, tuple[int, Any], int, ResolvedModel]] = []
    for index, m in enumerate(models):
        if m.tier not in tiers:
            excluded.append(Excluded(m.id, f"tier {m.tier} not in prefer [{', '.join(tiers)}]"))
            continue
        reason = _why_not(m, stage, need_ctx, availability)
        if reason:
            excluded.append(Excluded(m.id, reason))
            continue
        r = resolved(m)
        survivors.append((tiers.index(m.tier), r.price.sort_key(), index, r))
    survivors.sort(key=lambda t: (t[0], t[1], t[2]))
    chain = [s[3] for s in survivors]
    if stage.order == "expected_cost" and evidence:
        return Resolution(stage_name, by_expected_cost(chain, evidence), excluded,
                          "expected cost per success (ledger evidence), then prefer " + " > ".join(tiers))
    return Resolution(stage_name, chain, excluded, "prefer " + " > ".join(tiers))


MIN_EVIDENCE = 5  # attempts of a model at a stage before its record may move it up the chain


def by_expected_cost(chain: list[ResolvedModel], evidence: Mapping[str, ModelStats]) -> list[ResolvedModel]:
    """Models with enough priced evidence first, cheapest success first; the others after, in their order."""
    def known(r: ResolvedModel) -> bool:
        s = evidence.get(r.id)
        return s is not None and s.attempts >= MIN_EVIDENCE and s.dollars_per_success is not None

    first = sorted((r for r in chain if known(r)), key=lambda r: evidence[r.id].dollars_per_success or 0)
    return first + [r for r in chain if not known(r)]
