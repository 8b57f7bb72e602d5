"""`anvil memory list|show|add|confirm|forget|stale`: the repository's remembered facts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.errors import NotARepoError, UserError

if TYPE_CHECKING:
    from anvil.memory.store import Fact, MemoryStore


def open_store(command: str = "`anvil memory`") -> tuple[MemoryStore, Path]:
    """The memory store of the repository the command runs in (memory and conventions share it)."""
    from anvil.memory.store import MemoryStore
    from anvil.paths import find_repo_root

    root = find_repo_root()
    if root is None:
        raise NotARepoError(command)
    return MemoryStore.for_repo(root), root


def _line(f: Fact) -> str:
    where = ", ".join(a.file + (f":{a.symbol}" if a.symbol else "") for a in f.anchors)
    return f"{f.id:>4}  {f.status:<9} {f.kind:<14} {f.text}" + (f"  [{where}]" if where else "")


def _show(facts: list[Fact], json_output: bool, empty: str) -> None:
    from anvil.ui.output import print_json

    if json_output:
        print_json([f.to_json() for f in facts])
        return
    if not facts:
        print(empty, file=sys.stderr)
    for f in facts:
        print(_line(f))


def _fact(store: MemoryStore, fact_id: int) -> Fact:
    fact = store.get(fact_id)
    if fact is None:
        raise UserError(f"no remembered fact with id {fact_id}", hint="`anvil memory list` shows the ids")
    return fact


def run(action: str, json_output: bool = False, fact_id: int | None = None, text: str = "",
        file: str | None = None, symbol: str | None = None, include_forgotten: bool = False) -> int:
    from anvil.ui.output import print_json

    store, root = open_store()
    try:
        if action == "list":
            _show(store.facts(include_forgotten=include_forgotten), json_output, "no remembered facts")
        elif action == "stale":
            store.check_drift(root)
            _show(store.stale(), json_output, "no stale facts")
        elif action == "show":
            assert fact_id is not None
            fact = _fact(store, fact_id)
            if json_output:
                print_json(fact.to_json())
            else:
                print(_line(fact))
                print(f"      source: run {fact.source_run or '-'}, stage {fact.source_stage or '-'}, "
                      f"by {fact.source_model or '-'}; valid from {fact.valid_from}"
                      + (f" to {fact.valid_to}" if fact.valid_to else "")
                      + (f"; stale since {fact.stale_since}" if fact.stale_since else ""))
                for a in fact.anchors:
                    print(f"      anchor: {a.file}" + (f" {a.symbol}" if a.symbol else "")
                          + f" sha256 {a.sha256 or '(missing)'}")
        elif action == "add":
            return _add(store, root, text, file, symbol, json_output)
        elif action == "confirm":
            assert fact_id is not None
            _fact(store, fact_id)
            fact2 = store.confirm(fact_id, root)
            if fact2 is None:
                raise UserError(f"fact {fact_id} was forgotten; add it again with `anvil memory add`")
            if json_output:
                print_json(fact2.to_json())
            else:
                print(_line(fact2))
        elif action == "forget":
            assert fact_id is not None
            _fact(store, fact_id)
            if not store.forget(fact_id):
                raise UserError(f"fact {fact_id} is already forgotten")
            print(f"forgot {fact_id}", file=sys.stderr)
        else:
            raise UserError(f"unknown memory action {action!r}")
    finally:
        store.close()
    return 0


def _add(store: MemoryStore, root: Path, text: str, file: str | None, symbol: str | None, json_output: bool) -> int:
    from anvil.memory.anchors import anchor_hash
    from anvil.ui.output import print_json

    if not text.strip():
        raise UserError("the fact is empty", hint='anvil memory add "run the tests with `make check`"')
    if symbol and not file:
        raise UserError("--symbol needs --file (the file that defines it)")
    anchors: list[tuple[str, str]] = []
    if file:
        rel = _relative(root, file)
        if not anchor_hash(root, rel):
            raise UserError(f"{file}: no such readable file in this repository")
        if symbol and not anchor_hash(root, rel, symbol):
            raise UserError(f"{file} defines no symbol {symbol!r}",
                            hint="use the name as the code defines it: `function`, `Class.method`")
        anchors.append((rel, symbol or ""))
    fact = store.add(text, "user", root=root, anchors=anchors, model="user")
    if json_output:
        print_json(fact.to_json())
    else:
        print(_line(fact))
    return 0


def _relative(root: Path, file: str) -> str:
    """A path given on the command line (relative to cwd, or absolute) as repo-relative."""
    path = (Path.cwd() / file).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UserError(f"{file} is outside the repository") from None
