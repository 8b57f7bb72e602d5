"""`anvil runs`: this repository's runs, newest first."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def age_seconds(created: str | None, now: datetime) -> int | None:
    from anvil.run.store import parse_time

    t = parse_time(created)
    return None if t is None else max(0, int((now - t).total_seconds()))


def age(created: str | None, now: datetime) -> str:
    secs = age_seconds(created, now)
    if secs is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def run_costs(run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each run's cost from the ledger, for the runs it has rows for."""
    from anvil.run.costs import ledger_costs

    return ledger_costs(run_ids)


def rows(repo_root: Path, now: datetime | None = None) -> list[dict[str, Any]]:
    from anvil.run.store import RunStore

    now = now or datetime.now(UTC)
    summaries = RunStore(repo_root).list()
    ledger = run_costs([s.id for s in summaries])
    out = []
    for s in summaries:
        led = ledger.get(s.id)
        out.append({"id": s.id, "request": s.request, "status": s.status, "stage": s.stage_reached,
                    "cost": led["total"] if led else s.spend, "unpriced_calls": led["unpriced"] if led else None,
                    "cost_source": "ledger" if led else "run state",
                    "branch": s.branch, "created": s.created, "updated": s.updated,
                    "age_seconds": age_seconds(s.created, now)})
    return out


def run(json_output: bool = False, now: datetime | None = None) -> int:
    from anvil.errors import NotARepoError
    from anvil.paths import find_repo_root
    from anvil.ui.output import money, out_console, print_json

    root = find_repo_root()
    if root is None:
        raise NotARepoError("`anvil runs`")
    data = rows(root, now)
    if json_output:
        print_json({"runs": data})
        return 0
    if not data:
        print('no runs yet in this repository; start one with `anvil run "..."`', file=sys.stderr)
        return 0
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"anvil runs ({len(data)})", title_justify="left")
    for col in ("run", "request", "status", "stage", "cost", "age"):
        table.add_column(col, justify="right" if col in ("cost", "age") else "left",
                         no_wrap=col in ("run", "status", "cost", "age"))
    colours = {"done": "green", "failed": "red", "interrupted": "yellow", "budget_stopped": "yellow",
               "running": "cyan"}
    for r in data:
        req = r["request"] if len(r["request"]) <= 60 else r["request"][:57] + "..."
        table.add_row(r["id"], Text(req), Text(r["status"], style=colours.get(r["status"], "")),
                      r["stage"] or "-", money(r["cost"]) + ("*" if r["unpriced_calls"] else ""),
                      age(r["created"], datetime.now(UTC) if now is None else now))
    out_console().print(table)
    if any(r["unpriced_calls"] for r in data):
        print("* plus calls whose price is unknown (see `anvil show RUN`)", file=sys.stderr)
    return 0
