"""Live progress of a run, on stderr (stdout is for the result).

On a TTY: a rich live panel with one row per stage (status, model, tokens,
cost, elapsed), the running total, and the model's streamed output folded to
its last few lines so the screen stays readable. Otherwise (a pipe, CI,
NO_COLOR makes no difference here) plain lines, one per event worth keeping
in a log. `summary_rows` / `print_summary` render the end-of-run table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from anvil.providers.types import StreamEvent, Usage
    from anvil.run.events import Progress
    from anvil.run.store import RunState

STREAM_LINES = 3  # streamed output folded to this many lines on a TTY


def _money(value: Decimal | None) -> str:
    if value is None:
        return "unknown"
    return f"${value.quantize(Decimal('0.0001'))}"


class NullProgress:
    def stage_started(self, stage: str, label: str = "") -> None: ...
    def stage_finished(self, stage: str, status: str, summary: str = "") -> None: ...
    def call_started(self, stage: str, model: str, chain: list[str]) -> None: ...
    def call_finished(self, stage: str, model: str, usage: Usage, dollars: Decimal | None) -> None: ...
    def stream(self, stage: str, event: StreamEvent) -> None: ...
    def note(self, stage: str, text: str) -> None: ...
    def spend(self, total: Decimal | None) -> None: ...
    def close(self) -> None: ...

    def prompt(self, question: str) -> str:
        """Ask the user on the terminal (only called when interactive)."""
        sys.stderr.write(f"{question} ")
        sys.stderr.flush()
        return sys.stdin.readline()


class PlainProgress(NullProgress):
    """One line per event on a non-TTY stream: `anvil: [build] ...`."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = stream
        self.clock = clock
        self.t0 = clock()
        self.total: Decimal | None = Decimal(0)

    def _line(self, stage: str, text: str) -> None:
        self.out.write(f"anvil: [{stage}] {text}\n")
        self.out.flush()

    def stage_started(self, stage: str, label: str = "") -> None:
        self._line(stage, "started" + (f" ({label})" if label else ""))

    def stage_finished(self, stage: str, status: str, summary: str = "") -> None:
        self._line(stage, f"{status}" + (f": {summary}" if summary else "")
                   + f"  [total {_money(self.total)}, {self.clock() - self.t0:.1f}s]")

    def call_started(self, stage: str, model: str, chain: list[str]) -> None:
        rest = f" (then {', '.join(chain[1:3])})" if len(chain) > 1 else ""
        self._line(stage, f"asking {model}{rest}")

    def call_finished(self, stage: str, model: str, usage: Usage, dollars: Decimal | None) -> None:
        self._line(stage, f"{model} answered: {usage.input_tokens:,} in / {usage.output_tokens:,} out tokens, "
                          f"{_money(dollars)}")

    def note(self, stage: str, text: str) -> None:
        self._line(stage, text)

    def spend(self, total: Decimal | None) -> None:
        self.total = total


class RichProgress(PlainProgress):
    """A live panel on a TTY (see the module docstring)."""

    def __init__(self, stream: TextIO, stages: tuple[str, ...], clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stream, clock)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.rows: dict[str, dict[str, Any]] = {s: {"status": "pending", "model": "", "tokens": 0, "cost": Decimal(0),
                                                     "t": 0.0, "since": None} for s in stages}
        self.current = ""
        self.buffer = ""
        self.notes: list[str] = []
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=True,
                         get_renderable=self._render)
        self.live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for col in ("stage", "status", "model", "tokens", "cost", "time"):
            table.add_column(col, justify="right" if col in ("tokens", "cost", "time") else "left")
        now = self.clock()
        for name, r in self.rows.items():
            t = r["t"] + (now - r["since"] if r["since"] is not None else 0.0)
            style = {"running": "bold cyan", "done": "green", "failed": "red", "back": "yellow"}.get(r["status"], "dim")
            table.add_row(name, Text(r["status"], style=style), r["model"], f"{r['tokens']:,}" if r["tokens"] else "",
                          _money(r["cost"]) if r["tokens"] else "", f"{t:.1f}s" if t else "")
        width = max(20, self.console.width - 4)
        lines = [ln[:width] for ln in self.buffer.splitlines()[-STREAM_LINES:]]
        parts: list[Any] = [table, Text(f"total {_money(self.total)}  elapsed {now - self.t0:.1f}s", style="bold")]
        if lines:
            parts.append(Text("\n".join(lines), style="dim"))
        parts += [Text(n, style="yellow") for n in self.notes[-3:]]
        return Group(*parts)

    def stage_started(self, stage: str, label: str = "") -> None:
        r = self.rows.setdefault(stage, {"status": "", "model": "", "tokens": 0, "cost": Decimal(0), "t": 0.0,
                                         "since": None})
        r["status"], r["since"] = "running", self.clock()
        self.current, self.buffer = stage, ""

    def stage_finished(self, stage: str, status: str, summary: str = "") -> None:
        r = self.rows[stage]
        if r["since"] is not None:
            r["t"] += self.clock() - r["since"]
        r["status"], r["since"] = status, None
        self.buffer = ""

    def call_started(self, stage: str, model: str, chain: list[str]) -> None:
        self.rows[stage]["model"] = model
        self.buffer = ""

    def call_finished(self, stage: str, model: str, usage: Usage, dollars: Decimal | None) -> None:
        r = self.rows[stage]
        r["model"] = model
        r["tokens"] += usage.input_tokens + usage.output_tokens
        r["cost"] = None if dollars is None or r["cost"] is None else r["cost"] + dollars

    def stream(self, stage: str, event: StreamEvent) -> None:
        text = getattr(event, "text", None)
        if isinstance(text, str):
            self.buffer = (self.buffer + text)[-4000:]
        elif type(event).__name__ == "AttemptReset":
            self.buffer = ""  # a failed attempt's words are not the answer

    def note(self, stage: str, text: str) -> None:
        self.notes.append(f"[{stage}] {text}")

    def prompt(self, question: str) -> str:
        self.live.stop()  # a question under a live panel would be redrawn away
        try:
            return super().prompt(question)
        finally:
            self.live.start()

    def close(self) -> None:
        self.live.stop()


def make_progress(stream: TextIO | None = None, stages: tuple[str, ...] = (), *, quiet: bool = False) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return NullProgress()
    if stream.isatty():
        return RichProgress(stream, stages)
    return PlainProgress(stream)


def summary_rows(state: RunState) -> list[dict[str, Any]]:
    rows = []
    for name, st in state.stages.items():
        rows.append({"stage": name, "status": st.status, "model": st.model, "models": st.models,
                     "attempts": st.attempts, "tokens": st.tokens, "cost": st.cost,
                     "seconds": round(float(st.data.get("elapsed", 0.0)), 2)})
    return rows


def print_summary(state: RunState, stream: TextIO, *, title: str = "") -> None:
    """The end-of-run table (cost and time per stage) on `stream`."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, highlight=False, width=None if stream.isatty() else 120)
    table = Table(title=title or None, show_footer=True)
    rows = summary_rows(state)
    total_s = sum(r["seconds"] for r in rows)
    table.add_column("stage", footer="total")
    table.add_column("status")
    table.add_column("model")
    table.add_column("calls", justify="right")
    table.add_column("tokens", justify="right", footer=f"{sum(r['tokens'] for r in rows):,}")
    table.add_column("cost", justify="right", footer=_money(state.spend))
    table.add_column("time", justify="right", footer=f"{total_s:.1f}s")
    for r in rows:
        if not r["attempts"] and not r["seconds"]:
            table.add_row(r["stage"], r["status"], "-", "", "", "", "")
            continue
        table.add_row(r["stage"], r["status"], r["model"] or "-", str(r["attempts"]), f"{r['tokens']:,}",
                      _money(r["cost"]), f"{r['seconds']:.1f}s")
    console.print(table)
