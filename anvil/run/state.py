"""A run's state: what `state.json` holds (the run, each stage, the known extras), as dataclasses.

`anvil.run.store` reads and writes it atomically; everything else reads these types.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from anvil.run.redact import to_jsonable
from anvil.stages.names import STAGES as STAGE_ORDER

RUN_STATUSES = ("running", "failed", "interrupted", "done", "budget_stopped")
STAGE_STATUSES = ("pending", "running", "done", "failed", "skipped")
STATE_VERSION = 1

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass
class StageState:
    status: str = "pending"  # pending / running / done / failed / skipped
    attempts: int = 0
    model: str | None = None  # the model that produced the stage's output
    models: list[str] = field(default_factory=list)  # every model tried, in order
    cost: Decimal | None = Decimal("0")  # None = some call was unpriced
    tokens: int = 0
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    artifact: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # stage-specific extras

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StageState:
        known = {f.name for f in fields(cls)}
        st = cls(**{k: v for k, v in raw.items() if k in known})
        st.cost = _dec(raw.get("cost"))
        return st


_MOVED_FROM_DATA = ("base_sha", "escalation", "build_feedback", "last_done", "worktree_removed", "spend_known",
                    "unpriced_attempts")


@dataclass
class RunState:
    request: str
    status: str = "running"
    created: str = ""
    updated: str = ""
    branch: str | None = None
    base_ref: str | None = None
    worktree: str | None = None
    stages: dict[str, StageState] = field(default_factory=lambda: {s: StageState() for s in STAGE_ORDER})
    burns: list[Any] = field(default_factory=list)  # the walker's burn list, as JSON
    spend: Decimal | None = Decimal("0")  # None = part of the spend is unpriced
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    pr_url: str | None = None
    base_sha: str | None = None  # the commit the run's worktree started from
    escalation: dict[str, dict[str, Any]] = field(default_factory=dict)  # per stage: StageLLM's Escalation
    build_feedback: str = ""  # what the next build attempt must fix
    last_done: str | None = None
    worktree_removed: bool = False
    spend_known: str = "0"  # the priced part of the spend (exact decimal, as text)
    unpriced_attempts: int = 0
    data: dict[str, Any] = field(default_factory=dict)  # extras of newer or older versions
    pid: int | None = None  # the process running it (set on every save while running)
    command_pgid: int | None = None  # a test command's process group while it runs (resume kills a survivor)
    version: int = STATE_VERSION

    def effective_status(self) -> str:
        """`running` only while its process lives: a killed run reads as `interrupted`."""
        if self.status == "running" and self.pid and not _pid_alive(self.pid):
            return "interrupted"
        return self.status

    def stage(self, name: str) -> StageState:
        return self.stages.setdefault(name, StageState())

    def stage_reached(self) -> str | None:
        """The furthest stage that started (or the first one, if none did)."""
        reached = None
        for name in self._ordered_stage_names():
            if self.stages[name].status != "pending":
                reached = name
        return reached

    def first_unfinished(self) -> str | None:
        for name in self._ordered_stage_names():
            if self.stages[name].status not in ("done", "skipped"):
                return name
        return None

    def _ordered_stage_names(self) -> list[str]:
        extra = [s for s in self.stages if s not in STAGE_ORDER]
        return [s for s in STAGE_ORDER if s in self.stages] + extra

    def to_json(self) -> dict[str, Any]:
        out = to_jsonable(self)
        out["stages"] = {k: v.to_json() for k, v in self.stages.items()}
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunState:
        known = {f.name for f in fields(cls)}
        raw = dict(raw)
        data = dict(raw.get("data") or {})
        for key in _MOVED_FROM_DATA:  # state files before these keys became fields
            if key in data and key not in raw:
                raw[key] = data.pop(key)
        raw["data"] = data
        st = cls(**{k: v for k, v in raw.items() if k in known and k != "stages"})
        st.stages = {k: StageState.from_json(v) for k, v in (raw.get("stages") or {}).items()}
        for name in STAGE_ORDER:
            st.stages.setdefault(name, StageState())
        st.spend = _dec(raw.get("spend"))
        return st


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
