"""Prices: one path for every dollar anvil shows.

`model_price` gives a model's per-million-token list prices for ranking and
`policy explain`: the models.yaml override wins, local models are free, else
the bundled `genai-prices` table (never fetched from the internet at run
time), else unknown. Unknown is `None`, shown as "unknown", never as $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

PriceSource = Literal["table", "override", "free", "unpriced"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. `None` means unknown."""

    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    source: PriceSource = "unpriced"

    @property
    def known(self) -> bool:
        return self.source in ("table", "override", "free")

    def sort_key(self) -> tuple[int, Decimal]:
        """Free first, then cheapest (input + output), unknown last."""
        if self.source == "free":
            return (0, Decimal(0))
        if self.input is None or self.output is None:
            return (2, Decimal(0))
        return (1, self.input + self.output)


FREE = ModelPrice(Decimal(0), Decimal(0), Decimal(0), Decimal(0), "free")
UNPRICED = ModelPrice(None, None, None, None, "unpriced")


@lru_cache(maxsize=1)
def genai_prices_version() -> str:
    from importlib.metadata import version

    return version("genai-prices")


def _base(value: Any) -> Decimal | None:
    """A table price may be tiered by context length: the base tier is the list price."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)
    return base if isinstance(base, Decimal) else None


def table_model_info(wire_name: str, price_list: str | None) -> Any | None:
    """The genai-prices ModelInfo for a model, or None when the table does not know it."""
    from genai_prices.data_snapshot import get_snapshot

    try:
        _provider, info = get_snapshot().find_provider_model(wire_name, None, price_list, None)
    except LookupError:
        return None
    except Exception:  # the table raises its own error types for unknown refs
        return None
    return info


def model_price(model: Any, provider: Any, at: datetime | None = None) -> ModelPrice:
    """List prices of a catalogue model (a `ModelEntry` with its `ProviderEntry`)."""
    from anvil.config.schema import LOCAL_KINDS

    override = getattr(model, "price", None)
    if override is not None:
        if override.free:
            return FREE
        return ModelPrice(override.input, override.output, override.cache_read, override.cache_write, "override")
    if provider.kind in LOCAL_KINDS:
        return FREE
    info = table_model_info(model.wire_name, provider.price_list or provider.kind)
    if info is None:
        return UNPRICED
    prices = info.get_prices(at or datetime.now(timezone.utc))
    inp, out = _base(prices.input_mtok), _base(prices.output_mtok)
    if inp is None or out is None:
        return UNPRICED
    return ModelPrice(inp, out, _base(prices.cache_read_mtok), _base(prices.cache_write_mtok), "table")
