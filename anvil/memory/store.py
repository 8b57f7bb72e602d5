"""The memory store: one SQLite file per repository under `$ANVIL_HOME/memory/`.

In the home, not in the repo's `.anvil/`: a cloned repository must not be able to
plant memories that its next run would put in front of a model. The file is named
by a hash of the ledger's repo key, so every worktree of a repo shares one store.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from anvil.memory.anchors import anchor_hash
from anvil.memory.conventions import Conventions
from anvil.memory.migrations import migrate
from anvil.run.redact import redact_text

BLOCK_TITLE = "## What anvil remembers about this repository"
MAX_BLOCK_FACTS = 40
MAX_BLOCK_CHARS = 6000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Anchor:
    file: str
    symbol: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Fact:
    id: int
    text: str
    kind: str
    source_run: str
    source_stage: str
    source_model: str
    valid_from: str
    valid_to: str | None
    stale_since: str | None
    anchors: list[Anchor] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Still true and not drifted: the only facts a stage is shown."""
        return self.valid_to is None and self.stale_since is None

    @property
    def status(self) -> str:
        return "forgotten" if self.valid_to is not None else "stale" if self.stale_since else "live"

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "kind": self.kind, "status": self.status,
                "source": {"run": self.source_run, "stage": self.source_stage, "model": self.source_model},
                "valid_from": self.valid_from, "valid_to": self.valid_to, "stale_since": self.stale_since,
                "anchors": [{"file": a.file, "symbol": a.symbol, "sha256": a.sha256} for a in self.anchors]}


def store_path(repo_key: str, home: Path) -> Path:
    digest = hashlib.sha256(repo_key.encode("utf-8")).hexdigest()[:24]
    return home / "memory" / f"{digest}.db"


class MemoryStore:
    def __init__(self, path: Path, *, clock: Callable[[], str] = _now, secrets: Iterable[str] = ()):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._clock = clock
        self._secrets = list(secrets)
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys = ON")
        migrate(self.conn)
        self.conventions = Conventions(self.conn, clock, self._secrets)

    @classmethod
    def for_repo(cls, repo_root: Path, *, home: Path | None = None, secrets: Iterable[str] = ()) -> MemoryStore:
        from anvil.ledger.db import repo_key
        from anvil.paths import anvil_home

        return cls(store_path(repo_key(repo_root), home or anvil_home()), secrets=secrets)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------ writing

    def add(self, text: str, kind: str, *, root: Path, anchors: Iterable[tuple[str, str]] = (),
            run: str = "", stage: str = "", model: str = "user") -> Fact:
        """Remember `text` anchored at (file, symbol) pairs hashed in `root`.

        The same live-or-stale text of the same kind is not stored twice: adding it
        again confirms it (its anchors are re-hashed and it is live again).
        """
        text = redact_text(text.strip(), self._secrets)
        hashed = [Anchor(f, s, anchor_hash(root, f, s)) for f, s in anchors]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = self.conn.execute("SELECT id FROM facts WHERE kind = ? AND text = ? AND valid_to IS NULL",
                                    (kind, text)).fetchone()
            if row is not None:
                fact_id = int(row[0])
                self.conn.execute("UPDATE facts SET stale_since = NULL WHERE id = ?", (fact_id,))
                if hashed:
                    self.conn.execute("DELETE FROM anchors WHERE fact_id = ?", (fact_id,))
            else:
                cur = self.conn.execute(
                    "INSERT INTO facts (text, kind, source_run, source_stage, source_model, valid_from)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (text, kind, run, stage, model, self._clock()))
                fact_id = int(cur.lastrowid or 0)
            self.conn.executemany("INSERT OR REPLACE INTO anchors VALUES (?, ?, ?, ?)",
                                  [(fact_id, a.file, a.symbol, a.sha256) for a in hashed])
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        fact = self.get(fact_id)
        assert fact is not None
        return fact

    def confirm(self, fact_id: int, root: Path) -> Fact | None:
        """Accept a stale fact again: re-hash its anchors as they are now."""
        fact = self.get(fact_id)
        if fact is None or fact.valid_to is not None:
            return None
        self.conn.execute("BEGIN IMMEDIATE")
        for a in fact.anchors:
            self.conn.execute("UPDATE anchors SET sha256 = ? WHERE fact_id = ? AND file = ? AND symbol = ?",
                              (anchor_hash(root, a.file, a.symbol), fact_id, a.file, a.symbol))
        self.conn.execute("UPDATE facts SET stale_since = NULL WHERE id = ?", (fact_id,))
        self.conn.execute("COMMIT")
        return self.get(fact_id)

    def forget(self, fact_id: int) -> bool:
        """End a fact's validity (kept for the record, never shown again)."""
        cur = self.conn.execute("UPDATE facts SET valid_to = ? WHERE id = ? AND valid_to IS NULL",
                                (self._clock(), fact_id))
        return cur.rowcount > 0

    def check_drift(self, root: Path) -> list[Fact]:
        """Mark stale every live fact whose anchored content in `root` changed; returns those."""
        drifted = [f for f in self.facts() if f.live and any(anchor_hash(root, a.file, a.symbol) != a.sha256
                                                              for a in f.anchors)]
        now = self._clock()
        self.conn.executemany("UPDATE facts SET stale_since = ? WHERE id = ?", [(now, f.id) for f in drifted])
        return [f2 for f in drifted if (f2 := self.get(f.id)) is not None]

    # ------------------------------------------------------------ reading

    def _anchors(self) -> dict[int, list[Anchor]]:
        out: dict[int, list[Anchor]] = {}
        for fid, file, symbol, sha in self.conn.execute(
                "SELECT fact_id, file, symbol, sha256 FROM anchors ORDER BY fact_id, file, symbol"):
            out.setdefault(int(fid), []).append(Anchor(file, symbol, sha))
        return out

    def facts(self, *, include_forgotten: bool = False) -> list[Fact]:
        where = "" if include_forgotten else " WHERE valid_to IS NULL"
        anchors = self._anchors()
        rows = self.conn.execute(
            "SELECT id, text, kind, source_run, source_stage, source_model, valid_from, valid_to, stale_since"
            f" FROM facts{where} ORDER BY id").fetchall()
        return [Fact(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], anchors=anchors.get(int(r[0]), []))
                for r in rows]

    def get(self, fact_id: int) -> Fact | None:
        return next((f for f in self.facts(include_forgotten=True) if f.id == fact_id), None)

    def stale(self) -> list[Fact]:
        return [f for f in self.facts() if f.status == "stale"]

    def block(self) -> str:
        """The live facts as one prompt section, oldest first, so it is byte-stable across a run (cache-friendly)."""
        lines: list[str] = []
        used = 0
        for f in [f for f in self.facts() if f.live][:MAX_BLOCK_FACTS]:
            where = ", ".join(f"{a.file}" + (f" ({a.symbol})" if a.symbol else "") for a in f.anchors)
            line = "- " + redact_text(f.text, self._secrets).replace("\n", " ") + (f" [about {where}]" if where else "")
            if used + len(line) > MAX_BLOCK_CHARS:
                break
            lines.append(line)
            used += len(line)
        return f"{BLOCK_TITLE}\n\n" + "\n".join(lines) + "\n" if lines else ""
