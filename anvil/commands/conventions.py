"""`anvil conventions list|show|promote|disable|enable`: recurring review complaints as checks."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.errors import UserError

if TYPE_CHECKING:
    from anvil.memory.checks import Check
    from anvil.memory.conventions import Convention, Conventions
    from anvil.memory.store import MemoryStore


def _get(conventions: Conventions, ref: str) -> Convention:
    c = conventions.get(ref)
    if c is None:
        raise UserError(f"no convention {ref!r}", hint="`anvil conventions list` shows the ids and keys")
    return c


def _line(c: Convention) -> str:
    check = f"{c.check_kind} {c.pattern!r}" if c.pattern else "no check yet"
    return f"{c.id:>4}  {c.status:<9} {c.runs:>2} run(s)  {c.key}  ({check})\n      {c.message}"


def run(action: str, ref: str = "", regex: str | None = None, query: str | None = None, model: str | None = None,
        trust_repo: bool = False, json_output: bool = False) -> int:
    from anvil.commands.memory import open_store
    from anvil.ui.output import print_json

    store, root = open_store("`anvil conventions`")
    conventions = store.conventions
    try:
        if action == "list":
            listed = conventions.all()
            if json_output:
                print_json([c.to_json() for c in listed])
            elif not listed:
                print("no conventions yet: a review complaint raised in two runs is proposed", file=sys.stderr)
            for c in listed if not json_output else []:
                print(_line(c))
        elif action == "show":
            c = _get(conventions, ref)
            originals, fixed = conventions.cases(c.key)
            if json_output:
                print_json({**c.to_json(), "cases": originals, "fixed": fixed})
            else:
                print(_line(c))
                for title, items in (("flagged", originals), ("fixed versions", fixed)):
                    print(f"\n{title} ({len(items)}):")
                    for text in items:
                        print("    " + text.strip().replace("\n", "\n    "))
        elif action == "promote":
            return _promote(store, root, _get(conventions, ref), regex, query, model, trust_repo, json_output)
        elif action == "disable":
            c = _get(conventions, ref)
            if not conventions.disable(c.key):
                raise UserError(f"convention {c.key} is already disabled")
            print(f"disabled {c.key}", file=sys.stderr)
        elif action == "enable":
            c = _get(conventions, ref)
            print(f"{c.key} is {conventions.enable(c.key)}", file=sys.stderr)
        else:
            raise UserError(f"unknown conventions action {action!r}")
    finally:
        store.close()
    return 0


def _promote(store: MemoryStore, root: Path, c: Convention, regex: str | None, query: str | None,
             model: str | None, trust_repo: bool, json_output: bool) -> int:
    from anvil.memory.checks import Check
    from anvil.ui.output import print_json

    if regex is not None and query is not None:
        raise UserError("give --regex or --query, not both")
    if c.status == "promoted":
        raise UserError(f"convention {c.key} is already promoted ({c.check_kind} {c.pattern!r})",
                        hint=f"`anvil conventions disable {c.id}` first to replace its check")
    given = regex if regex is not None else query
    if given is not None:
        check = Check("regex" if regex is not None else "query", given, c.language)
        refused = store.conventions.promote(c.key, check, written_by="user")
        if refused:
            raise UserError(f"the check is refused: {refused}",
                            hint=f"`anvil conventions show {c.id}` lists the cases it must (not) flag")
        written_by, cost = "user", None
    else:
        check, written_by, cost = _by_model(store, root, c, model, trust_repo)
    done = store.conventions.get(c.key)
    assert done is not None
    if json_output:
        print_json({**done.to_json(), "cost": cost})
    else:
        print(_line(done))
        print(f"promoted: validate now runs this {check.kind} without a model (written by {written_by}"
              + (f", {cost}" if cost else "") + ")", file=sys.stderr)
    return 0


def _by_model(store: MemoryStore, root: Path, c: Convention, model: str | None,
              trust_repo: bool) -> tuple[Check, str, str]:
    """The check written by review's chain (or --model): (check, model, its cost as text)."""
    from anvil.commands.ask import chain_for
    from anvil.commands.trust import load_checked
    from anvil.ledger.db import repo_key
    from anvil.ledger.opening import open_ledger
    from anvil.memory.writer import promote_by_model, walker_ask
    from anvil.routing.walker import CallSite, Walker
    from anvil.ui.output import money

    config = load_checked(root, trust_repo=trust_repo)
    chain = chain_for(config, "review", model)
    run_id = "conv-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    site = CallSite(run_id=run_id, stage="conventions", repo=repo_key(root))
    with open_ledger() as ledger:
        walker = Walker(config.catalogue.walker, ledger=ledger, config=config)
        written = promote_by_model(store.conventions, c, walker_ask(walker, chain, config.policy.stage("review"),
                                                                     site))
        spend = ledger.spend(run_id)
    cost = (f"{written.calls} call(s), {spend.tokens:,} tokens, "
            + ("cost unknown" if spend.unpriced else money(spend.dollars, 6)))
    if written.check is None:
        raise UserError(f"the model's check is refused: {written.refused} ({cost})",
                        hint=f"write it yourself: `anvil conventions promote {c.id} --regex PATTERN`")
    return written.check, written.model, cost
