"""Where the ledger's rows live: SQLite (the default) or PostgreSQL (a team ledger), at the connection level.

Everything above this module writes SQLite's SQL: `?` and `:name` parameters,
`BEGIN IMMEDIATE`, sums of comparisons. `PostgresConnection` translates that
dialect once per statement (cached) and takes the place of the sqlite3
connection, so the numbered migrations, the inserts and the report queries are
the same text on both; no query has a second copy. The translation:

- types: INTEGER -> BIGINT (pico-dollars outgrow 32 bits), INTEGER PRIMARY KEY ->
  an identity column, REAL -> DOUBLE PRECISION, WITHOUT ROWID dropped;
- triggers (migrations 2-4 only; 5 removed them) are SQLite-only and skipped;
- `SUM(a = b)` and `(a > n) + (b > m)` work through a `sum(boolean)` aggregate and
  `+` operators on booleans that the bootstrap creates;
- `SET c = c + excluded.c` in an upsert names the target table (PostgreSQL finds
  the bare name ambiguous);
- `BEGIN IMMEDIATE` (take the writer lock now) -> BEGIN + a transaction-scoped advisory lock;
- the schema version lives in a table: `PRAGMA user_version [= N]` reads or sets it there;
  other PRAGMAs (SQLite's file settings) do nothing;
- an INSERT into `attempts` returns its id, so `cursor.lastrowid` works as on SQLite;
- `INSERT OR IGNORE` / `INSERT OR REPLACE` become upserts on the table's primary key.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

LOCK_KEY = 0x616E76696C  # "anvil": the advisory lock that plays SQLite's write lock


class LedgerConnection(Protocol):
    """What the ledger code needs of a connection (sqlite3's own shape, plus the schema version)."""

    @property
    def dialect(self) -> str: ...
    # the DB-API names: every database error of this backend; and the busy / locked / read-only
    # ones, on which a report falls back to the raw rows
    @property
    def Error(self) -> type[Exception]: ...
    @property
    def OperationalError(self) -> type[Exception]: ...

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...
    def schema_version(self) -> int: ...
    def apply_migration(self, version: int, sql: str) -> None: ...
    def close(self) -> None: ...


def statements(sql: str) -> list[str]:
    """A script split into complete statements (a trigger body's `;` stays inside its statement)."""
    out: list[str] = []
    buf = ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;"):
        out.append(buf.strip())
    return out


class SqliteConnection:
    dialect = "sqlite"
    Error = sqlite3.Error
    OperationalError = sqlite3.OperationalError

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.raw.executemany(sql, rows)

    def schema_version(self) -> int:
        return int(self.raw.execute("PRAGMA user_version").fetchone()[0])

    def apply_migration(self, version: int, sql: str) -> None:
        # The version is re-read under the write lock: another process may have migrated while
        # this one waited (eight first uses at once must not run `CREATE TABLE attempts` twice).
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            if self.schema_version() < version:
                for stmt in statements(sql):
                    self.raw.execute(stmt)
                self.raw.execute(f"PRAGMA user_version = {version}")
            self.raw.execute("COMMIT")
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.raw.close()


# ---------------------------------------------------------------- PostgreSQL

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS anvil_schema (version BIGINT NOT NULL);
INSERT INTO anvil_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM anvil_schema);
CREATE OR REPLACE FUNCTION anvil_bool_sum(s bigint, b boolean) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT COALESCE(s, 0) + CASE WHEN b THEN 1 ELSE 0 END';
CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = anvil_bool_sum, STYPE = bigint);
CREATE OR REPLACE FUNCTION anvil_bool_plus(a boolean, b boolean) RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT a::int + b::int';
CREATE OR REPLACE FUNCTION anvil_int_plus_bool(a integer, b boolean) RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT a + b::int';
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '+' AND oprleft = 'boolean'::regtype
                   AND oprright = 'boolean'::regtype) THEN
        CREATE OPERATOR + (LEFTARG = boolean, RIGHTARG = boolean, FUNCTION = anvil_bool_plus);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '+' AND oprleft = 'integer'::regtype
                   AND oprright = 'boolean'::regtype) THEN
        CREATE OPERATOR + (LEFTARG = integer, RIGHTARG = boolean, FUNCTION = anvil_int_plus_bool);
    END IF;
END $$;
"""

# After a migration: a table rebuilt by copying rows (ids included) leaves its identity sequence
# behind, and the next insert would reuse an id. Each identity column restarts after its MAX.
_RESYNC_IDS = """
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT table_name, column_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES' LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), GREATEST(COALESCE(MAX(%I), 0), 1), '
                       'COALESCE(MAX(%I), 0) > 0) FROM %I', r.table_name, r.column_name, r.column_name,
                       r.column_name, r.table_name);
    END LOOP;
END $$"""

_TRIGGER = re.compile(r"CREATE\s+TRIGGER\b.*?\bEND\s*;", re.S | re.I)
_DROP_TRIGGER = re.compile(r"DROP\s+TRIGGER\s+(IF\s+EXISTS\s+)?\w+\s*;", re.I)
_UPSERT = re.compile(r"INSERT\s+INTO\s+(\w+)(.*?)\bDO\s+UPDATE\s+SET\b(.*?)(?=;|\Z)", re.S | re.I)
_SELF_REF = re.compile(r"\b(\w+)\s*=\s*\1\s*\+\s*excluded\.\1\b", re.I)
# Many machines write one table: ids are handed out at insert, but commits land in any order, so
# a rollup refresh ("everything up to MAX(id)") could pass over a row still being committed.
# Writers hold the lock shared and the refresh (BEGIN IMMEDIATE) holds it exclusively: every
# id below the refresh's MAX(id) is committed by the time it reads.
_ATTEMPT_INSERT = re.compile(r"\s*INSERT\s+INTO\s+attempts\b", re.I)
_OR_IGNORE = re.compile(r"\s*INSERT\s+OR\s+IGNORE\s+INTO", re.I)
_OR_REPLACE = re.compile(r"\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I)
_SCRIPT = re.compile(r"\s*(BEGIN\s+IMMEDIATE|PRAGMA\s+user_version\s*=)", re.I)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _outside_quotes(sql: str, fn: Any) -> str:
    """Apply `fn` to the parts of `sql` that are not inside single-quoted literals."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


@lru_cache(maxsize=512)
def to_postgres(sql: str, bound: bool = True) -> str:
    """SQLite's dialect, as the ledger writes it, in PostgreSQL's (see the module docstring).

    `bound`: the statement is sent with parameters, so psycopg reads every `%` (quoted or not) as
    a placeholder; a literal `%` is then doubled. A script without parameters keeps its `%`."""
    if re.fullmatch(r"\s*BEGIN\s+IMMEDIATE\s*;?\s*", sql, re.I):
        return f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_KEY})"
    pragma = re.fullmatch(r"\s*PRAGMA\s+(\w+)\s*(?:=\s*(\w+))?\s*;?\s*", sql, re.I)
    if pragma is not None:
        if pragma.group(1).lower() != "user_version":
            return ""
        if pragma.group(2) is None:
            return "SELECT version FROM anvil_schema"
        return f"UPDATE anvil_schema SET version = {int(pragma.group(2))};{_RESYNC_IDS}"
    sql = _TRIGGER.sub("", sql)
    sql = _DROP_TRIGGER.sub("", sql)

    def types_and_params(part: str) -> str:
        part = re.sub(r"\bWITHOUT\s+ROWID\b", "", part, flags=re.I)
        part = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", part,
                      flags=re.I)
        part = re.sub(r"\bINTEGER\b(?!\s+GENERATED)", "BIGINT", part, flags=re.I)
        part = re.sub(r"\bREAL\b", "DOUBLE PRECISION", part, flags=re.I)
        part = part.replace("?", "%s")
        return _NAMED.sub(r"%(\1)s", part)

    if bound:
        sql = sql.replace("%", "%%")
    sql = _outside_quotes(sql, types_and_params)
    return _UPSERT.sub(lambda m: f"INSERT INTO {m.group(1)}{m.group(2)}DO UPDATE SET"
                       + _SELF_REF.sub(lambda r: f"{r.group(1)} = {m.group(1)}.{r.group(1)} + excluded.{r.group(1)}",
                                       m.group(3)), sql)


class _InsertCursor:
    """A psycopg cursor of `INSERT ... RETURNING id`, with sqlite3's `lastrowid`."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur
        row = cur.fetchone() if cur.description else None
        self.lastrowid: int | None = int(row[0]) if row else None
        self.rowcount: int = cur.rowcount

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def _integral_numeric_loader() -> type:
    """SUM() of BIGINT is NUMERIC in PostgreSQL: whole numbers come back as int, as SQLite gives them."""
    from psycopg.types.numeric import NumericLoader

    class IntegralNumeric(NumericLoader):
        def load(self, data: Any) -> Any:
            value = super().load(data)
            if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
                return int(value)
            return value

    return IntegralNumeric


class PostgresConnection:
    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool = False, connect_timeout: float = 10.0) -> None:
        import psycopg

        self.Error = psycopg.Error
        # a read-only session, a lock or a busy server: the report reads the raw rows instead
        self.OperationalError = psycopg.Error
        self.raw = psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout),
                                   application_name="anvil")
        self.raw.adapters.register_loader("numeric", _integral_numeric_loader())
        self._primary_keys: dict[str, list[str]] = {}
        if read_only:
            self.raw.execute("SET default_transaction_read_only = on")

    def _replace_into(self, text: str) -> str:
        """SQLite's `INSERT OR REPLACE INTO t (cols) ...` as an upsert on t's primary key."""
        m = _OR_REPLACE.match(text)
        assert m is not None
        table, cols = m.group(1), [c.strip() for c in m.group(2).split(",")]
        key = self._primary_keys.get(table)
        if key is None:
            key = self._primary_keys[table] = [r[0] for r in self.raw.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (table,)).fetchall()]
        rest = [c for c in cols if c not in key]
        action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in rest)) if rest else "DO NOTHING"
        return (f"INSERT INTO {table}{text[m.end(1):]} ON CONFLICT ({', '.join(key)}) {action}" if key
                else f"INSERT INTO {table}{text[m.end(1):]}")

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        if _SCRIPT.match(sql):  # translated to several statements: sent as a script, without parameters
            return self.raw.execute(to_postgres(sql, bound=False))
        text = to_postgres(sql)
        if not text.strip():
            return self.raw.cursor()  # a SQLite-only statement (a trigger): nothing to run here
        if _OR_IGNORE.match(text):
            text = _OR_IGNORE.sub("INSERT INTO", text, count=1) + " ON CONFLICT DO NOTHING"
        elif _OR_REPLACE.match(text):
            text = self._replace_into(text)
        if _ATTEMPT_INSERT.match(text):
            if not re.search(r"\bRETURNING\b", text, re.I):
                text += " RETURNING id"
            with self.raw.transaction():
                self.raw.execute(f"SELECT pg_advisory_xact_lock_shared({LOCK_KEY})")
                return _InsertCursor(self.raw.execute(text, params))
        return self.raw.execute(text, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        text = to_postgres(sql)
        cur = self.raw.cursor()
        with self.raw.transaction():
            if _ATTEMPT_INSERT.match(text):
                cur.execute(f"SELECT pg_advisory_xact_lock_shared({LOCK_KEY})")
            cur.executemany(text, list(rows))
        return cur

    def schema_version(self) -> int:
        try:
            row = self.raw.execute("SELECT version FROM anvil_schema").fetchone()
        except self.Error:
            return 0
        return int(row[0]) if row else 0

    def bootstrap(self) -> None:
        with self.raw.transaction():
            self.raw.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
            self.raw.execute(_BOOTSTRAP)

    def apply_migration(self, version: int, sql: str) -> None:
        with self.raw.transaction():
            self.raw.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
            # another machine may have migrated while this one waited for the lock
            if self.schema_version() >= version:
                return
            text = to_postgres(sql, bound=False)
            if text.strip():
                self.raw.execute(text)
            self.raw.execute(to_postgres(f"PRAGMA user_version = {version}", bound=False))

    def close(self) -> None:
        self.raw.close()


def redact_url(url: str) -> str:
    """A database URL fit for an error message: the password replaced."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def open_sqlite(path: Path, *, read_only: bool = False) -> SqliteConnection:
    if read_only:
        # mode=ro: nothing is created or migrated; a report that would refresh the rollups reads raw rows
        return SqliteConnection(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10.0,
                                                isolation_level=None, check_same_thread=False))
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    return SqliteConnection(conn)


def ledger_errors() -> tuple[type[Exception], ...]:
    """The database errors of every installed backend (for callers that degrade instead of failing)."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)
