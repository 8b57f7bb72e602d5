"""Burns: models and providers the chain-walker has given up on for this run.

A burn is part of the run's state: the runner saves `BurnList.to_json()` in
state.json and `anvil resume` restores it with `BurnList.from_json`, so a model
that was out of quota an hour ago is not tried first again. Each burn carries
its wall-clock time and reason; one older than `expiry` seconds (models.yaml
`walker.burn_expiry`) no longer counts (a rate limit or a daily quota clears).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Scope = Literal["model", "provider"]


@dataclass(frozen=True)
class Burn:
    scope: Scope  # "model": one catalogue model; "provider": every model of that provider (its key)
    target: str  # the model id or the provider name
    reason: str  # e.g. "quota HTTP 429: insufficient_quota"
    at: float  # wall-clock seconds since the epoch

    def describe(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.at))
        return f"{self.scope} {self.target} burned at {stamp} UTC: {self.reason}"


class BurnList:
    """The run's burns. `clock` is wall time (injected in tests)."""

    def __init__(self, burns: Iterable[Burn] = (), *, expiry: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.expiry = expiry
        self._clock = clock
        self._burns: dict[tuple[str, str], Burn] = {}
        for b in burns:
            self._burns[(b.scope, b.target)] = b

    # ------------------------------------------------------------ changes

    def burn_model(self, model_id: str, reason: str) -> Burn:
        return self._add(Burn("model", model_id, reason, self._clock()))

    def burn_provider(self, provider_name: str, reason: str) -> Burn:
        return self._add(Burn("provider", provider_name, reason, self._clock()))

    def _add(self, burn: Burn) -> Burn:
        self._burns[(burn.scope, burn.target)] = burn
        return burn

    # ------------------------------------------------------------ queries

    def _live(self, burn: Burn | None) -> Burn | None:
        if burn is None or self._clock() - burn.at >= self.expiry:
            return None
        return burn

    def burned(self, model_id: str, provider_name: str) -> Burn | None:
        """The live burn that rules this model out (provider burns first), or None."""
        return (self._live(self._burns.get(("provider", provider_name)))
                or self._live(self._burns.get(("model", model_id))))

    def active(self) -> list[Burn]:
        return [b for b in self._burns.values() if self._live(b) is not None]

    def __len__(self) -> int:
        return len(self.active())

    # ------------------------------------------------------------ state.json

    def to_json(self) -> list[dict[str, Any]]:
        """Live burns only: an expired one has nothing left to say."""
        return [asdict(b) for b in self.active()]

    @classmethod
    def from_json(cls, data: Iterable[dict[str, Any]] | None, *, expiry: float = 3600.0,
                  clock: Callable[[], float] = time.time) -> BurnList:
        burns = []
        for item in data or ():
            scope = item.get("scope")
            if scope not in ("model", "provider"):
                continue  # a state file from a newer/older anvil: ignore what we do not know
            burns.append(Burn(scope, str(item["target"]), str(item.get("reason", "")), float(item["at"])))
        return cls(burns, expiry=expiry, clock=clock)
