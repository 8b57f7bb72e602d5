"""Durable runs: `.anvil/runs/<run-id>/` (DESIGN.md 8).

A run folder holds `state.json` (rewritten atomically: temp file, fsync,
rename, so a kill at any instant leaves the old or the new state, never half of
one), `events.jsonl` (append-only audit log), one artifact per stage and the
model exchanges under `exchanges/` with secrets redacted. Run ids sort by
creation time and stay short: `20261122-0812-ab12`.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

from anvil.errors import UserError
from anvil.run.redact import redact
from anvil.run.state import (  # noqa: F401  (re-exported: the run's state types live in anvil.run.state)
    RUN_STATUSES,
    STAGE_STATUSES,
    STATE_VERSION,
    Clock,
    RunState,
    StageState,
    _iso,
    _pid_alive,
    _utcnow,
    parse_time,
)


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # The rename itself is durable only once the directory entry is flushed.
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def ensure_runs_dir(repo_root: Path) -> Path:
    """`<repo>/.anvil/runs/`, created git-ignored.

    Runs (and their worktrees) never show up in the user's `git status`,
    whether or not `anvil init` added `.anvil/runs/` to .gitignore.
    """
    root = Path(repo_root) / ".anvil" / "runs"
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return root


class Run:
    """One run folder. `state` is mutated by the runner, then `save()`d."""

    def __init__(self, run_id: str, run_dir: Path, state: RunState, *, clock: Clock = _utcnow,
                 secrets: Iterable[str] = ()) -> None:
        self.id = run_id
        self.dir = run_dir
        self.state = state
        self._clock = clock
        self.secrets: list[str] = [s for s in secrets if s]

    # state -------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def save(self) -> None:
        self.state.updated = _iso(self._clock())
        if self.state.status == "running":
            self.state.pid = os.getpid()
        atomic_write(self.state_path, json.dumps(self.state.to_json(), indent=2, sort_keys=False) + "\n")

    # audit log ----------------------------------------------------------
    def event(self, kind: str, **data: Any) -> None:
        record = {"t": _iso(self._clock()), "kind": kind, **redact(data, self.secrets)}
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        # O_APPEND: each line lands whole at the end even with another writer.
        fd = os.open(self.dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        path = self.dir / "events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
        return out

    # artifacts ----------------------------------------------------------
    def write_artifact(self, name: str, text: str) -> Path:
        if "/" in name or "\\" in name or name.startswith(".") or name in ("state.json", "events.jsonl"):
            raise ValueError(f"bad artifact name {name!r}")
        path = self.dir / name
        atomic_write(path, text)
        return path

    def read_artifact(self, name: str) -> str | None:
        path = self.dir / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def artifacts(self) -> list[str]:
        skip = {"state.json", "events.jsonl"}
        return sorted(p.name for p in self.dir.iterdir()
                      if p.is_file() and p.name not in skip and not p.name.startswith("."))

    # model exchanges ----------------------------------------------------
    def record_exchange(self, stage: str, attempt: int, request: Any, result_or_error: Any,
                        *, model: str | None = None, provider: str | None = None,
                        extra: dict[str, Any] | None = None) -> Path:
        """Keep one model exchange (redacted) under `exchanges/`; returns its path."""
        ex_dir = self.dir / "exchanges"
        ex_dir.mkdir(exist_ok=True)
        n = len(list(ex_dir.glob(f"{stage}-{attempt:02d}-*.json"))) + 1
        ok = not isinstance(result_or_error, BaseException)
        record = {
            "stage": stage, "attempt": attempt, "t": _iso(self._clock()),
            "model": model, "provider": provider, "ok": ok,
            "request": request,
            "result" if ok else "error": result_or_error,
            **(extra or {}),
        }
        path = ex_dir / f"{stage}-{attempt:02d}-{n:02d}.json"
        atomic_write(path, json.dumps(redact(record, self.secrets), indent=2, ensure_ascii=False) + "\n")
        return path

    def exchanges(self) -> list[Path]:
        ex_dir = self.dir / "exchanges"
        return sorted(ex_dir.glob("*.json")) if ex_dir.is_dir() else []

    # one process at a time ---------------------------------------------
    def acquire(self) -> None:
        """Take the run's lock (held until `release()` or the process exits).

        A second `anvil resume` of a run that is still going gets a clear
        error instead of two processes writing one worktree and state.
        """
        import fcntl

        if getattr(self, "_lock_fd", None) is not None:
            return
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = f" (pid {self.state.pid})" if self.state.pid else ""
            raise UserError(f"run {self.id} is already running in another process{who}",
                            hint="wait for it to finish, or stop it (Ctrl-C) before resuming") from None
        self._lock_fd: int | None = fd

    def release(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
            self._lock_fd = None


@dataclass
class RunSummary:
    id: str
    request: str
    status: str
    stage_reached: str | None
    spend: Decimal | None
    created: str
    updated: str
    branch: str | None
    dir: Path


class RunStore:
    """The runs of one repository, under `<repo>/.anvil/runs/`."""

    def __init__(self, repo_root: Path, *, clock: Clock = _utcnow,
                 token: Callable[[], str] = lambda: _secrets.token_hex(2)) -> None:
        self.repo_root = Path(repo_root)
        self.root = self.repo_root / ".anvil" / "runs"
        self._clock = clock
        self._token = token

    def _ensure_root(self) -> None:
        ensure_runs_dir(self.repo_root)

    def new_id(self) -> str:
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%d-%H%M")
        for _ in range(50):
            run_id = f"{stamp}-{self._token()}"
            if not (self.root / run_id).exists():
                return run_id
        raise RuntimeError("could not find a free run id")

    def create(self, request: str, options: dict[str, Any] | None = None, *,
               secrets: Iterable[str] = ()) -> Run:
        self._ensure_root()
        while True:  # mkdir is the atomic claim: two anvils starting in one minute never share a folder
            run_id = self.new_id()
            run_dir = self.root / run_id
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        now = _iso(self._clock())
        state = RunState(request=request, created=now, updated=now, options=dict(options or {}))
        run = Run(run_id, run_dir, state, clock=self._clock, secrets=secrets)
        run.save()
        run.event("run.created", request=request, options=state.options)
        return run

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "state.json").is_file())

    def resolve_id(self, run_id: str) -> str:
        ids = self.ids()
        if run_id in ids:
            return run_id
        matches = [i for i in ids if i.startswith(run_id)] if run_id else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UserError(f"no run {run_id!r} in {self.root}", hint="`anvil runs` lists this repository's runs")
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise UserError(f"run id {run_id!r} is ambiguous: {shown}", hint="type more of the id")

    def load(self, run_id: str, *, secrets: Iterable[str] = ()) -> Run:
        rid = self.resolve_id(run_id)
        run_dir = self.root / rid
        try:
            raw = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"run {rid}: cannot read state.json ({exc})") from None
        return Run(rid, run_dir, RunState.from_json(raw), clock=self._clock, secrets=secrets)

    def list(self) -> list[RunSummary]:
        """All runs, newest first; unreadable folders are skipped."""
        out = []
        for rid in reversed(self.ids()):
            try:
                raw = json.loads((self.root / rid / "state.json").read_text(encoding="utf-8"))
                st = RunState.from_json(raw)
            except (OSError, json.JSONDecodeError, TypeError):
                continue
            out.append(RunSummary(id=rid, request=st.request, status=st.effective_status(),
                                  stage_reached=st.stage_reached(), spend=st.spend, created=st.created,
                                  updated=st.updated, branch=st.branch, dir=self.root / rid))
        return out
