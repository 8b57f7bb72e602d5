"""Fixtures for the walker, ledger, budget and cost tests: resolved models, fake providers, a clock."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from anvil.config.schema import ModelEntry, PriceOverride, ProviderEntry, WalkerSettings
from anvil.ledger.pricing import model_price
from anvil.providers.types import ChatRequest, ChatResult, Message, ProviderSettings, TextDelta, UpstreamError, Usage
from anvil.routing.resolver import ResolvedModel


def resolved(model_id: str, provider: str = "p1", *, kind: str = "openai", window: int = 128_000,
             price: PriceOverride | None = None, price_list: str | None = None,
             name: str | None = None, tier: str = "cheap") -> ResolvedModel:
    entry = ProviderEntry(kind=kind, price_list=price_list)
    model = ModelEntry(id=model_id, provider=provider, tier=tier, context_window=window, price=price, name=name)
    return ResolvedModel(model, provider, entry, model_price(model, entry))


def priced(model_id: str, provider: str = "p1", **kw: Any) -> ResolvedModel:
    """A model with an override price: $1/M input, $2/M output (easy arithmetic)."""
    return resolved(model_id, provider, price=PriceOverride(input=Decimal(1), output=Decimal(2)), **kw)


def request(text: str = "hello") -> ChatRequest:
    return ChatRequest(model="ignored", messages=(Message("user", text),))


def ok(text: str = "answer", *, model: str = "served", inp: int = 1000, out: int = 100,
       cost: Decimal | None = None) -> ChatResult:
    return ChatResult(text=text, finish_reason="stop", usage=Usage(input_tokens=inp, output_tokens=out),
                      served_model=model, provider_cost=cost, latency_s=0.5)


def err(kind: str, *, status: int | None = None, retry_after: float | None = None,
        message: str = "boom", usage: Usage | None = None) -> UpstreamError:
    return UpstreamError(kind, message, status=status, retry_after=retry_after, usage=usage)  # type: ignore[arg-type]


class FakeProvider:
    """The Provider protocol, scripted per model: a list of results/errors served in turn.

    `deltas` are streamed to on_event before each outcome, so the reset rule can be seen.
    """

    def __init__(self, name: str, script: dict[str, list[Any]], deltas: tuple[str, ...] = ("par", "tial")) -> None:
        self.settings = ProviderSettings(name=name, kind="openai")
        self.script = {k: list(v) for k, v in script.items()}
        self.calls: list[str] = []
        self.deltas = deltas

    def chat(self, request: ChatRequest, on_event: Callable[[Any], None] | None = None) -> ChatResult:
        self.calls.append(request.model)
        queue = self.script.get(request.model)
        if not queue:
            raise AssertionError(f"unscripted call to {request.model}")
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if on_event is not None:
            for d in self.deltas:
                on_event(TextDelta(d))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Clock:
    """Wall clock + sleep + timer, all fake: sleeping advances time and is recorded."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def settings(**kw: Any) -> WalkerSettings:
    return WalkerSettings(**kw)
