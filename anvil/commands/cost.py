"""`anvil cost report`: spend by stage, model, provider, run, day, repo, client, session or preset."""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import UserError

if TYPE_CHECKING:
    from anvil.ledger.report import Group, Report
    from anvil.routing.resolver import ResolvedModel

TOKEN_COLUMNS = (("input_tokens", "input"), ("cache_read_tokens", "cache read"),
                 ("cache_write_tokens", "cache write"), ("output_tokens", "output"))


def _baseline(model_id: str) -> ResolvedModel:
    """The baseline as a ResolvedModel: a catalogue id, else any model the price table knows."""
    from anvil.config.loader import load_config
    from anvil.config.schema import ModelEntry, ProviderEntry
    from anvil.ledger.pricing import model_price
    from anvil.paths import find_repo_root
    from anvil.routing.resolver import ResolvedModel

    config = load_config(find_repo_root())
    m = config.catalogue.model(model_id)
    if m is not None:
        p = config.catalogue.providers[m.provider]
        rm = ResolvedModel(m, m.provider, p, model_price(m, p))
    else:
        from genai_prices.data_snapshot import get_snapshot

        try:
            provider, _info = get_snapshot().find_provider_model(model_id, None, None, None)
        except Exception:
            known = ", ".join(x.id for x in config.catalogue.models)
            raise UserError(f"--baseline {model_id}: not in the catalogue nor the price table",
                            hint=f"catalogue models: {known}") from None
        p = ProviderEntry(kind="openai_compatible", price_list=provider.id)
        m = ModelEntry(id=model_id, provider=provider.id, tier="premium")
        rm = ResolvedModel(m, provider.id, p, model_price(m, p))
    if not rm.price.known or rm.price.source == "free":
        raise UserError(f"--baseline {model_id}: its price is {rm.price.source}; pick a priced model")
    return rm


def _filter(since: str | None, until: str | None, run_id: str | None, repo: str | None,
            all_repos: bool, demo_rows: bool) -> tuple[Any, str]:
    from anvil.ledger.db import repo_key
    from anvil.ledger.report import Filter, parse_since, parse_until
    from anvil.paths import find_repo_root

    if all_repos or run_id:
        repo_value, scope = None, "all repositories" if all_repos else f"run {run_id}"
    elif repo:
        p = Path(repo).expanduser()
        repo_value = repo_key(p) if p.exists() else repo  # a path, or the name as recorded
        scope = repo_value
    else:
        root = find_repo_root()
        repo_value = repo_key(root) if root is not None else None
        scope = repo_value or "all repositories (not inside a git repo)"
    return Filter(parse_since(since), parse_until(until), run_id, repo_value, demo_rows), scope


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(errors.items(), key=lambda kv: -kv[1]))


def _cost_text(g: Group) -> str:
    from anvil.ui.output import money

    if g.unpriced and g.dollars == 0:
        return f"unknown ({g.unpriced})"
    if g.unpriced:
        return f"{money(g.dollars)} + {g.unpriced} unknown"
    return money(g.dollars)


def _table(report: Report, scope: str) -> None:
    from rich.table import Table

    from anvil.ui.output import money, out_console

    t = Table(title=f"cost: {scope}", title_justify="left")
    for b in report.by:
        t.add_column(b)
    for name in ("calls", "failed"):
        t.add_column(name, justify="right")
    for _, label in TOKEN_COLUMNS:
        t.add_column(label, justify="right")
    t.add_column("cost", justify="right")
    if report.baseline_model:
        t.add_column(f"on {report.baseline_model}", justify="right")
        t.add_column("saving", justify="right")

    def cells(g: Group) -> list[str]:
        failed = f"{g.failed} ({_errors_text(g.errors)})" if g.failed else "0"
        row = [str(g.calls), failed, *(f"{g.tokens.get(k, 0):,}" for k, _ in TOKEN_COLUMNS), _cost_text(g)]
        if report.baseline_model:
            saving = "unknown" if g.saving is None else (
                ("-" + money(-g.saving) if g.saving < 0 else money(g.saving))
                + (" (partial)" if g.unpriced else ""))
            row += [money(g.baseline), saving]
        return row

    for g in report.groups:
        t.add_row(*(g.key.get(b, "") or "-" for b in report.by), *cells(g))
    if report.groups:
        t.add_section()
    t.add_row("total", *([""] * (len(report.by) - 1)), *cells(report.total), style="bold")
    con = out_console()
    con.print(t)
    if report.total.unpriced:
        con.print(f"{report.total.unpriced} call(s) used tokens at an unknown price: their cost is unknown "
                  "(not $0); add a price in models.yaml to count them.")
        for note, n in report.unpriced_reasons.items():
            con.print(f"  unpriced ({n}): {note}", markup=False)
    if report.interrupted:
        con.print(f"{report.interrupted} call(s) were interrupted (Ctrl-C or a killed process): counted with the "
                  f"{report.interrupted_tokens:,} tokens streamed so far (input estimated when the provider had "
                  "not said).")
    if report.flagged:
        con.print(f"{report.flagged} call(s) reported usage out of range (negative or absurd): recorded clamped "
                  "and flagged (`cost report --run RUN --json` shows the flags).")
    if report.in_flight:
        con.print(f"{report.in_flight} call(s) still in flight: counted with their estimated tokens so far.")


def _csv(report: Report) -> None:
    w = csv.writer(sys.stdout)
    head = [*report.by, "calls", "attempts", "failed", "errors", *(k for k, _ in TOKEN_COLUMNS),
            "reasoning_tokens", "dollars", "unpriced"]
    if report.baseline_model:
        head += ["baseline_dollars", "saving"]
    w.writerow(head)
    for g in [*report.groups]:
        d = g.to_json()
        d["errors"] = ";".join(f"{k}:{n}" for k, n in sorted(g.errors.items()))
        w.writerow([("" if d.get(h) is None else d.get(h)) for h in head])


def run(by: list[str] | None = None, since: str | None = None, until: str | None = None,
        run_id: str | None = None, repo: str | None = None, all_repos: bool = False,
        baseline: str | None = None, demo_rows: bool = False, json_output: bool = False,
        csv_output: bool = False) -> int:
    from anvil.ledger.db import ledger_exists
    from anvil.ledger.opening import open_ledger
    from anvil.ledger.report import GROUPS, attempt_rows, build_report

    groups = [g.strip() for b in (by or []) for g in b.split(",") if g.strip()] or ["stage", "model"]
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise UserError(f"--by {', '.join(bad)}: unknown grouping", hint=f"use {', '.join(GROUPS)}")
    if json_output and csv_output:
        raise UserError("give --json or --csv, not both")
    flt, scope = _filter(since, until, run_id, repo, all_repos, demo_rows)
    base = _baseline(baseline) if baseline else None
    path: Path | None = None  # the configured ledger (SQLite in $ANVIL_HOME, or the team's PostgreSQL)
    if not ledger_exists():  # not created just to be read: an empty in-memory one answers
        from anvil.ui.output import err_console

        err_console().print("no ledger yet: nothing has been called (it is created by the first model call)")
        path = Path(":memory:")
    with open_ledger(path) as led:
        try:  # calls whose process died mid-call: settled as interrupted, so they are counted as such
            led.settle_unsettled()
        except sqlite3.OperationalError:  # read-only or busy: their started rows still count
            pass
        report = build_report(led.conn, list(dict.fromkeys(groups)), flt, base)
        attempts = attempt_rows(led.conn, flt) if (json_output and run_id) else None
    if json_output:
        from anvil.ui.output import print_json

        data: dict[str, Any] = {
            "scope": scope, "by": report.by,
            "filters": {"since": flt.since, "until": flt.until, "run": flt.run_id, "repo": flt.repo,
                        "demo": flt.demo},
            "baseline": report.baseline_model,
            "rows": [g.to_json() for g in report.groups],
            "total": report.total.to_json(),
            "unpriced_reasons": report.unpriced_reasons,
            "interrupted": {"calls": report.interrupted, "tokens": report.interrupted_tokens},
            "in_flight": report.in_flight,
            "usage_flagged": report.flagged,
        }
        if attempts is not None:
            data["attempts"] = attempts
        print_json(data)
    elif csv_output:
        _csv(report)
    else:
        _table(report, scope)
    return 0

