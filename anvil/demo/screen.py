"""What `anvil demo` shows: the routing, the run as it happens, the cost with the baseline saving.

`DemoProgress` is a progress display for `anvil.commands.run.execute` (the same
pipeline `anvil run` drives): one line per stage visit with its model, tokens
and cost, the failed attempts read from the ledger as they are written (the
429 and the burn), the retries, the test failure and the review's findings.
Everything goes through one rich console, so `--svg` can record it.
"""

from __future__ import annotations

import re
import shlex
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from anvil.commands.policy import explain_data
from anvil.config.schema import STAGES
from anvil.ledger.db import Ledger
from anvil.ui.output import money, per_million
from anvil.workspace.gitops import git

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from anvil.config.loader import Config
    from anvil.ledger.report import Group, Report
    from anvil.providers.types import StreamEvent, Usage
    from anvil.routing.availability import Availability
    from anvil.run.store import Run

STAGE_W = 9
MODEL_W = 22
ICONS = {"done": ("✓", "green"), "back": ("↩", "yellow"), "failed": ("✗", "red"), "skipped": ("–", "dim")}
RETRY = re.compile(r"^(retry \d+/\d+): (.*?)(?: \(([^()]*)\))?$", re.S)
PROTOCOL = {"ollama": "Ollama", "openai": "OpenAI", "anthropic": "Anthropic"}


def short_command(text: str) -> str:
    """The test command as a person would type it: `python`, not this interpreter's full path."""
    return text.replace(shlex.quote(sys.executable), "python").replace(" -p no:cacheprovider", "")


def _cost(dollars: Decimal | None, free: bool) -> str:
    if free:
        return "free"
    return money(dollars)


class DemoProgress:
    """A progress display (the NullProgress protocol of anvil.ui.progress) for the demo."""

    def __init__(self, console: Console, run: Run, ledger_path: Path, free_models: set[str], repo_root: Path) -> None:
        self.console = console
        self.repo_root = repo_root
        self.run = run
        self.ledger_path = ledger_path
        self.free = free_models
        self.seen = 0  # ledger rows of this run already looked at
        self.calls: list[tuple[str, int, Decimal | None]] = []  # this stage visit's (model, tokens, dollars)
        self.pending: list[tuple[str, str]] = []  # notes (retries) to show after the stage's line

    # ------------------------------------------------------------ helpers

    def _line(self, stage: str, model: str, icon: tuple[str, str], text: str, cost: str = "") -> None:
        from rich.table import Table
        from rich.text import Text

        row = Table.grid(padding=(0, 1), expand=True)
        row.add_column(width=STAGE_W, no_wrap=True)
        row.add_column(width=MODEL_W, no_wrap=True, overflow="ellipsis")
        row.add_column(width=1)
        row.add_column(ratio=1, overflow="fold")
        row.add_column(width=7, justify="right", no_wrap=True)
        row.add_row(Text(stage, style="bold"), Text(model, style="cyan"), Text(icon[0], style=icon[1]),
                    Text(text), Text(cost))
        self.console.print(row)

    def _detail(self, text: str, style: str = "dim") -> None:
        from rich.padding import Padding
        from rich.text import Text

        self.console.print(Padding(Text(text, style=style), (0, 0, 0, STAGE_W + 1)))

    def _new_attempts(self) -> list[dict[str, Any]]:
        if not self.ledger_path.exists():
            return []
        with Ledger(self.ledger_path) as led:
            rows = led.attempts(self.run.id)
        new, self.seen = rows[self.seen:], len(rows)
        return new

    def _burn_reason(self, model: str) -> str | None:
        for b in self.run.state.burns or ():
            if b.get("target") == model:
                return str(b.get("reason") or "")
        return None

    # ------------------------------------------------------------ the protocol

    def stage_started(self, stage: str, label: str = "") -> None:
        self.calls = []

    def call_started(self, stage: str, model: str, chain: list[str]) -> None: ...

    def call_finished(self, stage: str, model: str, usage: Usage, dollars: Decimal | None) -> None:
        for row in self._new_attempts():
            if row["outcome"] == "ok":
                continue
            status = f"HTTP {row['http_status']} " if row.get("http_status") else ""
            burn = self._burn_reason(row["model"])
            why = burn.split(": ", 1)[-1].replace(" over the ", " > ") if burn else ""
            then = f", {why} → burned for this run" if burn else " → next model"
            self._line(stage, row["model"], ("✗", "red"), f"{status}{row['error_kind']}{then}")
        self.calls.append((model, usage.input_tokens + usage.output_tokens, dollars))

    def stream(self, stage: str, event: StreamEvent) -> None: ...

    def note(self, stage: str, text: str) -> None:
        # A retry is decided before the stage that asked for it reports back: shown after its line.
        self.pending.append((stage, text))

    def _flush_notes(self) -> None:
        notes, self.pending = self.pending, []
        for stage, text in notes:
            m = RETRY.match(text)
            if m:
                reason = m.group(2).split(":", 1)[0]
                change = f" → {m.group(3)}" if m.group(3) else ""
                self._line(stage, "", ("↻", "yellow"), f"{m.group(1)} ({reason}){change}")
            else:
                self._detail(short_command(text), "yellow")

    def spend(self, total: Decimal | None) -> None: ...

    def stage_finished(self, stage: str, status: str, summary: str = "") -> None:
        model = self.calls[-1][0] if self.calls else ""
        free = bool(self.calls) and all(m in self.free for m, _, _ in self.calls)
        known = [d for _, _, d in self.calls]
        dollars = None if any(d is None for d in known) else sum((d for d in known if d is not None), Decimal(0))
        summary = short_command(summary)
        if status == "back":
            summary += " → back to build"
        self._line(stage, model, ICONS.get(status, ("·", "dim")), summary, _cost(dollars, free) if self.calls else "")
        data = self.run.state.stage(stage).data
        if stage == "test" and status == "back":
            for name in (data.get("result") or {}).get("failing_tests", [])[:3]:
                self._detail(f"FAILED {name}", "red")
        if stage == "review" and status == "done":
            for f in (data.get("review") or {}).get("findings", []):
                where = f"{f['file']}:{f['line']}" if f.get("line") else f["file"]
                self._detail(f"{f['severity']:<6} {where}  {f['message']}", "yellow")
            for rnd in (data.get("rounds") or [])[-1:]:
                for d in rnd.get("dropped", []):
                    self._detail(f"dropped: {d['severity']} {d['file']} (its evidence is not in the diff)")
        if stage == "ship" and status == "done" and data.get("sha"):
            self._detail(self._commit_stat(data["sha"]))
        self.calls = []
        self._flush_notes()

    def _commit_stat(self, sha: str) -> str:
        """`git show --shortstat` of the shipped commit, with its subject."""
        out = git(["show", "--no-patch", "--format=%s", sha], self.repo_root, check=False).stdout.strip()
        stat = git(["show", "--shortstat", "--format=", sha], self.repo_root, check=False).stdout.strip()
        return f"{out}  ({stat})" if stat else out

    def close(self) -> None: ...

    def prompt(self, question: str) -> str:
        return ""  # the demo never asks: it runs as with --yes


# ------------------------------------------------------------------ before and after the run


def print_routing(
    console: Console, config: Config, availability: dict[str, Availability], models: tuple[str, ...]
) -> None:
    """The demo's models and each stage's chain (the data of `anvil policy explain`)."""
    from rich.table import Table


    data = explain_data(config, availability, list(STAGES))
    prices = {link["model"]: link for entry in data for link in entry["chain"]}
    console.print("[bold]The models[/]: the scripted server answers as these; their prices are the real ones "
                  "(genai-prices)")
    t = Table(box=None, padding=(0, 2), pad_edge=True)
    for col in ("model", "tier", "protocol", "provider", "$/M in", "$/M out"):
        t.add_column(col, justify="right" if col.startswith("$") else "left", header_style="dim")
    for mid in models:
        m = config.catalogue.model(mid)
        assert m is not None, f"the demo's catalogue has {mid}"
        p = config.catalogue.providers[m.provider]
        link = prices.get(mid)
        free = link is not None and link["price_source"] == "free"
        t.add_row(mid, m.tier, PROTOCOL.get(p.kind, p.kind), m.provider,
                  "free" if free else per_million(link["input_per_million"] if link else None),
                  "free" if free else per_million(link["output_per_million"] if link else None))
    console.print(t)
    console.print()
    console.print("[bold]Routing[/] (`anvil policy explain`): each stage walks its chain; the first model that "
                  "answers wins")
    r = Table(box=None, padding=(0, 2), pad_edge=True)
    r.add_column("stage", header_style="dim")
    r.add_column("chain", header_style="dim")
    for entry in data:
        chain = " → ".join(link["model"] for link in entry["chain"]) or "[red]no usable model[/]"
        r.add_row(entry["stage"], chain)
    console.print(r)


def print_costs(console: Console, report: Report, run_id: str, stages: tuple[str, ...]) -> None:
    """The run's cost per stage from the ledger, beside the same tokens on the baseline model."""
    from rich import box
    from rich.table import Table

    base = report.baseline_model
    console.print(f"[bold]Cost per stage[/], from the ledger (`anvil cost report --by stage --baseline {base}`), "
                  f"beside the same tokens all on {base}:")
    t = Table(show_footer=True, box=box.SIMPLE, pad_edge=True)
    t.add_column("stage", footer="total")
    t.add_column("calls", justify="right", footer=str(report.total.calls))
    t.add_column("failed", justify="right", footer=_failed(report.total))
    t.add_column("tokens in", justify="right", footer=f"{report.total.tokens.get('input_tokens', 0):,}")
    t.add_column("tokens out", justify="right", footer=f"{report.total.tokens.get('output_tokens', 0):,}")
    t.add_column("cost", justify="right", footer=_cost_cell(report.total))
    t.add_column(f"on {base}", justify="right", footer=money(report.total.baseline))
    t.add_column("saving", justify="right", footer=_saving(report.total), footer_style="bold green")
    by_stage = {g.key.get("stage"): g for g in report.groups}
    for name in stages:
        g = by_stage.get(name)
        if g is None:
            continue
        t.add_row(name, str(g.calls), _failed(g), f"{g.tokens.get('input_tokens', 0):,}",
                  f"{g.tokens.get('output_tokens', 0):,}", _cost_cell(g), money(g.baseline), _saving(g))
    console.print(t)


def _failed(g: Group) -> str:
    if not g.failed:
        return "0"
    return f"{g.failed} ({', '.join(f'{k}' for k in sorted(g.errors))})"


def _cost_cell(g: Group) -> str:
    if g.unpriced:
        return f"{money(g.dollars)} + {g.unpriced} unknown"
    return money(g.dollars)


def _saving(g: Group) -> str:
    if g.saving is None:
        return "unknown"
    pct = f" ({g.saving / g.baseline:.0%})" if g.baseline else ""
    return money(g.saving) + pct
