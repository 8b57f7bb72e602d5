"""Sane ranges for what a provider reports about a call, before it reaches the ledger.

A server's `usage` is untrusted bytes: 10^18 tokens overflowed SQLite's integers (the
row was lost), a negative count stored negative spend. Counts are clamped to
[0, MAX_TOKENS] (and the cache and reasoning parts to the whole they belong to); a
reported cost outside [0, MAX_CALL_DOLLARS] is not believed. Whatever was changed is
said in the row's `flags`, so the row is kept, and visibly odd.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from anvil.providers.types import Usage

MAX_TOKENS = 100_000_000  # 50x the largest context window on sale; one call cannot be more
MAX_CALL_DOLLARS = Decimal(10_000)


def clamp_usage(usage: Usage) -> tuple[Usage, list[str]]:
    """(usage within range, what was out of range)."""
    flags: list[str] = []
    values: dict[str, int] = {}
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        raw = getattr(usage, name)
        try:
            v = int(raw)
        except (TypeError, ValueError, OverflowError):
            v = 0
        if v < 0 or v > MAX_TOKENS or v != raw:
            flags.append(f"{name}={raw}")
            v = min(max(v, 0), MAX_TOKENS)
        values[name] = v
    for part, whole in (("cache_read_tokens", "input_tokens"), ("cache_write_tokens", "input_tokens"),
                        ("reasoning_tokens", "output_tokens")):
        if values[part] > values[whole]:
            flags.append(f"{part}={values[part]}>{whole}")
            values[part] = values[whole]
    if values["cache_read_tokens"] + values["cache_write_tokens"] > values["input_tokens"]:
        flags.append("cache parts exceed input_tokens")
        values["cache_write_tokens"] = values["input_tokens"] - values["cache_read_tokens"]
    return (replace(usage, **values) if flags else usage), flags


def sane_cost(cost: Decimal | None) -> tuple[Decimal | None, list[str]]:
    """A provider-reported cost, or None (priced from the table instead) when it is not believable."""
    if cost is None:
        return None, []
    try:
        ok = cost.is_finite() and Decimal(0) <= cost <= MAX_CALL_DOLLARS
    except (AttributeError, ArithmeticError):
        ok = False
    return (cost, []) if ok else (None, [f"provider_cost={cost}"])
