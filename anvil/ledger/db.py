"""The cost ledger: one SQLite row per attempt, failed ones included (DESIGN.md 7).

`$ANVIL_HOME/ledger.db`, WAL mode, schema from numbered migrations. Each
`record` is its own committed transaction, so a process killed mid-call leaves
every finished attempt in a readable ledger. The chain-walker is the only
writer in the product (it is the only caller of `Provider.chat`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.ledger.backend import LedgerConnection
from anvil.ledger.migrations import add_settled_to_rollups, migrate, unpriced_sql
from anvil.paths import anvil_home

if TYPE_CHECKING:
    from anvil.providers.types import Usage

_HOST = socket.gethostname()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a zombie (killed, not yet reaped) answers kill(0) but is gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True

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
    state: str = "settled"  # "started" (call in flight) | "settled" | "interrupted"
    estimated: bool = False  # some token count is a local estimate (chars/4), not the provider's
    flags: str | None = None  # e.g. "usage_clamped: input_tokens=1000000000000000000"
    cost_note: str | None = None  # why the row is unpriced
    pid: int | None = None  # the process that owns a started row
    host: str | None = None
    task: str = ""  # the benchmark task (anvil bench); '' otherwise


_COLUMNS = [f.name for f in fields(AttemptRow)]
_INSERT = (f"INSERT INTO attempts ({', '.join(_COLUMNS)}, pico_usd) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?)")
_UPDATE = (f"UPDATE attempts SET {', '.join(f'{c} = ?' for c in _COLUMNS)}, pico_usd = ? "
           "WHERE id = ? AND state = 'started'")
_PROGRESS = ("UPDATE attempts SET input_tokens = ?, cache_read_tokens = ?, cache_write_tokens = ?, "
             "output_tokens = ?, reasoning_tokens = ?, estimated = ?, dollars = ?, pico_usd = ?, "
             "cost_source = ?, latency_s = ? WHERE id = ? AND state = 'started'")
INTERRUPTED_MESSAGE = "the process ended before the call finished (tokens are those counted so far)"


_DOLLARS, _DEMO, _EST = _COLUMNS.index("dollars"), _COLUMNS.index("demo"), _COLUMNS.index("estimated")


def _params(row: AttemptRow) -> tuple[Any, ...]:
    values = [getattr(row, c) for c in _COLUMNS]  # not astuple(): it deep-copies every field
    values[_DOLLARS] = None if row.dollars is None else dec_text(row.dollars)
    values[_DEMO] = 1 if row.demo else 0
    values[_EST] = 1 if row.estimated else 0
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


def configured_url(env: Any = None) -> str | None:
    """The team ledger's database URL from the home config (`ledger: {url: ...}`), or None: SQLite."""
    from anvil.config.home import load_home_config

    settings = load_home_config(env).ledger
    return settings.url if settings is not None else None


def ledger_exists(env: Any = None) -> bool:
    """Whether there is a ledger to read (a missing SQLite file is not created just to be read)."""
    return configured_url(env) is not None or default_path(env).exists()


def _enable_wal(conn: LedgerConnection, tries: int = 100) -> None:
    """Switch a SQLite ledger to WAL. The switch takes the file's exclusive lock and SQLite does
    not wait for it (no busy handler): several processes opening a fresh ledger at once retry."""
    for i in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except conn.OperationalError as exc:
            if "locked" not in str(exc) or i == tries - 1:
                raise
            time.sleep(0.05)


class Ledger:
    """A connection to the ledger. Thread-safe for the walker's use (one lock).

    SQLite at `path` (default `$ANVIL_HOME/ledger.db`), or PostgreSQL at `url` (default: the
    home config's `ledger.url`, when `path` is not given). `read_only` opens without creating,
    migrating or writing anything (the dashboard)."""

    def __init__(self, path: Path | str | None = None, *, url: str | None = None, read_only: bool = False) -> None:
        from anvil.ledger.backend import PostgresConnection, open_sqlite

        if path is None and url is None:
            url = configured_url()
        self.url = url
        self._lock = threading.Lock()
        self.conn: LedgerConnection
        if url is not None:
            self.path = None
            self.conn = _connect_postgres(url, read_only)
            if not read_only:
                assert isinstance(self.conn, PostgresConnection)
                migrate(self.conn)
            return
        self.path = Path(path) if path is not None else default_path()
        if read_only:
            self.conn = open_sqlite(self.path, read_only=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit (isolation_level=None): every INSERT is its own durable transaction.
        self.conn = open_sqlite(self.path)
        try:
            _enable_wal(self.conn)
            # NORMAL is safe in WAL against a killed process (only power loss can drop the tail).
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            # Checkpoint (the one fsync NORMAL does) every ~16 MB of WAL, not every 4 MB: with one
            # commit per attempt this halves the cost of a write; the WAL is cut back to 16 MB after.
            self.conn.execute("PRAGMA wal_autocheckpoint=4000")
            self.conn.execute("PRAGMA journal_size_limit=16777216")
            migrate(self.conn)
        except BaseException:  # a damaged or newer ledger: no connection left behind
            self.conn.close()
            raise

    @property
    def where(self) -> str:
        """Where the rows are, for messages (a URL's password is never shown)."""
        from anvil.ledger.backend import redact_url

        return redact_url(self.url) if self.url is not None else str(self.path)

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

    # ------------------------------------------------------------ calls in flight

    def start(self, row: AttemptRow) -> int:
        """Write a `started` row before a paid call; returns its id for `progress` / `settle`."""
        row = replace(row, state="started", pid=row.pid or os.getpid(), host=row.host or _HOST)
        with self._lock:
            cur = self.conn.execute(_INSERT, _params(row))
            return int(cur.lastrowid or 0)

    def progress(self, row_id: int, usage: Usage, estimated: bool, dollars: Decimal | None, cost_source: str,
                 latency_s: float) -> None:
        """The tokens a started call has counted so far (a SIGKILL keeps at least these)."""
        with self._lock:
            self.conn.execute(_PROGRESS, (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                                          usage.output_tokens, usage.reasoning_tokens, 1 if estimated else 0,
                                          None if dollars is None else dec_text(dollars), to_pico(dollars),
                                          cost_source, latency_s, row_id))

    def settle(self, row_id: int, row: AttemptRow) -> None:
        """Replace a started row by its final values (`row.state`: settled or interrupted)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self.conn.execute(_UPDATE, (*_params(row), row_id))
                if cur.rowcount:
                    add_settled_to_rollups(self.conn, row_id)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def settle_unsettled(self, run_id: str | None = None, *, only_dead: bool = True) -> int:
        """Settle started rows whose process is gone as `interrupted`; returns how many.

        `run_id`: only that run's rows (resume: the run is not running elsewhere, so every
        started row of it is settled when `only_dead` is False). Otherwise only rows whose
        owner process, on this host, is no longer alive.
        """
        sql = "SELECT id, pid, host FROM attempts WHERE state = 'started'"
        args: list[Any] = []
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        with self._lock:
            if self.conn.execute(sql + " LIMIT 1", args).fetchone() is None:
                return 0  # the usual case: nothing to settle, no write lock taken
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [i for i, pid, host in self.conn.execute(sql, args).fetchall()
                       if not only_dead or (host == _HOST and not _alive(pid))]
                for i in ids:
                    self.conn.execute("UPDATE attempts SET state = 'interrupted', error_kind = 'interrupted', "
                                      "outcome = 'error', error_message = ? WHERE id = ?",
                                      (INTERRUPTED_MESSAGE, i))
                    add_settled_to_rollups(self.conn, i)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return len(ids)

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


def _connect_postgres(url: str, read_only: bool) -> LedgerConnection:
    from anvil.errors import UserError
    from anvil.ledger.backend import PostgresConnection, redact_url

    try:
        import psycopg
    except ImportError:
        raise UserError("the ledger is configured in PostgreSQL but psycopg is not installed",
                        hint="pip install 'anvil-agent[postgres]'") from None
    try:
        conn = PostgresConnection(url, read_only=read_only)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise UserError(f"cannot reach the team ledger at {redact_url(url)}: {first}",
                        hint="check ledger.url in $ANVIL_HOME/config.yaml and that the server is up") from None
    if not read_only:
        conn.bootstrap()
    return conn


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
