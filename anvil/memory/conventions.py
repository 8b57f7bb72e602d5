"""Conventions: review complaints that recur become deterministic checks (tables of the memory store).

A finished run's kept review findings are recorded under their rule key
(anvil.memory.rulekey). A key seen in `min_runs` different runs is *proposed*;
`promote` attaches a check (a regex or a tree-sitter query, anvil.memory.checks)
that must flag every recorded case and none of their fixed versions; a
*promoted* convention runs in validate without a model and review is told it
is enforced. `disable` turns one off (kept for the record; `enable` again).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from anvil.memory.checks import Check, CheckKind, accept
from anvil.run.redact import redact_text

Status = Literal["proposed", "promoted", "disabled"]


@dataclass(frozen=True)
class SeenFinding:
    key: str
    run_id: str
    file: str
    line: int | None
    severity: str
    message: str
    evidence: str
    fixed: str = ""


@dataclass(frozen=True)
class Convention:
    id: int
    key: str
    status: Status
    message: str
    check_kind: str
    pattern: str
    in_tests: bool
    written_by: str
    proposed_at: str
    promoted_at: str | None
    disabled_at: str | None
    runs: int = 0  # distinct runs whose review raised it

    @property
    def language(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def enforced(self) -> bool:
        return self.status == "promoted" and bool(self.pattern)

    def check(self) -> Check:
        kind: CheckKind = "query" if self.check_kind == "query" else "regex"
        return Check(kind, self.pattern, self.language, self.in_tests)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "key": self.key, "status": self.status, "message": self.message,
                "check": {"kind": self.check_kind, "pattern": self.pattern, "in_tests": self.in_tests,
                          "written_by": self.written_by}
                if self.pattern else None,
                "runs": self.runs, "proposed_at": self.proposed_at, "promoted_at": self.promoted_at,
                "disabled_at": self.disabled_at}


class Conventions:
    """The conventions tables of one repository's memory store (its connection, clock and secrets)."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], str], secrets: Iterable[str] = ()):
        self.conn = conn
        self._clock = clock
        self._secrets = list(secrets)

    # ------------------------------------------------------------ recording

    def record(self, findings: Iterable[SeenFinding], *, min_runs: int = 2) -> list[Convention]:
        """Store a run's findings; returns the conventions newly proposed (keys now seen in `min_runs` runs)."""
        now = self._clock()
        red = self._redact
        rows = [(f.key, f.run_id, f.file, f.line, f.severity, red(f.message), red(f.evidence), red(f.fixed), now)
                for f in findings]
        self.conn.executemany(
            "INSERT OR IGNORE INTO review_findings (key, run_id, file, line, severity, message, evidence, fixed,"
            " seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        proposed = []
        for key in sorted({r[0] for r in rows}):
            runs = self.conn.execute("SELECT COUNT(DISTINCT run_id) FROM review_findings WHERE key = ?",
                                     (key,)).fetchone()[0]
            if runs < min_runs:
                continue
            message = self.conn.execute("SELECT message FROM review_findings WHERE key = ? ORDER BY id DESC",
                                        (key,)).fetchone()[0]
            cur = self.conn.execute("INSERT OR IGNORE INTO conventions (key, status, message, proposed_at)"
                                    " VALUES (?, 'proposed', ?, ?)", (key, message, now))
            if cur.rowcount:
                c = self.get(key)
                assert c is not None
                proposed.append(c)
        return proposed

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    # ------------------------------------------------------------ reading

    def all(self) -> list[Convention]:
        rows = self.conn.execute(
            "SELECT c.id, c.key, c.status, c.message, c.check_kind, c.pattern, c.in_tests, c.written_by,"
            " c.proposed_at,"
            " c.promoted_at, c.disabled_at, (SELECT COUNT(DISTINCT run_id) FROM review_findings f"
            " WHERE f.key = c.key) FROM conventions c ORDER BY c.id").fetchall()
        return [Convention(int(r[0]), r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], int(r[11]))
                for r in rows]

    def get(self, ref: str | int) -> Convention | None:
        """By id (a number) or by key."""
        text = str(ref)
        return next((c for c in self.all() if (text.isdigit() and c.id == int(text)) or c.key == text), None)

    def enforced(self) -> list[Convention]:
        return [c for c in self.all() if c.enforced]

    def cases(self, key: str) -> tuple[list[str], list[str]]:
        """(the flagged evidence, the fixed versions) recorded for a key."""
        rows = self.conn.execute("SELECT evidence, fixed FROM review_findings WHERE key = ? ORDER BY id",
                                 (key,)).fetchall()
        originals = list(dict.fromkeys(r[0] for r in rows if r[0].strip()))
        fixed = list(dict.fromkeys(r[1] for r in rows if r[1].strip()))
        return originals, fixed

    # ------------------------------------------------------------ changing

    def in_tests(self, key: str) -> bool:
        """Whether a recorded case of `key` was in a test file (else its check leaves tests alone)."""
        from anvil.stages.plan_validator import is_test_path

        return any(is_test_path(r[0]) for r in self.conn.execute(
            "SELECT DISTINCT file FROM review_findings WHERE key = ?", (key,)))

    def promote(self, key: str, check: Check, written_by: str) -> str:
        """Attach `check` and enforce it, if it flags the recorded cases and not their fixed versions.
        Returns '' on success, else why it was refused (nothing changes then)."""
        originals, fixed = self.cases(key)
        why = accept(check, originals, fixed)
        if why:
            return why
        self.conn.execute("UPDATE conventions SET status = 'promoted', check_kind = ?, pattern = ?, in_tests = ?,"
                          " written_by = ?, promoted_at = ?, disabled_at = NULL WHERE key = ?",
                          (check.kind, check.pattern, int(self.in_tests(key)), written_by, self._clock(), key))
        return ""

    def disable(self, key: str) -> bool:
        cur = self.conn.execute("UPDATE conventions SET status = 'disabled', disabled_at = ? WHERE key = ?"
                                " AND status != 'disabled'", (self._clock(), key))
        return cur.rowcount > 0

    def enable(self, key: str) -> Status | None:
        """Back to promoted (when it has a check) or proposed; None when there is no such convention."""
        c = self.get(key)
        if c is None:
            return None
        status: Status = "promoted" if c.pattern else "proposed"
        self.conn.execute("UPDATE conventions SET status = ?, disabled_at = NULL WHERE key = ?", (status, key))
        return status
