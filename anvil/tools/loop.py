"""The bounded tool loop of one stage attempt (DESIGN.md 13).

    model turn -> tool calls -> results -> model turn -> ... -> an answer without tool calls

Each model turn is one call through the chain-walker (one ledger row). The
first turn may be served by any model of the stage's chain; the model that
answers it *owns* the loop: every later turn is pinned to it, because tool-call
ids and Gemini's thought signatures mean nothing to another model. When a
pinned turn fails (the walker gave up on that model), the attempt restarts
from its first message on the next model of the chain, with the files the
failed loop wrote put back first, so two models' turns are never mixed.

Bounds, checked before every turn and every tool call: `max_turns`,
`max_tool_calls`, the stage's wall-clock deadline; the stage budget is the
walker's (it raises before a call that must not start). A loop that hits one
ends with a `stop` that says which.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from anvil.providers.types import ChatResult, Message, ToolCall, ToolSpec
from anvil.tools.base import ToolBox, ToolCallRecord, ToolResult

Stop = Literal["answered", "max_turns", "max_tool_calls", "timeout"]


@dataclass(frozen=True)
class Turn:
    """One model turn: what it said and which catalogue model said it."""

    result: ChatResult
    model: str


class TurnFailed(Exception):
    """A turn pinned to `model` could not be served (the walker's error is `cause`)."""

    def __init__(self, model: str, cause: BaseException) -> None:
        super().__init__(f"{model}: {cause}")
        self.model = model
        self.cause = cause


class TakeTurn(Protocol):
    """One walker call: `pin` restricts the chain to that model, `exclude` removes models from it,
    `timeout` bounds the exchange. Raises TurnFailed when a pinned model fails, the walker's
    own error otherwise."""

    def __call__(self, messages: Sequence[Message], tools: tuple[ToolSpec, ...], *, pin: str | None,
                 exclude: frozenset[str], timeout: float | None) -> Turn: ...


@dataclass(frozen=True)
class LoopBounds:
    max_turns: int = 12
    max_tool_calls: int = 40
    deadline: float | None = None  # on `clock`'s scale; None: no wall-clock bound


@dataclass
class LoopOutcome:
    text: str  # the final answer ("" when a bound stopped the loop first)
    stop: Stop
    model: str
    turns: int
    tool_calls: int
    messages: list[Message]  # the whole transcript, first message included
    restarts: list[str] = field(default_factory=list)  # models that failed mid-loop

    @property
    def reason(self) -> str:
        return {"answered": "the model answered",
                "max_turns": f"stopped after {self.turns} model turns (max_turns)",
                "max_tool_calls": f"stopped after {self.tool_calls} tool calls (max_tool_calls)",
                "timeout": "stopped at the stage's timeout"}[self.stop]


OnTool = Callable[[ToolCallRecord, ToolResult, str], None]  # (record, result, model)


def _args_text(call: ToolCall) -> str:
    return json.dumps(call.arguments, sort_keys=True)[:400]


class ToolLoop:
    def __init__(self, box: ToolBox, take_turn: TakeTurn, bounds: LoopBounds, *,
                 on_tool: OnTool | None = None, restore: Callable[[], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.box = box
        self.take_turn = take_turn
        self.bounds = bounds
        self.on_tool = on_tool
        self.restore = restore  # puts back what the failed loop wrote, before a restart
        self.clock = clock

    def _left(self) -> float | None:
        if self.bounds.deadline is None:
            return None
        return self.bounds.deadline - self.clock()

    def run(self, first: Sequence[Message]) -> LoopOutcome:
        """Run the loop from the attempt's first messages; restart on the next model after a mid-loop failure."""
        excluded: set[str] = set()
        restarts: list[str] = []
        while True:
            try:
                out = self._once(list(first), frozenset(excluded))
            except TurnFailed as failed:
                excluded.add(failed.model)
                restarts.append(failed.model)
                if self.restore is not None:
                    self.restore()
                continue
            out.restarts = restarts
            return out

    def _once(self, messages: list[Message], excluded: frozenset[str]) -> LoopOutcome:
        specs = self.box.specs()
        model: str | None = None
        turns = calls = 0
        over_calls = False
        while True:
            left = self._left()
            if left is not None and left <= 0:
                return LoopOutcome("", "timeout", model or "", turns, calls, messages)
            if turns >= self.bounds.max_turns:
                return LoopOutcome("", "max_turns", model or "", turns, calls, messages)
            turn = self.take_turn(_moving_breakpoint(messages), specs, pin=model, exclude=excluded, timeout=left)
            model = turn.model
            turns += 1
            result = turn.result
            if not result.tool_calls:
                messages.append(Message("assistant", result.text))
                return LoopOutcome(result.text, "answered", model, turns, calls, messages)
            if over_calls:
                return LoopOutcome("", "max_tool_calls", model, turns, calls, messages)
            messages.append(Message("assistant", result.text, tool_calls=result.tool_calls))
            for call in result.tool_calls:
                left = self._left()
                if left is not None and left <= 0:
                    answer = ToolResult("not run: the stage's time is up", ok=False)
                elif calls >= self.bounds.max_tool_calls:
                    over_calls = True
                    answer = ToolResult(f"not run: this attempt may make {self.bounds.max_tool_calls} tool calls "
                                        "and has made them all; answer now without tools", ok=False)
                else:
                    calls += 1
                    answer = self.box.call(call.name, call.arguments)
                    if self.on_tool is not None and self.box.calls:
                        self.on_tool(self.box.calls[-1], answer, model)
                messages.append(Message("tool", answer.text, tool_call_id=call.id, name=call.name))


def _moving_breakpoint(messages: list[Message]) -> list[Message]:
    """The messages with a prompt-cache breakpoint on the last one too (the ones the caller marked stay):
    each turn's request is the previous one plus a little, so the provider serves the prefix from cache."""
    if not messages or messages[-1].cache:
        return messages
    return [*messages[:-1], replace(messages[-1], cache=True)]
