"""The memory store's schema, as numbered migrations tracked by `PRAGMA user_version`.

Append only, like the ledger's (anvil/ledger/migrations.py): a released migration is
never edited; a change is a new number.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE facts (
        id           INTEGER PRIMARY KEY,
        text         TEXT    NOT NULL,          -- redacted before it is written
        kind         TEXT    NOT NULL,          -- test_command | clarify_answer | review_file | user
        source_run   TEXT    NOT NULL DEFAULT '',
        source_stage TEXT    NOT NULL DEFAULT '',
        source_model TEXT    NOT NULL DEFAULT '',  -- the model that produced it, or 'user'
        valid_from   TEXT    NOT NULL,          -- UTC ISO 8601
        valid_to     TEXT,                      -- NULL while the fact holds; set by forget
        stale_since  TEXT                       -- set when an anchor's content changed
    );
    CREATE INDEX facts_live ON facts (valid_to, stale_since);
    CREATE TABLE anchors (
        fact_id INTEGER NOT NULL REFERENCES facts (id) ON DELETE CASCADE,
        file    TEXT    NOT NULL,               -- repo-relative
        symbol  TEXT    NOT NULL DEFAULT '',    -- '' = the whole file
        sha256  TEXT    NOT NULL,               -- '' = the file or symbol did not exist
        PRIMARY KEY (fact_id, file, symbol)
    );
    """),
    (2, """
    CREATE TABLE review_findings (           -- every kept review finding of a finished run (conventions)
        id        INTEGER PRIMARY KEY,
        key       TEXT    NOT NULL,          -- anvil.memory.rulekey
        run_id    TEXT    NOT NULL,
        file      TEXT    NOT NULL DEFAULT '',
        line      INTEGER,
        severity  TEXT    NOT NULL,
        message   TEXT    NOT NULL,          -- redacted
        evidence  TEXT    NOT NULL,          -- redacted; the flagged lines
        fixed     TEXT    NOT NULL DEFAULT '',  -- the file's changed lines the run ended with, when the
                                             -- evidence was gone from them (its fixed version)
        seen_at   TEXT    NOT NULL,
        UNIQUE (key, run_id, evidence)
    );
    CREATE INDEX review_findings_key ON review_findings (key);
    CREATE TABLE conventions (
        id           INTEGER PRIMARY KEY,
        key          TEXT    NOT NULL UNIQUE,
        status       TEXT    NOT NULL,       -- proposed | promoted | disabled
        message      TEXT    NOT NULL,       -- what the findings said (the latest one)
        check_kind   TEXT    NOT NULL DEFAULT '',  -- regex | query ('' until promoted)
        pattern      TEXT    NOT NULL DEFAULT '',
        in_tests     INTEGER NOT NULL DEFAULT 0,   -- 1: the check also reads test files (a case was in one)
        written_by   TEXT    NOT NULL DEFAULT '',  -- 'user' or the model that wrote the check
        proposed_at  TEXT    NOT NULL,
        promoted_at  TEXT,
        disabled_at  TEXT
    );
    """),
]

LATEST = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to LATEST; returns the version found before."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > LATEST:
        raise RuntimeError(f"the memory store was written by a newer anvil (schema {found} > {LATEST})")
    for version, sql in MIGRATIONS:
        if version <= found:
            continue
        conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
    return found
