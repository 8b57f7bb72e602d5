"""The commit window: what stands between a model's stream and the client.

The chain-walker runs in a worker thread and hands every stream event to `CommitWindow.on_event`.
Until the window commits, events are only buffered: a failed attempt (the walker's
`AttemptReset`) or a structurally bad answer (`verify`) throws the buffer away unseen and the
walker tries the next model. The window commits when the buffered answer outgrows
`max_chars` characters, when `max_seconds` have passed since the attempt's first event, or when
the answer is complete (then it has already passed `verify`). From then on events are rendered
and sent as they come; a failure of the committed attempt can no longer be hidden: the window
stops the walk (`CommittedFailure`, so no other model's output is ever mixed in) and the client
gets an error in its own protocol.

Every decision is taken here, in the walker's thread, so there is no race between "commit" and
"this attempt failed". `emit` receives bytes to send, a `ServeError` (before commit: answer with
an HTTP error instead) or `END`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anvil.providers.types import TextDelta, ToolCallDelta, UsageUpdate
from anvil.routing.walker import AttemptReset

if TYPE_CHECKING:
    from anvil.providers.types import ChatResult, StreamEvent, Usage
    from anvil.serve.dialect import ServeError, StreamRenderer

END = object()


class CommittedFailure(Exception):
    """The committed attempt failed: the walk must stop here (see the module docstring)."""

    def __init__(self, reset: AttemptReset) -> None:
        super().__init__(f"{reset.model} failed after its answer had started: {reset.reason}")
        self.reset = reset


class ClientGone(Exception):
    """The client closed the connection: the upstream call is abandoned."""

    ledger_kind = "client_gone"  # the error kind of the abandoned attempt's ledger row


def _size(event: StreamEvent) -> int:
    if isinstance(event, TextDelta):
        return len(event.text)
    if isinstance(event, ToolCallDelta):
        return len(event.arguments_fragment) + len(event.name or "")
    return 0


class CommitWindow:
    def __init__(self, renderer: Callable[[str], StreamRenderer], emit: Callable[[Any], None], *,
                 max_chars: int, max_seconds: float, timer: Callable[[], float] = time.monotonic) -> None:
        self._renderer_for, self._emit = renderer, emit
        self.max_chars, self.max_seconds, self._timer = max_chars, max_seconds, timer
        self.renderer: StreamRenderer | None = None  # set at commit
        self.model = ""  # the catalogue id of the attempt under way
        self.gone = False  # set by the response side when the client disconnects
        self._buffer: list[StreamEvent] = []
        self._size = 0
        self._first: float | None = None
        self._usage: Usage | None = None

    @property
    def committed(self) -> bool:
        return self.renderer is not None

    def attempt(self, model_id: str) -> None:
        """The walker is about to call this model (`Walker.call`'s `on_attempt`)."""
        if self.gone:
            raise ClientGone()
        if not self.committed:
            self.model = model_id

    def on_event(self, event: Any) -> None:
        if self.gone:
            raise ClientGone()
        if isinstance(event, AttemptReset):
            if self.committed:
                raise CommittedFailure(event)
            self._buffer.clear()
            self._size, self._first, self._usage = 0, None, None
            return
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
        if self.renderer is not None:
            out = self.renderer.event(event)
            if out:
                self._emit(out)
            return
        self._buffer.append(event)
        self._size += _size(event)
        now = self._timer()
        if self._first is None:
            self._first = now
        if self._size >= self.max_chars or now - self._first >= self.max_seconds:
            self._commit()

    def _commit(self) -> None:
        r = self.renderer = self._renderer_for(self.model)
        out = r.start(self._usage) + b"".join(r.event(e) for e in self._buffer)
        self._buffer.clear()
        self._emit(out)

    def finish(self, result: ChatResult) -> None:
        """The walk succeeded (the answer passed `verify` if it was not committed before)."""
        if self.renderer is None:
            self._commit()
        assert self.renderer is not None
        self._emit(self.renderer.finish(result))
        self._emit(END)

    def fail(self, err: ServeError) -> None:
        if self.renderer is None:
            self._emit(err)  # nothing sent yet: the client gets a plain HTTP error
            return
        self._emit(self.renderer.error(err))
        self._emit(END)
