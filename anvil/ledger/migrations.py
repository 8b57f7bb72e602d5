"""The ledger's schema, as numbered migrations tracked by `PRAGMA user_version`.

Append only: a released migration is never edited; a change is a new number.
`migrate` runs every migration above the database's version, each in its own
transaction, so a ledger written by an older anvil is upgraded in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anvil.ledger.backend import LedgerConnection

# (version, SQL). Dollars: exact decimal TEXT for display/export, plus the same amount
# as an integer of pico-dollars (1e-12 USD) so SUM() in SQL stays exact and fast.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE attempts (
        id                 INTEGER PRIMARY KEY,
        ts                 TEXT    NOT NULL,   -- UTC ISO 8601, 2026-11-22T08:05:49.123456Z
        run_id             TEXT    NOT NULL,
        repo               TEXT    NOT NULL DEFAULT '',
        stage              TEXT    NOT NULL,
        attempt            INTEGER NOT NULL,   -- 1-based, across the whole chain walk of one call
        chain_pos          INTEGER NOT NULL,   -- 0-based position of the model in the chain
        provider           TEXT    NOT NULL,
        provider_kind      TEXT    NOT NULL,
        model              TEXT    NOT NULL,   -- catalogue id
        requested_model    TEXT    NOT NULL,   -- the name sent on the wire
        served_model       TEXT,               -- the name the server says answered
        outcome            TEXT    NOT NULL CHECK (outcome IN ('ok', 'error')),
        error_kind         TEXT,
        http_status        INTEGER,
        error_message      TEXT,
        input_tokens       INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens      INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
        latency_s          REAL,
        ttft_s             REAL,
        dollars            TEXT,               -- exact decimal; NULL = unknown (unpriced)
        pico_usd           INTEGER,            -- dollars * 1e12, NULL when unknown
        cost_source        TEXT    NOT NULL,
        prices_version     TEXT,               -- genai-prices version on table-priced rows
        request_id         TEXT,
        demo               INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX attempts_repo_ts ON attempts (repo, ts);
    CREATE INDEX attempts_ts ON attempts (ts);
    CREATE INDEX attempts_run_stage ON attempts (run_id, stage);
    """),
]

# Input sizes where some price in genai-prices changes tier (long-context pricing). The daily
# rollup keeps calls on each side of every one apart, so a baseline with tiers is still exact.
BUCKET_STARTS: tuple[int, ...] = (32000, 100000, 128000, 199999, 200000, 256000, 272000, 512000, 524288)


def bucket_sql(column: str, starts: tuple[int, ...] = BUCKET_STARTS) -> str:
    """How many tier thresholds an input size is past (a price tier applies when input > start)."""
    return "(" + " + ".join(f"({column} > {s})" for s in starts) + ")" if starts else "0"


_ROLLUP_KEY = "day, repo, demo, stage, model, provider, error_kind, bucket"
_ROLLUP_SUMS = ("attempts", "ok", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                "reasoning_tokens", "pico_usd", "unpriced")

# 2: a daily rollup kept by a trigger, so `cost report` over a million attempts reads a few
# thousand rows. Anything that needs the run (--run, --by run) or sub-day times reads `attempts`.
MIGRATIONS.append((2, f"""
    CREATE TABLE daily (
        day TEXT NOT NULL, repo TEXT NOT NULL, demo INTEGER NOT NULL, stage TEXT NOT NULL,
        model TEXT NOT NULL, provider TEXT NOT NULL,
        error_kind TEXT NOT NULL,          -- '' for successful attempts
        bucket INTEGER NOT NULL,           -- long-context class, see BUCKET_STARTS
        attempts INTEGER NOT NULL, ok INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
        pico_usd INTEGER NOT NULL,         -- known dollars only
        unpriced INTEGER NOT NULL,         -- attempts that used tokens at an unknown price
        PRIMARY KEY ({_ROLLUP_KEY})
    ) WITHOUT ROWID;
    INSERT INTO daily
        SELECT substr(ts, 1, 10), repo, demo, stage, model, provider,
               CASE WHEN outcome = 'ok' THEN '' ELSE COALESCE(error_kind, 'unknown') END,
               {bucket_sql('input_tokens')},
               COUNT(*), SUM(outcome = 'ok'), SUM(input_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
               SUM(output_tokens), SUM(reasoning_tokens), COALESCE(SUM(pico_usd), 0),
               SUM(pico_usd IS NULL AND (input_tokens + output_tokens) > 0)
        FROM attempts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    CREATE TRIGGER attempts_daily AFTER INSERT ON attempts BEGIN
        INSERT INTO daily VALUES (
            substr(NEW.ts, 1, 10), NEW.repo, NEW.demo, NEW.stage, NEW.model, NEW.provider,
            CASE WHEN NEW.outcome = 'ok' THEN '' ELSE COALESCE(NEW.error_kind, 'unknown') END,
            {bucket_sql('NEW.input_tokens')},
            1, NEW.outcome = 'ok', NEW.input_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens,
            NEW.output_tokens, NEW.reasoning_tokens, COALESCE(NEW.pico_usd, 0),
            NEW.pico_usd IS NULL AND (NEW.input_tokens + NEW.output_tokens) > 0)
        ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET
            {", ".join(f"{c} = {c} + excluded.{c}" for c in _ROLLUP_SUMS)};
    END;
    -- the run-budget check and `--run` read by run; reports by repo and time
    DROP INDEX attempts_ts;
"""))

_RUNS_KEY = "run_id, day, repo, demo, error_kind, bucket"
# 3: the same sums per run and day, for `cost report --by run` over a big ledger.
MIGRATIONS.append((3, f"""
    CREATE TABLE run_daily (
        run_id TEXT NOT NULL, day TEXT NOT NULL, repo TEXT NOT NULL, demo INTEGER NOT NULL,
        error_kind TEXT NOT NULL, bucket INTEGER NOT NULL,
        attempts INTEGER NOT NULL, ok INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
        pico_usd INTEGER NOT NULL, unpriced INTEGER NOT NULL,
        PRIMARY KEY ({_RUNS_KEY})
    ) WITHOUT ROWID;
    INSERT INTO run_daily
        SELECT run_id, substr(ts, 1, 10), repo, demo,
               CASE WHEN outcome = 'ok' THEN '' ELSE COALESCE(error_kind, 'unknown') END,
               {bucket_sql('input_tokens')},
               COUNT(*), SUM(outcome = 'ok'), SUM(input_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
               SUM(output_tokens), SUM(reasoning_tokens), COALESCE(SUM(pico_usd), 0),
               SUM(pico_usd IS NULL AND (input_tokens + output_tokens) > 0)
        FROM attempts GROUP BY 1, 2, 3, 4, 5, 6;
    CREATE TRIGGER attempts_run_daily AFTER INSERT ON attempts BEGIN
        INSERT INTO run_daily VALUES (
            NEW.run_id, substr(NEW.ts, 1, 10), NEW.repo, NEW.demo,
            CASE WHEN NEW.outcome = 'ok' THEN '' ELSE COALESCE(NEW.error_kind, 'unknown') END,
            {bucket_sql('NEW.input_tokens')},
            1, NEW.outcome = 'ok', NEW.input_tokens, NEW.cache_read_tokens, NEW.cache_write_tokens,
            NEW.output_tokens, NEW.reasoning_tokens, COALESCE(NEW.pico_usd, 0),
            NEW.pico_usd IS NULL AND (NEW.input_tokens + NEW.output_tokens) > 0)
        ON CONFLICT ({_RUNS_KEY}) DO UPDATE SET
            {", ".join(f"{c} = {c} + excluded.{c}" for c in _ROLLUP_SUMS)};
    END;
"""))



def unpriced_sql(row: str = "") -> str:
    """An attempt whose dollars are unknown and were not plainly zero: it used tokens, or it
    answered without reporting any usage (an adapter or CLI that gave no counts)."""
    return (f"({row}pico_usd IS NULL AND ({row}outcome = 'ok' "
            f"OR ({row}input_tokens + {row}output_tokens) > 0))")


def _row_values(keys: list[str], prefix: str) -> str:
    ks = [k.replace("@", prefix) for k in keys]
    return ", ".join([*ks, f"{bucket_sql(prefix + 'input_tokens')}", "{n}", "{ok}",
                      *(f"{prefix}{c}" if prefix else f"SUM({c})" for c in
                        ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                         "reasoning_tokens")),
                      f"COALESCE({prefix}pico_usd, 0)" if prefix else "COALESCE(SUM(pico_usd), 0)",
                      unpriced_sql(prefix) if prefix else f"SUM({unpriced_sql()})"])


def _fill(table: str, keys: list[str], key_names: str, where: str) -> str:
    """Add the attempts matching `where` into the rollup `table` (summing into existing rows)."""
    fill = _row_values(keys, "").format(n="COUNT(*)", ok="SUM(outcome = 'ok')")
    groups = ", ".join(str(i + 1) for i in range(len(keys) + 1))
    return (f"INSERT INTO {table} SELECT {fill} FROM attempts WHERE {where or 'true'} GROUP BY {groups} "
            f"ON CONFLICT ({key_names}) DO UPDATE SET "
            + ", ".join(f"{c} = {c} + excluded.{c}" for c in _ROLLUP_SUMS))


def _rollup(table: str, trigger: str, keys: list[str], key_names: str) -> str:
    """Backfill `table` from the attempts and keep it current with an AFTER INSERT trigger."""
    new = _row_values(keys, "NEW.").format(n="1", ok="NEW.outcome = 'ok'")
    return f"""
    {_fill(table, keys, key_names, "")};
    CREATE TRIGGER {trigger} AFTER INSERT ON attempts BEGIN
        INSERT INTO {table} VALUES ({new})
        ON CONFLICT ({key_names}) DO UPDATE SET
            {", ".join(f"{c} = {c} + excluded.{c}" for c in _ROLLUP_SUMS)};
    END;"""


_KIND = "CASE WHEN @outcome = 'ok' THEN '' ELSE COALESCE(@error_kind, 'unknown') END"
# 4: an answer that reported no usage at all has an unknown cost (written as NULL dollars by
# the walker): count it as unpriced too, in the rollups' sums as in the raw rows.
MIGRATIONS.append((4, f"""
    DROP TRIGGER attempts_daily;
    DROP TRIGGER attempts_run_daily;
    DELETE FROM daily;
    DELETE FROM run_daily;
    {_rollup("daily", "attempts_daily",
             ["substr(@ts, 1, 10)", "@repo", "@demo", "@stage", "@model", "@provider", _KIND], _ROLLUP_KEY)}
    {_rollup("run_daily", "attempts_run_daily",
             ["@run_id", "substr(@ts, 1, 10)", "@repo", "@demo", _KIND], _RUNS_KEY)}
"""))

_DAILY_KEYS = ["substr(@ts, 1, 10)", "@repo", "@demo", "@stage", "@model", "@provider", _KIND]
_RUN_KEYS = ["@run_id", "substr(@ts, 1, 10)", "@repo", "@demo", _KIND]

# 5: the rollups are brought up to date when a report reads them, not by triggers: a trigger
# upsert per insert tripled the cost of writing an attempt. `rollup_state.last_id` is the
# last attempt already summed.
MIGRATIONS.append((5, """
    DROP TRIGGER attempts_daily;
    DROP TRIGGER attempts_run_daily;
    CREATE TABLE rollup_state (last_id INTEGER NOT NULL);
    INSERT INTO rollup_state VALUES ((SELECT COALESCE(MAX(id), 0) FROM attempts));
"""))

# 6: served traffic (`anvil serve`): which client (its user agent), which conversation and which
# preset (the `model` name the client asked for) each attempt belongs to. '' for anvil's own runs.
MIGRATIONS.append((6, """
    ALTER TABLE attempts ADD COLUMN client TEXT NOT NULL DEFAULT '';
    ALTER TABLE attempts ADD COLUMN session TEXT NOT NULL DEFAULT '';
    ALTER TABLE attempts ADD COLUMN preset TEXT NOT NULL DEFAULT '';
"""))

# 7: stage-attempt outcomes (anvil.evidence): one row per attempt of a stage in a run, decided by
# what happened next (a retry or a loop back = failed; the stage finished = succeeded).
MIGRATIONS.append((7, """
    CREATE TABLE outcomes (
        id        INTEGER PRIMARY KEY,
        ts        TEXT    NOT NULL,
        run_id    TEXT    NOT NULL,
        repo      TEXT    NOT NULL DEFAULT '',
        stage     TEXT    NOT NULL,
        attempt   INTEGER NOT NULL,           -- 1-based, per stage and run
        model     TEXT    NOT NULL,           -- the model whose answer the attempt used
        success   INTEGER NOT NULL CHECK (success IN (0, 1)),
        reason    TEXT    NOT NULL DEFAULT '',
        pico_usd  INTEGER NOT NULL DEFAULT 0, -- the attempt's priced calls
        unpriced  INTEGER NOT NULL DEFAULT 0, -- calls of unknown price in it
        tokens    INTEGER NOT NULL DEFAULT 0,
        task      TEXT    NOT NULL DEFAULT '',
        demo      INTEGER NOT NULL DEFAULT 0,
        UNIQUE (run_id, stage, attempt)
    );
    CREATE INDEX outcomes_stage_model ON outcomes (stage, model);
    CREATE INDEX outcomes_repo ON outcomes (repo);
"""))

# 8: no call escapes the ledger. A row is written `started` before a paid call (its input
# tokens estimated locally, `estimated` = 1), kept up to date while it streams, and settled
# after (`settled`, or `interrupted` with the tokens counted so far). `pid` / `host` say which
# process owns a started row, so a row left by a killed process can be settled later.
# `flags` marks usage that was out of range (clamped); `cost_note` says why a row is unpriced.
# The rollups never sum a started row: it is added to them when it settles.
MIGRATIONS.append((8, """
    ALTER TABLE attempts ADD COLUMN state TEXT NOT NULL DEFAULT 'settled';
    ALTER TABLE attempts ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN flags TEXT;
    ALTER TABLE attempts ADD COLUMN cost_note TEXT;
    ALTER TABLE attempts ADD COLUMN pid INTEGER;
    ALTER TABLE attempts ADD COLUMN host TEXT;
    CREATE INDEX attempts_started ON attempts (run_id) WHERE state != 'settled';
    CREATE INDEX attempts_unpriced ON attempts (cost_note) WHERE pico_usd IS NULL;
    CREATE INDEX attempts_flagged ON attempts (id) WHERE flags IS NOT NULL;
"""))

# 9: the benchmark task a call worked on (`anvil bench` runs `anvil run --task ID`), so
# `cost report --by task` adds up a task set; '' for every ordinary call.
MIGRATIONS.append((9, """
    ALTER TABLE attempts ADD COLUMN task TEXT NOT NULL DEFAULT '';
    CREATE INDEX attempts_task ON attempts (task) WHERE task != '';
"""))

LATEST = MIGRATIONS[-1][0]

_SETTLED = "state != 'started'"
_REFRESH = [_fill("daily", _DAILY_KEYS, _ROLLUP_KEY, f"id > :lo AND id <= :hi AND {_SETTLED}"),
            _fill("run_daily", _RUN_KEYS, _RUNS_KEY, f"id > :lo AND id <= :hi AND {_SETTLED}")]
# a row that settles after the rollups passed its id is summed in on its own
_ADD_ONE = [_fill("daily", _DAILY_KEYS, _ROLLUP_KEY, "id = :id"),
            _fill("run_daily", _RUN_KEYS, _RUNS_KEY, "id = :id")]


def add_settled_to_rollups(conn: LedgerConnection, row_id: int) -> None:
    """Inside the settling transaction: sum a just-settled row into the rollups if a refresh
    already went past it (a refresh skips started rows, so it is summed exactly once)."""
    last = conn.execute("SELECT last_id FROM rollup_state").fetchone()[0]
    if row_id <= last:
        for sql in _ADD_ONE:
            conn.execute(sql, {"id": row_id})


def refresh_rollups(conn: LedgerConnection) -> int:
    """Sum the attempts written since the last refresh into the rollups; returns how many.

    One IMMEDIATE transaction: two reports refreshing at once serialise, and a writer's new
    rows get ids above the `hi` read here, so every attempt is summed exactly once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        lo = conn.execute("SELECT last_id FROM rollup_state").fetchone()[0]
        hi = conn.execute("SELECT COALESCE(MAX(id), 0) FROM attempts").fetchone()[0]
        if hi > lo:
            for sql in _REFRESH:
                conn.execute(sql, {"lo": lo, "hi": hi})
            conn.execute("UPDATE rollup_state SET last_id = ?", (hi,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(hi - lo, 0)


class NewerSchema(RuntimeError):
    """The ledger was written by a newer anvil: this one must not touch it."""

    def __init__(self, found: int) -> None:
        super().__init__(f"the ledger was written by a newer anvil (schema {found} > {LATEST})")
        self.found = found


def migrate(conn: LedgerConnection) -> int:
    """Bring the schema up to LATEST; returns the version found before (SQLite or PostgreSQL).

    Each migration re-reads the version under the write lock and commits with its version bump
    (`LedgerConnection.apply_migration`): eight processes opening a fresh ledger at once
    serialise there, and every one but the first finds the work done.
    """
    found = conn.schema_version()
    if found > LATEST:
        raise NewerSchema(found)
    if found == LATEST:  # the common case: no lock taken
        return found
    first = found
    for version, sql in MIGRATIONS:
        if version <= found:
            continue
        conn.apply_migration(version, sql)
    now = conn.schema_version()
    if now > LATEST:
        raise NewerSchema(now)
    return first
