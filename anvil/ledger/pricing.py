"""Prices: one path for every dollar anvil shows.

`model_price` gives a model's per-million-token list prices for ranking and
`policy explain`: the models.yaml override wins, local models are free, else
the bundled `genai-prices` table (never fetched from the internet at run
time), else unknown. Unknown is `None`, shown as "unknown", never as $0.

`call_cost` prices one attempt for the ledger by the same order, with the
provider's own reported cost first, the table at the call's time for the
served model (long-context tiers and cache read/write prices included), and
`cost report --baseline` prices through it too: there is no second table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from anvil.config.kinds import LOCAL_KINDS

if TYPE_CHECKING:
    from anvil.config.schema import ModelEntry, PriceOverride, ProviderEntry
    from anvil.providers.types import Usage

PriceSource = Literal["table", "override", "free", "unpriced"]
# Where a call's dollars came from (DESIGN.md 7): the provider's own figure, or a price source.
CostSource = Literal["provider", "table", "override", "free", "unpriced"]
MILLION = Decimal(1_000_000)

# Subscription CLIs bill through their vendor's account: price them from the vendor's list
# (API-equivalent dollars) unless the CLI reports a cost itself or models.yaml says otherwise.
_PRICE_LIST_BY_KIND = {"claude_cli": "anthropic", "gemini_cli": "google", "codex_cli": "openai",
                       "gemini": "google"}


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


def price_list_id(provider: ProviderEntry) -> str:
    """The genai-prices provider id that prices a provider entry's models."""
    return provider.price_list or _PRICE_LIST_BY_KIND.get(provider.kind, provider.kind)


@lru_cache(maxsize=64)
def known_price_list(price_list: str | None) -> bool:
    """Whether `price_list` is exactly a genai-prices provider id.

    genai-prices also matches a provider id by substring (`openai_compatible` contains
    `openai`) and would price a Cerebras or vLLM model at OpenAI's rate: a confident wrong
    price. Only an exact id prices a model; anything else is unpriced, with the reason.
    """
    if not price_list:
        return False
    from genai_prices.data_snapshot import get_snapshot

    wanted = price_list.lower().strip()
    return any(p.id == wanted for p in get_snapshot().providers)


def unpriced_reason(model: ModelEntry, provider: ProviderEntry) -> str:
    """Why the table cannot price this model (shown by `cost report` and `policy explain`)."""
    price_list = price_list_id(provider)
    if not known_price_list(price_list):
        return (f"no price list for provider kind {provider.kind!r}" if not provider.price_list
                else f"price_list {price_list!r} is not a genai-prices provider id") + \
            ": set `price_list` (the serving vendor, e.g. cerebras) or a `price` for the model in models.yaml"
    return f"genai-prices has no price for {model.wire_name!r} under {price_list!r}"


def table_model_info(wire_name: str, price_list: str | None) -> Any | None:
    """The genai-prices ModelInfo for a model, or None when the table does not know it."""
    from genai_prices.data_snapshot import get_snapshot

    if not known_price_list(price_list):
        return None
    try:
        _provider, info = get_snapshot().find_provider_model(wire_name, None, price_list, None)
    except LookupError:
        return None
    except Exception:  # the table raises its own error types for unknown refs
        return None
    return info


def model_price(model: ModelEntry, provider: ProviderEntry, at: datetime | None = None) -> ModelPrice:
    """List prices of a catalogue model (a `ModelEntry` with its `ProviderEntry`)."""
    override = getattr(model, "price", None)
    if override is not None:
        if override.free:
            return FREE
        return ModelPrice(override.input, override.output, override.cache_read, override.cache_write, "override")
    if provider.kind in LOCAL_KINDS:
        return FREE
    info = table_model_info(model.wire_name, price_list_id(provider))
    if info is None:
        return UNPRICED
    prices = info.get_prices(at or datetime.now(UTC))
    inp, out = _base(prices.input_mtok), _base(prices.output_mtok)
    if inp is None or out is None:
        return UNPRICED
    return ModelPrice(inp, out, _base(prices.cache_read_mtok), _base(prices.cache_write_mtok), "table")


# ------------------------------------------------------------------ per-call costing


@dataclass(frozen=True)
class CallCost:
    """What one attempt cost. `dollars` is None when unknown (source "unpriced"), never 0."""

    dollars: Decimal | None
    source: CostSource
    prices_version: str | None = None  # genai-prices version, on rows priced from its table
    note: str | None = None  # why it is unpriced, for `cost report`


def _override_dollars(price: PriceOverride, usage: Usage) -> Decimal:
    """A models.yaml override (USD per million): cache parts at their own price, else input's."""
    cache_read = usage.cache_read_tokens
    cache_write = usage.cache_write_tokens
    uncached = max(usage.input_tokens - cache_read - cache_write, 0)
    if price.input is None or price.output is None:  # the schema refuses this unless free
        return Decimal(0)
    read_price = price.cache_read if price.cache_read is not None else price.input
    write_price = price.cache_write if price.cache_write is not None else price.input
    total = (uncached * price.input + cache_read * read_price + cache_write * write_price
             + usage.output_tokens * price.output)
    return Decimal(total) / MILLION


def table_dollars(usage: Usage, model_ref: str, price_list: str, at: datetime) -> Decimal | None:
    """genai-prices' price for `usage` on `model_ref`, at the call's time; None when unknown.

    genai-prices counts `input_tokens` the way anvil does (the whole input, cache parts
    included: it subtracts cache reads and writes itself), so the Usage maps field for field.
    Reasoning is part of output and billed at the output rate: it is not passed separately.
    Long-context tiers are picked by genai-prices from the whole input.
    """
    from genai_prices import Usage as GUsage
    from genai_prices import calc_price

    if not known_price_list(price_list):
        return None
    gusage = GUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens)
    try:
        calc = calc_price(gusage, model_ref, provider_id=price_list, genai_request_timestamp=at)
    except LookupError:
        return None
    except Exception:  # the table refuses usage it cannot price (e.g. odd units): unknown, not $0
        return None
    return calc.total_price


def call_cost(model: ModelEntry, provider: ProviderEntry, usage: Usage, *, served_model: str | None = None,
              provider_cost: Decimal | None = None, at: datetime | None = None) -> CallCost:
    """The dollars of one attempt: the ONE path every recorded cost goes through.

    Order: the provider's own figure (OpenRouter `usage.cost`, the claude CLI total);
    a models.yaml override (the user's word wins, as in `model_price`); free for local
    kinds; the genai-prices table at the call's time for the SERVED model (an alias
    such as `gpt-4o` may price differently from the dated model that answered),
    falling back to the catalogue's wire name; else unpriced (None).
    """
    if provider_cost is not None:
        return CallCost(Decimal(provider_cost), "provider")
    override = getattr(model, "price", None)
    if override is not None:
        if override.free:
            return CallCost(Decimal(0), "free")
        return CallCost(_override_dollars(override, usage), "override")
    if provider.kind in LOCAL_KINDS:
        return CallCost(Decimal(0), "free")
    when = at or datetime.now(UTC)
    price_list = price_list_id(provider)
    refs = [r for r in (served_model, model.wire_name) if r]
    for ref in dict.fromkeys(refs):
        dollars = table_dollars(usage, ref, price_list, when)
        if dollars is not None:
            return CallCost(dollars, "table", genai_prices_version())
    return CallCost(None, "unpriced", note=unpriced_reason(model, provider))
