"""`anvil show RUN`: one run's stages, models, attempts, burns, artifacts, calls and cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _duration(started: str | None, finished: str | None) -> float | None:
    from anvil.run.store import parse_time

    a, b = parse_time(started), parse_time(finished)
    return (b - a).total_seconds() if a and b else None


def details(repo_root: Path, run_id: str) -> dict[str, Any]:
    from anvil.run.costs import ledger_for_run
    from anvil.run.store import RunStore

    run = RunStore(repo_root).load(run_id)
    st = run.state
    ledger = ledger_for_run(run.id)
    led_stages = (ledger or {}).get("stages", {})
    stages = []
    for name, s in st.stages.items():
        led = led_stages.get(name)
        cost = s.cost if led is None else led["dollars"]
        stages.append({"stage": name, "status": s.status, "attempts": s.attempts, "model": s.model,
                       "models_tried": s.models, "tokens": s.tokens if led is None else led["tokens"],
                       "cost": cost, "unpriced_calls": led["unpriced"] if led else (1 if s.cost is None else 0),
                       "calls": led["attempts"] if led else None, "error": s.error,
                       "started": s.started, "finished": s.finished,
                       "seconds": s.data.get("elapsed") or _duration(s.started, s.finished),
                       "artifact": s.artifact})
    artifacts = [{"name": n, "bytes": (run.dir / n).stat().st_size, "path": str(run.dir / n)} for n in run.artifacts()]
    total = ledger["total"] if ledger is not None else st.spend
    return {
        "id": run.id, "request": st.request, "status": st.effective_status(), "error": st.error,
        "exit_code": st.exit_code,
        "created": st.created, "updated": st.updated, "branch": st.branch, "base_ref": st.base_ref,
        "worktree": st.worktree, "worktree_removed": bool(st.worktree_removed),
        "commit": st.stage("ship").data.get("sha"), "pr_url": st.pr_url, "stage_reached": st.stage_reached(),
        "next_stage": st.first_unfinished(), "options": st.options,
        "stages": stages, "burns": st.burns, "artifacts": artifacts,
        "exchanges": [p.name for p in run.exchanges()],
        "cost": total, "unpriced_calls": ledger["unpriced"] if ledger else None,
        "cost_source": "ledger" if ledger is not None else "run state",
        "calls": [_call_row(c) for c in (ledger or {}).get("calls", [])],
        "dir": str(run.dir),
    }


def _call_row(c: dict[str, Any]) -> dict[str, Any]:
    from decimal import Decimal

    keep = ("ts", "stage", "attempt", "chain_pos", "provider", "model", "served_model", "outcome", "error_kind",
            "http_status", "input_tokens", "output_tokens", "cache_read_tokens", "latency_s", "cost_source")
    row = {k: c.get(k) for k in keep}
    row["cost"] = Decimal(c["dollars"]) if c.get("dollars") not in (None, "") else None
    return row


def _money_unpriced(money: Any, value: Any, unpriced: int | None) -> str:
    text = money(value)
    return f"{text} + {unpriced} unpriced" if unpriced and value is not None else text


def _burn_line(b: Any) -> str:
    if isinstance(b, dict):
        who = b.get("model") or b.get("model_id") or b.get("target") or "?"
        why = b.get("reason") or b.get("kind") or ""
        until = b.get("until")
        return f"{who}: {why}" + (f" (until {until})" if until else "")
    return str(b)


def run(run_id: str, json_output: bool = False) -> int:
    from anvil.errors import NotARepoError
    from anvil.paths import find_repo_root
    from anvil.ui.output import money, out_console, print_json

    root = find_repo_root()
    if root is None:
        raise NotARepoError("`anvil show`")
    d = details(root, run_id)
    if json_output:
        print_json(d)
        return 0
    from rich.table import Table
    from rich.text import Text

    con = out_console()
    con.print(Text(f"run {d['id']}  [{d['status']}]", style="bold"))
    con.print(Text(f"request   {d['request']}"))
    if d["worktree"] and d["worktree_removed"]:
        d = {**d, "worktree": f"{d['worktree']} (removed)"}
    for key, label in (("branch", "branch"), ("commit", "commit"), ("base_ref", "base"), ("pr_url", "pull req"),
                       ("worktree", "worktree"), ("created", "created"), ("updated", "updated"), ("error", "error")):
        if d.get(key):
            con.print(Text(f"{label:<9} {d[key]}"))
    if d["status"] in ("failed", "interrupted", "budget_stopped") and d["next_stage"]:
        con.print(Text(f"resume    anvil resume {d['id']}   (continues at {d['next_stage']})"))

    table = Table(title="stages", title_justify="left")
    for col in ("stage", "status", "attempts", "model", "tokens", "cost", "time"):
        table.add_column(col, justify="right" if col in ("attempts", "tokens", "cost", "time") else "left")
    for s in d["stages"]:
        tried = [m for m in s["models_tried"] if m != s["model"]]
        model = (s["model"] or "-") + (f" (after {', '.join(tried)})" if tried else "")
        secs = f"{s['seconds']:.1f}s" if s["seconds"] is not None else "-"
        cost = _money_unpriced(money, s["cost"], s["unpriced_calls"]) if s["status"] != "pending" or s["calls"] \
            else "-"
        table.add_row(s["stage"], s["status"], str(s["attempts"] or "-"), Text(model),
                      f"{s['tokens']:,}" if s["tokens"] else "-", cost, secs)
    table.add_row("total", "", "", "", "", _money_unpriced(money, d["cost"], d["unpriced_calls"]), "", style="bold")
    con.print(table)
    if d["calls"]:
        calls = Table(title="calls (ledger)", title_justify="left")
        for col in ("stage", "#", "model", "provider", "outcome", "tokens in/out", "latency", "cost"):
            calls.add_column(col, justify="right" if col in ("#", "tokens in/out", "latency", "cost") else "left")
        for c in d["calls"]:
            outcome = c["outcome"] if c["outcome"] == "ok" else f"{c['error_kind'] or 'error'}" + (
                f" {c['http_status']}" if c["http_status"] else "")
            lat = f"{c['latency_s']:.1f}s" if c["latency_s"] is not None else "-"
            calls.add_row(str(c["stage"]), str(c["attempt"]), str(c["model"]), str(c["provider"]), outcome,
                          f"{c['input_tokens']:,}/{c['output_tokens']:,}", lat, money(c["cost"]))
        con.print(calls)
    if d["burns"]:
        con.print(Text("burned (skipped for the rest of the run):", style="bold"))
        for b in d["burns"]:
            con.print(Text(f"  {_burn_line(b)}"))
    if d["artifacts"]:
        con.print(Text("artifacts:", style="bold"))
        for a in d["artifacts"]:
            con.print(Text(f"  {a['name']:<16} {a['bytes']:>8,} bytes  {a['path']}"))
    if d["exchanges"]:
        con.print(Text(f"exchanges: {len(d['exchanges'])} under {d['dir']}/exchanges/"))
    return 0
