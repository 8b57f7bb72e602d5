"""Tokens and dollars of three repeat runs, with memory and conventions and without.

The same request three times on the bundled example repo, every stage served by the
scripted vendor server (real adapters, git, test command, SQLite ledger), the builder
writing an `assert` for argument validation that the reviewer flags whenever it sees it:

- with: one ANVIL_HOME, so runs 2 and 3 get the remembered facts; after run 2 the
  complaint is proposed and `anvil conventions promote` has the model write its check
  (its calls are shown on their own line); run 3's validate catches the line without a model.
- without: a fresh ANVIL_HOME per run (nothing remembered, no convention).

    python benchmarks/memory_repeat.py

Prints per run: calls, review tokens, all tokens, dollars (the ledger's, exact).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _pytest.monkeypatch import MonkeyPatch  # noqa: E402

from anvil.ledger.db import from_pico  # noqa: E402
from anvil.memory.store import MemoryStore  # noqa: E402
from tests.e2e_helpers import ANVIL, InProcess, make_env  # noqa: E402
from tests.test_conventions_runs import pipeline  # noqa: E402


def spend(home: Path, run_id: str | None = None, stage: str | None = None) -> tuple[int, int, int, Decimal]:
    """(calls, review tokens, tokens, dollars) of a run (or of every row of a stage)."""
    con = sqlite3.connect(home / "ledger.db")
    where, args = ("run_id = ?", [run_id]) if run_id else ("stage = ?", [stage])
    try:
        rows = con.execute(f"SELECT stage, input_tokens + output_tokens, pico_usd FROM attempts WHERE {where}",
                           args).fetchall()
    finally:
        con.close()
    dollars = sum((from_pico(p) or Decimal(0) for _, _, p in rows), Decimal(0))
    return len(rows), sum(t for s, t, _ in rows if s == "review"), sum(t for _, t, _ in rows), dollars


def one_run(ip: InProcess) -> str:
    r = ip.runner(pipeline())
    r.execute()
    assert r.run.state.status == "done", r.run.state.error
    return r.run.id


def line(label: str, calls: int, review: int, total: int, dollars: Decimal) -> str:
    return f"{label:<34} {calls:>5} {review:>9,} {total:>9,}  ${dollars:.6f}"


def main() -> int:
    print(f"{'':<34} {'calls':>5} {'review tk':>9} {'tokens':>9}  dollars")
    mp = MonkeyPatch()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "with").mkdir()
        ip = InProcess(Path(tmp) / "with", mp)
        try:
            totals = [Decimal(0), 0]
            for n in (1, 2):
                rid = one_run(ip)
                s = spend(ip.home, rid)
                totals = [totals[0] + s[3], totals[1] + s[2]]
                print(line(f"with memory+conventions, run {n}", *s))
            store = MemoryStore.for_repo(ip.repo)
            [c] = store.conventions.all()
            store.close()
            p = subprocess.run([ANVIL, "conventions", "promote", str(c.id), "--trust-repo"], cwd=ip.repo,
                               env=make_env(ip.home), capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            s = spend(ip.home, stage="conventions")
            totals = [totals[0] + s[3], totals[1] + s[2]]
            print(line("  promote (writes the check)", *s))
            rid = one_run(ip)
            s = spend(ip.home, rid)
            totals = [totals[0] + s[3], totals[1] + s[2]]
            print(line("with memory+conventions, run 3", *s))
            print(f"{'with: three runs + promote':<34} {'':>5} {'':>9} {totals[1]:>9,}  ${totals[0]:.6f}")
        finally:
            ip.close()
        without = [Decimal(0), 0]
        for n in (1, 2, 3):
            (Path(tmp) / f"without{n}").mkdir()
            fresh = InProcess(Path(tmp) / f"without{n}", mp)
            try:
                s = spend(fresh.home, one_run(fresh))
            finally:
                fresh.close()
            without = [without[0] + s[3], without[1] + s[2]]
            print(line(f"without (fresh home), run {n}", *s))
        print(f"{'without: three runs':<34} {'':>5} {'':>9} {without[1]:>9,}  ${without[0]:.6f}")
    mp.undo()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
