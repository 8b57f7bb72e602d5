"""The cost ledger: one SQLite row per attempt, failed ones included (DESIGN.md 7).

`$ANVIL_HOME/ledger.db`, WAL mode, schema from numbered migrations. Each
`record` is its own committed transaction, so a process killed mid-call leaves
every finished attempt in a readable ledger. The chain-walker is the only
writer in the product (it is the only caller of `Provider.chat`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from anvil.ledger.migrations import migrate, unpriced_sql
from anvil.paths import anvil_home

PICO = Decimal(10) ** 12


def utc_now_iso(at: datetime | None = None) -> str:
    """The one timestamp format of the ledger: sortable as text, always UTC, microseconds."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dec_text(d: Decimal) -> str:
    """Exact, plain decimal text: 2.5 not 2.50, 0.0000003 not 3E-7."""
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "") else text


def to_pico(dollars: Decimal | None) -> int | None:
    if dollars is None:
        return None
    return int((dollars * PICO).to_integral_value(ROUND_HALF_EVEN))


def from_pico(pico: int | None) -> Decimal | None:
    if pico is None:
        return None
    return (Decimal(pico) / PICO).normalize() if pico else Decimal(0)


@dataclass(frozen=True)
class AttemptRow:
    """One attempt, as written. Field order = column order of the INSERT."""

    ts: str
    run_id: str
    repo: str
    stage: str
    attempt: int
    chain_pos: int
    provider: str
    provider_kind: str
    model: str
    requested_model: str
    served_model: str | None
    outcome: str  # "ok" | "error"
    error_kind: str | None
    http_status: int | None
    error_message: str | None
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    latency_s: float | None
    ttft_s: float | None
    dollars: Decimal | None
    cost_source: str
    prices_version: str | None
    request_id: str | None
    demo: bool = False
    client: str = ""  # `anvil serve`: the client's user agent
    session: str = ""  # `anvil serve`: the conversation
    preset: str = ""  # `anvil serve`: the model name the client asked for (anvil/plan, a catalogue id)
    task: str = ""  # the benchmark task (anvil bench); '' otherwise


_COLUMNS = [f.name for f in fields(AttemptRow)]
_INSERT = (f"INSERT INTO attempts ({', '.join(_COLUMNS)}, pico_usd) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?)")


_DOLLARS, _DEMO = _COLUMNS.index("dollars"), _COLUMNS.index("demo")


def _params(row: AttemptRow) -> tuple[Any, ...]:
    values = [getattr(row, c) for c in _COLUMNS]  # not astuple(): it deep-copies every field
    values[_DOLLARS] = None if row.dollars is None else dec_text(row.dollars)
    values[_DEMO] = 1 if row.demo else 0
    return (*values, to_pico(row.dollars))


@dataclass(frozen=True)
class Spend:
    """What a run (or one of its stages) has spent so far."""

    dollars: Decimal  # known dollars only
    tokens: int  # input + output
    attempts: int
    unpriced: int  # attempts of unknown price that used tokens (or answered without usage)


def default_path(env: Any = None) -> Path:
    return anvil_home(env) / "ledger.db"


class Ledger:
    """A connection to the ledger. Thread-safe for the walker's use (one lock)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit (isolation_level=None): every INSERT is its own durable transaction.
        self.conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is safe in WAL against a killed process (only power loss can drop the tail).
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        # Checkpoint (the one fsync NORMAL does) every ~16 MB of WAL, not every 4 MB: with one
        # commit per attempt this halves the cost of a write; the WAL is cut back to 16 MB after.
        self.conn.execute("PRAGMA wal_autocheckpoint=4000")
        self.conn.execute("PRAGMA journal_size_limit=16777216")
        self._lock = threading.Lock()
        migrate(self.conn)

    # ------------------------------------------------------------ writing

    def record(self, row: AttemptRow) -> None:
        with self._lock:
            self.conn.execute(_INSERT, _params(row))

    def record_outcome(self, values: tuple[object, ...]) -> None:
        """One stage attempt's outcome (anvil.evidence.outcomes); a repeat of the same attempt replaces it."""
        with self._lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO outcomes (ts, run_id, repo, stage, attempt, model, success, reason, "
                "pico_usd, unpriced, tokens, task, demo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def record_many(self, rows: Iterable[AttemptRow]) -> int:
        """Bulk insert in one transaction (imports, benchmarks)."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                cur = self.conn.executemany(_INSERT, (_params(r) for r in rows))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return cur.rowcount

    # ------------------------------------------------------------ reading

    def spend(self, run_id: str, stage: str | None = None) -> Spend:
        sql = ("SELECT COALESCE(SUM(pico_usd), 0), COALESCE(SUM(input_tokens + output_tokens), 0), "
               f"COUNT(*), COALESCE(SUM({unpriced_sql()}), 0) FROM attempts WHERE run_id = ?")
        args: list[Any] = [run_id]
        if stage is not None:
            sql += " AND stage = ?"
            args.append(stage)
        with self._lock:
            pico, tokens, n, unpriced = self.conn.execute(sql, args).fetchone()
        return Spend(from_pico(pico) or Decimal(0), int(tokens), int(n), int(unpriced))

    def attempts(self, run_id: str) -> list[dict[str, Any]]:
        """Every attempt of a run, oldest first (for `anvil show`)."""
        with self._lock:
            cur = self.conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def repo_key(path: Path | str | None) -> str:
    """How the ledger names a repository: the main work tree's absolute path.

    A run works in a git worktree of the repo; its rows must still count for the repo,
    so a worktree maps to the work tree that owns its common .git directory.
    """
    import subprocess

    if path is None:
        return ""
    path = Path(path).resolve()
    try:
        out = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                             cwd=path, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return str(path)
    common = Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None
    if common is not None and common.name == ".git":
        return str(common.parent)
    return str(path)
