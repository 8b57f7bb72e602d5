"""`anvil bench merge DIR... --out MERGED`: shards of one bench joined into one folder.

Each shard folder (a CI matrix job, a Kubernetes indexed job, a Slurm array task) holds its
results.jsonl and, with an offline model, its ledger in home/ledger.db. The merged folder
gets every row (a pair run twice keeps its verified row over an error row, else the later
one) and every ledger attempt, copied once (a run already in the merged ledger is skipped, so
merging again is harmless). `bench report MERGED` and `ANVIL_HOME=MERGED/home anvil cost
report --all --by task` then read it like one bench.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from anvil.bench.results import RESULTS, ResultRow, ResultStore, read_rows
from anvil.bench.runner import MANIFEST
from anvil.errors import UserError


def merge_rows(folders: list[Path]) -> list[ResultRow]:
    merged: dict[tuple[str, str], ResultRow] = {}
    for folder in folders:
        for row in read_rows(folder / RESULTS):
            old = merged.get(row.key)
            if old is None or row.done or not old.done:
                merged[row.key] = row
    return list(merged.values())


def merge_ledgers(folders: list[Path], dest: Path) -> int:
    """Attempts of every shard's ledger copied into `dest` (created with the current schema)."""
    from anvil.ledger.db import Ledger

    sources = [f / "home" / "ledger.db" for f in folders if (f / "home" / "ledger.db").is_file()]
    if not sources:
        return 0
    Ledger(dest).close()  # creates and migrates it
    con = sqlite3.connect(dest, timeout=30)
    copied = 0
    try:
        columns = [r[1] for r in con.execute("PRAGMA table_info(attempts)") if r[1] != "id"]
        for i, src in enumerate(sources):
            con.execute(f"ATTACH DATABASE ? AS s{i}", (f"file:{src}?mode=ro",))
            theirs = {r[1] for r in con.execute(f"PRAGMA s{i}.table_info(attempts)")}
            cols = [c for c in columns if c in theirs]
            names = ", ".join(cols)
            cur = con.execute(f"INSERT INTO attempts ({names}) SELECT {names} FROM s{i}.attempts "
                              f"WHERE run_id NOT IN (SELECT DISTINCT run_id FROM main.attempts) ORDER BY id")
            copied += cur.rowcount
            con.commit()
            con.execute(f"DETACH DATABASE s{i}")
    finally:
        con.close()
    return copied


def merge(folders: list[Path], out: Path) -> tuple[int, int]:
    """(rows, ledger attempts) written to `out`."""
    for f in folders:
        if not (f / RESULTS).is_file():
            raise UserError(f"{f}: no {RESULTS} here (not a bench folder)")
    if out.resolve() in {f.resolve() for f in folders}:
        raise UserError("--out must be a new folder, not one of the shards")
    out.mkdir(parents=True, exist_ok=True)
    rows = merge_rows(folders)
    (out / RESULTS).unlink(missing_ok=True)
    store = ResultStore(out)
    for row in rows:
        store.append(row)
    manifests = [json.loads((f / MANIFEST).read_text(encoding="utf-8")) for f in folders if (f / MANIFEST).is_file()]
    (out / MANIFEST).write_text(json.dumps({"merged_from": [str(f) for f in folders], "shards": manifests},
                                           indent=2) + "\n", encoding="utf-8")
    (out / "home").mkdir(exist_ok=True)
    attempts = merge_ledgers(folders, out / "home" / "ledger.db")
    return len(rows), attempts
