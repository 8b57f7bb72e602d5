"""Result rows: one per task and policy, appended to `results.jsonl` in the bench folder.

A row is written when its task has run and been verified (resolved or not) or when it could
not run (`status: error`). `--resume` skips the (task, policy) pairs that already have a
resolved or unresolved row; error rows are tried again. The last row of a pair wins.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

RESULTS = "results.jsonl"
Status = Literal["resolved", "unresolved", "error"]
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output")


@dataclass
class ResultRow:
    task: str
    policy: str
    status: Status
    resolved: bool = False
    failure_stage: str | None = None  # a pipeline stage, "verify", "setup" or "timeout"
    failure_reason: str = ""
    model: str = ""  # scripted / oracle / noisy / configured
    verify_mode: str = "tests"
    run_id: str | None = None
    exit_code: int | None = None
    dollars: str = "0"  # known dollars, exact decimal text
    unpriced_calls: int = 0
    dollars_by_stage: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_KINDS, 0))
    calls: int = 0  # answered calls
    attempts: int = 0  # every attempt, failed ones included
    burns: int = 0
    wall_s: float = 0.0  # the whole pair: clone, run, verification
    run_s: float = 0.0  # `anvil run` alone
    verify_s: float = 0.0  # verification alone (a real test suite can dwarf the run)
    models_by_stage: dict[str, list[str]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # what the run's test / validate commands did
    verify: dict[str, Any] = field(default_factory=dict)
    model_notes: dict[str, Any] = field(default_factory=dict)  # oracle: turns, tool calls, what it could not see
    shard: str = ""
    finished_at: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.task, self.policy

    @property
    def done(self) -> bool:
        return self.status in ("resolved", "unresolved")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ResultRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / RESULTS
        self._lock = threading.Lock()

    def rows(self) -> list[ResultRow]:
        """The latest row of every (task, policy), in first-seen order."""
        return read_rows(self.path)

    def append(self, row: ResultRow) -> None:
        line = json.dumps(row.to_json(), sort_keys=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def read_rows(path: Path) -> list[ResultRow]:
    latest: dict[tuple[str, str], ResultRow] = {}
    if not path.is_file():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = ResultRow.from_json(json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut by a kill: that pair simply runs again
        latest.pop(row.key, None)
        latest[row.key] = row
    return list(latest.values())
