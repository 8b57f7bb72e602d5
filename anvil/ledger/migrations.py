"""The ledger's schema, as numbered migrations tracked by `PRAGMA user_version`.

Append only: a released migration is never edited; a change is a new number.
`migrate` runs every migration above the database's version, each in its own
transaction, so a ledger written by an older anvil is upgraded in place.
"""

from __future__ import annotations

import sqlite3

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

LATEST = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to LATEST; returns the version found before."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > LATEST:
        raise RuntimeError(f"the ledger was written by a newer anvil (schema {found} > {LATEST})")
    for version, sql in MIGRATIONS:
        if version <= found:
            continue
        # executescript commits first; wrap the migration and its version bump in one transaction
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
    return found
