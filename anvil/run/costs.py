"""What a run cost, stage by stage: from the ledger when it has the run, else from the run state.

Used by `anvil show`, `anvil runs` and the ship stage's pull-request body, so
the three always agree. Unknown prices stay unknown (None / an "unpriced"
count), never $0.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from anvil.ledger.opening import open_ledger

if TYPE_CHECKING:
    from anvil.run.store import Run


def ledger_costs(run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger's view of each run that has rows there: total, unpriced count, per stage, calls.

    Read-only in spirit: a missing ledger is not created just to be read, and
    a ledger that cannot be read leaves `show` on the run state's own costs.
    """
    if not run_ids:
        return {}
    from anvil.errors import UserError
    from anvil.ledger.backend import ledger_errors
    from anvil.ledger.db import ledger_exists

    if not ledger_exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    degrade: tuple[type[Exception], ...] = (*ledger_errors(), RuntimeError, OSError, UserError)
    try:
        led = open_ledger()
    except UserError as exc:  # the run state's own costs still answer; say why the ledger's do not
        print(f"warning: {exc.message} ({exc.hint})", file=sys.stderr)
        return {}
    try:
        with led:
            for rid in run_ids:
                spend = led.spend(rid)
                if not spend.attempts:
                    continue
                calls = led.attempts(rid)
                stages: dict[str, dict[str, Any]] = {}
                for stage in dict.fromkeys(c["stage"] for c in calls):
                    sp = led.spend(rid, stage)
                    stages[stage] = {"dollars": sp.dollars, "tokens": sp.tokens, "attempts": sp.attempts,
                                     "unpriced": sp.unpriced}
                out[rid] = {"total": spend.dollars, "unpriced": spend.unpriced, "tokens": spend.tokens,
                            "attempts": spend.attempts, "stages": stages, "calls": calls}
    except degrade:
        return {}
    return out


def ledger_for_run(run_id: str) -> dict[str, Any] | None:
    return ledger_costs([run_id]).get(run_id)


def stage_cost_rows(run: Run) -> tuple[list[dict[str, Any]], Decimal | None, int]:
    """(rows, total, unpriced calls) for a `runstore.Run`: one row per stage that ran.

    Each row: stage, model, tokens, cost (Decimal or None), unpriced (count);
    the shape `github.pr_body` takes.
    """
    led = ledger_for_run(run.id)
    rows = []
    for name, st in run.state.stages.items():
        ls = (led or {}).get("stages", {}).get(name)
        if st.status == "pending" and not ls:
            continue
        if ls:
            cost, tokens, unpriced = ls["dollars"], ls["tokens"], ls["unpriced"]
            cost = None if unpriced and not cost else cost
        else:
            cost, tokens, unpriced = st.cost, st.tokens, 1 if st.cost is None else 0
        rows.append({"stage": name, "model": st.model, "tokens": tokens, "cost": cost, "unpriced": unpriced})
    if led:
        return rows, led["total"], led["unpriced"]
    unpriced_total = sum(r["unpriced"] for r in rows)
    return rows, run.state.spend, unpriced_total
