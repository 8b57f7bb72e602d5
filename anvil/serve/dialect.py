"""What a client protocol provides to the gateway, and the errors it shows in its own shape.

A `Dialect` turns a client's JSON body into a `ClientRequest` (anvil's `ChatRequest` plus what
only the gateway needs), and anvil's results back into that protocol: a whole response, a
stream renderer, an error body, a model list. Upstream translation is the adapters' business:
the `ChatRequest` goes to whichever provider the chain-walker picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from anvil.providers.types import ChatRequest, ChatResult, StreamEvent, Usage

# A neutral vocabulary of failures; each dialect names them its own way.
ErrorType = Literal["invalid_request", "auth", "not_found", "rate_limit", "overloaded", "server"]
STATUS: dict[str, int] = {"invalid_request": 400, "auth": 401, "not_found": 404, "rate_limit": 429,
                          "overloaded": 503, "server": 502}


class ServeError(Exception):
    """A failure shown to the client in its protocol's error shape."""

    def __init__(self, kind: ErrorType, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorType = kind
        self.message = message
        self.status = status if status is not None else STATUS[kind]
        self.retry_after = retry_after


class Untranslatable(ServeError):
    """A part of the request anvil cannot carry to another protocol: refused, never dropped."""

    def __init__(self, what: str) -> None:
        super().__init__("invalid_request", f"anvil serve cannot translate {what}")


def bad_request(message: str) -> ServeError:
    return ServeError("invalid_request", message)


@dataclass(frozen=True)
class ClientRequest:
    model: str  # the name the client asked for: a preset (anvil/plan) or a catalogue id
    chat: ChatRequest  # model "": the walker puts each model's wire name in
    stream: bool
    include_usage: bool = True  # OpenAI streams: only with stream_options.include_usage
    custom_tools: frozenset[str] = frozenset()  # Responses: freeform tools (their calls go back as such)


class StreamRenderer(Protocol):
    """One response stream in a client's protocol; every method returns the bytes to send."""

    def start(self, usage: Usage | None) -> bytes: ...

    def event(self, event: StreamEvent) -> bytes: ...

    def finish(self, result: ChatResult) -> bytes: ...

    def error(self, err: ServeError) -> bytes: ...


class Dialect(Protocol):
    name: str

    def parse(self, body: Any) -> ClientRequest: ...

    def response(self, result: ChatResult, model: str, creq: ClientRequest) -> dict[str, Any]: ...

    def renderer(self, model: str, creq: ClientRequest) -> StreamRenderer: ...

    def error_body(self, err: ServeError) -> dict[str, Any]: ...

    def error_status(self, err: ServeError) -> int: ...

    def model_list(self, names: list[tuple[str, str]]) -> dict[str, Any]: ...


def sse(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{where}: expected an object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(f"{where}: expected an array")
    return value


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise bad_request(f"{where}: expected a positive integer")
    return value


class StreamLedger:
    """What a stream has shown so far, so `finish` can send what the deltas did not carry.

    Upstream tool-call deltas are keyed by an index of the upstream's own (Anthropic: the
    content block; OpenAI: the call); clients number calls 0, 1, ... in arrival order. Some
    adapters (the CLI ones) hand over no deltas at all: the whole answer then arrives at finish.
    """

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, int] = {}  # upstream index -> client ordinal

    def tool_ordinal(self, index: int) -> tuple[int, bool]:
        """The client's number for an upstream call index, and whether it is new."""
        if index in self.calls:
            return self.calls[index], False
        n = self.calls[index] = len(self.calls)
        return n, True

    def missing_text(self, result: ChatResult) -> str:
        shown = "".join(self.text)
        return result.text[len(shown):] if result.text.startswith(shown) else ""

    def missing_calls(self, result: ChatResult) -> list[Any]:
        return list(result.tool_calls[len(self.calls):])


def estimate_tokens(text: str) -> int:
    """~4 characters a token: what `count_tokens` answers when no model is asked."""
    return max(1, (len(text) + 3) // 4)
