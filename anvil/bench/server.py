"""The model server of one bench: one loopback scripted server, one responder per run.

Every `anvil run` the bench starts talks to the same server (its URL is in the bench's
models.yaml), each with its own key in its environment; the key picks the run's responder
(its oracle with its gold patch, or its scripted answers). Runs in parallel never see each
other's model, and a run whose key is unknown gets a clear error instead of another's answer.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Protocol

from anvil.bench.wire import api_key
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, render_for
from anvil.providers.scripted.reply import RecordedRequest, Reply
from anvil.providers.scripted.server import ScriptedServer

Responder = Callable[[RecordedRequest], Reply]


class Answerer(Protocol):
    def answer(self, req: RecordedRequest) -> ScriptedAnswer | ScriptedFailure: ...


def responder_for(model: Answerer) -> Responder:
    return lambda req: render_for(req, model.answer(req))


class BenchServer:
    def __init__(self) -> None:
        self.server = ScriptedServer()
        self._routes: dict[str, Responder] = {}
        self._lock = threading.Lock()
        self.server.add_responder(self._dispatch)

    def start(self) -> BenchServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        with self._lock:
            self._routes.clear()

    @property
    def url(self) -> str:
        return self.server.url

    def register(self, responder: Responder) -> str:
        """A new key whose requests `responder` answers."""
        key = "bench-" + secrets.token_hex(8)
        with self._lock:
            self._routes[key] = responder
        return key

    def unregister(self, key: str) -> None:
        with self._lock:
            self._routes.pop(key, None)

    def _dispatch(self, req: RecordedRequest) -> Reply:
        with self._lock:
            responder = self._routes.get(api_key(req))
        if responder is None:
            return Reply.json({"error": {"message": "bench model server: this key belongs to no running task",
                                         "type": "authentication_error"}}, status=401)
        return responder(req)
