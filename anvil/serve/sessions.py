"""Sessions: the requests of one conversation stay on the model that served them.

A conversation is named by the client (`x-anvil-session`) or, failing that, by a hash of
what every turn of it repeats: the model asked for, the system prompt and the first user
message. The table remembers which catalogue model answered last; the next request's chain
is reordered to try it first. When it fails the chain-walker moves on as usual and the
conversation sticks to the model that answered instead. Entries expire after `ttl` seconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from anvil.providers.types import ChatRequest

HEADER = "x-anvil-session"
T = TypeVar("T")


def session_key(headers: Mapping[str, str], model: str, chat: ChatRequest) -> str:
    given = "".join(ch for ch in (headers.get(HEADER) or "") if ch.isprintable()).strip()
    if given:
        return given[:200]  # (it is stored in the ledger and shown by cost report: printable only)
    first_user = next((m.content for m in chat.messages if m.role == "user"), "")
    digest = hashlib.sha256("\x00".join([model, chat.system, first_user]).encode()).hexdigest()
    return "h-" + digest[:16]


@dataclass
class _Entry:
    model_id: str
    seen: float


class SessionTable:
    def __init__(self, *, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 10_000) -> None:
        self.ttl, self._clock, self._max = ttl, clock, max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def sticky(self, key: str) -> str | None:
        with self._lock:
            e = self._entries.get(key)
            if e is None or self._clock() - e.seen >= self.ttl:
                self._entries.pop(key, None)
                return None
            return e.model_id

    def order(self, key: str, chain: Sequence[T], model_id: Callable[[T], str]) -> list[T]:
        """`chain` with the session's model first (when it is in the chain)."""
        stick = self.sticky(key)
        first = [m for m in chain if model_id(m) == stick]
        return first + [m for m in chain if model_id(m) != stick]

    def served(self, key: str, model_id: str) -> None:
        with self._lock:
            now = self._clock()
            self._entries[key] = _Entry(model_id, now)
            if len(self._entries) > self._max:  # drop the expired, then the oldest
                live = {k: e for k, e in self._entries.items() if now - e.seen < self.ttl}
                keep = sorted(live.items(), key=lambda kv: kv[1].seen)[-self._max:]
                self._entries = dict(keep)
