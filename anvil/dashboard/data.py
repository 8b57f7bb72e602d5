"""What the dashboard shows, read from the run stores and the ledger; nothing here writes.

Repositories are found the way `anvil runs` finds one (the git work tree the
command starts in) plus every repository the ledger has rows for, so runs
started anywhere on the machine are listed; a run the ledger knows but whose
folder is gone is still listed, from its ledger rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from anvil.errors import UserError
from anvil.ledger.backend import LedgerConnection, ledger_errors
from anvil.ledger.report import Filter, Group, Report, build_report
from anvil.run.store import Run, RunStore, parse_time
from anvil.stages.names import STAGES as STAGE_ORDER

# Each stage's artifact, as the stages write it.
ARTIFACTS: dict[str, str] = {"clarify": "clarify.md", "plan": "plan.json", "build": "build.patch",
                             "test": "test.log", "validate": "validate.json", "review": "review.md",
                             "ship": "ship.json"}
# Where the memory and conventions of a repository live (issue "memory"); absent until it lands.
MEMORY_PATHS = ("memory", "memory.json", "memory.jsonl", "conventions.yaml", "conventions.json", "conventions")
MAX_ARTIFACT = 200_000  # characters of one artifact shown on a page


def repo_id(path: str) -> str:
    """A short, stable name for a repository in URLs (its path never appears in one)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class Repo:
    path: str  # as the ledger names it: the main work tree's absolute path

    @property
    def id(self) -> str:
        return repo_id(self.path)

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    def store(self) -> RunStore:
        return RunStore(Path(self.path))


@dataclass
class RunRow:
    repo: Repo
    id: str
    request: str
    status: str
    stage: str | None
    cost: Decimal | None  # known dollars; None = no cost known at all
    unpriced: int
    created: str
    has_folder: bool = True

    @property
    def day(self) -> str:
        return self.created[:10]


@dataclass
class Attempt:
    """One ledger row, as the run page shows it."""

    ts: str
    stage: str
    attempt: int
    model: str
    provider: str
    served_model: str | None
    outcome: str
    error_kind: str | None
    http_status: int | None
    input_tokens: int
    output_tokens: int
    dollars: Decimal | None
    cost_source: str
    latency_s: float | None


@dataclass
class StageView:
    name: str
    status: str
    model: str | None
    models: list[str]
    seconds: float | None
    error: str | None
    attempts: list[Attempt] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    artifact_name: str | None = None
    artifact: str | None = None

    @property
    def dollars(self) -> Decimal:
        return sum((a.dollars for a in self.attempts if a.dollars is not None), Decimal(0))

    @property
    def unpriced(self) -> int:
        return sum(1 for a in self.attempts if a.dollars is None and a.cost_source == "unpriced")

    @property
    def tokens(self) -> int:
        return sum(a.input_tokens + a.output_tokens for a in self.attempts)


@dataclass
class RunView:
    repo: Repo
    id: str
    request: str
    status: str
    branch: str | None
    created: str
    updated: str
    pr_url: str | None
    error: str | None
    stages: list[StageView]
    events: list[dict[str, Any]]
    events_path: Path | None

    @property
    def dollars(self) -> Decimal:
        return sum((s.dollars for s in self.stages), Decimal(0))

    @property
    def unpriced(self) -> int:
        return sum(s.unpriced for s in self.stages)


class LedgerSource:
    """Opens the ledger for reading only: never created, migrated or written by the dashboard.

    `path` pins a SQLite file; by default the configured ledger (the home config's PostgreSQL
    URL, else `$ANVIL_HOME/ledger.db`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    @contextmanager
    def connect(self) -> Iterator[LedgerConnection | None]:
        from anvil.ledger.db import Ledger, ledger_exists

        if not (self.path.exists() if self.path is not None else ledger_exists()):
            yield None
            return
        errors: tuple[type[Exception], ...] = (*ledger_errors(), UserError)
        try:
            led = Ledger(self.path, read_only=True)
        except errors:  # a server that is down: an empty page, not a crash
            yield None
            return
        try:
            yield led.conn
        finally:
            led.close()


def _safe(conn: LedgerConnection | None, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if conn is None:
        return []
    try:
        return list(conn.execute(sql, args).fetchall())
    except ledger_errors():  # an empty or foreign file: nothing to show, not a crash
        return []


class Dashboard:
    """Everything the pages read. `home_repo` is the repository the command was started in."""

    def __init__(self, ledger: LedgerSource, home_repo: Path | None, baseline: Any = None) -> None:
        self.ledger = ledger
        self.home_repo = home_repo
        self.baseline = baseline  # a ResolvedModel, or None: no saving shown

    # ------------------------------------------------------------ repositories

    def repos(self) -> list[Repo]:
        from anvil.ledger.db import repo_key

        paths: list[str] = []
        if self.home_repo is not None:
            paths.append(repo_key(self.home_repo))
        with self.ledger.connect() as conn:
            paths += [r[0] for r in _safe(conn, "SELECT DISTINCT repo FROM attempts WHERE repo != '' ORDER BY repo")]
        return [Repo(p) for p in dict.fromkeys(paths)]

    def repo(self, rid: str) -> Repo | None:
        return next((r for r in self.repos() if r.id == rid), None)

    # ------------------------------------------------------------ run list

    def runs(self, repo: str | None = None, status: str | None = None, since: str | None = None,
             until: str | None = None) -> list[RunRow]:
        """Every run, newest first; `since`/`until` are dates (YYYY-MM-DD), both inclusive."""
        repos = [r for r in self.repos() if repo in (None, "", r.id)]
        costs = self._run_costs()
        rows: list[RunRow] = []
        seen: set[str] = set()
        for r in repos:
            for s in r.store().list():
                seen.add(s.id)
                c = costs.get(s.id)
                rows.append(RunRow(r, s.id, s.request, s.status, s.stage_reached,
                                   c.dollars if c else s.spend, c.unpriced if c else 0, s.created))
        for run_id, (repo_path, created) in self._ledger_runs().items():
            if run_id in seen or (repo and repo_id(repo_path) != repo):
                continue
            c = costs[run_id]
            rows.append(RunRow(Repo(repo_path), run_id, "", "unknown", None, c.dollars, c.unpriced, created,
                               has_folder=False))
        rows = [r for r in rows if (not status or r.status == status)
                and (not since or r.day >= since) and (not until or r.day <= until)]
        return sorted(rows, key=lambda r: (r.created, r.id), reverse=True)

    def _run_costs(self) -> dict[str, Group]:
        with self.ledger.connect() as conn:
            if conn is None:
                return {}
            try:
                report = build_report(conn, ["run"], Filter(demo=True))
            except ledger_errors():
                return {}
        return {g.key["run"]: g for g in report.groups}

    def _ledger_runs(self) -> dict[str, tuple[str, str]]:
        with self.ledger.connect() as conn:
            got = _safe(conn, "SELECT run_id, MIN(repo), MIN(ts) FROM attempts GROUP BY run_id")
        return {r[0]: (r[1], r[2]) for r in got}

    # ------------------------------------------------------------ one run

    def run(self, rid: str, run_id: str) -> RunView | None:
        repo = self.repo(rid)
        if repo is None:
            return None
        store = repo.store()
        if run_id not in store.ids():
            return self._ledger_only(repo, run_id)
        run = store.load(run_id)
        st = run.state
        attempts = self.attempts(run_id)
        events = run.events()
        stages = []
        for name in [*STAGE_ORDER, *(s for s in st.stages if s not in STAGE_ORDER)]:
            s = st.stage(name)
            a, b = parse_time(s.started), parse_time(s.finished)
            seconds = s.data.get("elapsed") or ((b - a).total_seconds() if a and b else None)
            view = StageView(name, s.status, s.model, list(s.models), seconds, s.error,
                             attempts=[x for x in attempts if x.stage == name],
                             tool_calls=[e for e in events if e.get("kind", "").startswith("tool")
                                         and e.get("stage") == name])
            view.artifact_name, view.artifact = _artifact(run, name)
            stages.append(view)
        return RunView(repo, run.id, st.request, st.effective_status(), st.branch, st.created, st.updated,
                       st.pr_url, st.error, stages, events, run.dir / "events.jsonl")

    def _ledger_only(self, repo: Repo, run_id: str) -> RunView | None:
        attempts = self.attempts(run_id)
        if not attempts:
            return None
        names = list(dict.fromkeys([*STAGE_ORDER, *(a.stage for a in attempts)]))
        stages = [StageView(n, "unknown" if any(a.stage == n for a in attempts) else "pending", None, [], None,
                            None, attempts=[a for a in attempts if a.stage == n]) for n in names]
        return RunView(repo, run_id, "(the run folder is gone; from the ledger)", "unknown", None, attempts[0].ts,
                       attempts[-1].ts, None, None, stages, [], None)

    def attempts(self, run_id: str) -> list[Attempt]:
        with self.ledger.connect() as conn:
            got = _safe(conn, "SELECT ts, stage, attempt, model, provider, served_model, outcome, error_kind, "
                              "http_status, input_tokens, output_tokens, dollars, cost_source, latency_s "
                              "FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))
        return [Attempt(ts=r[0], stage=r[1], attempt=r[2], model=r[3], provider=r[4], served_model=r[5], outcome=r[6],
                        error_kind=r[7], http_status=r[8], input_tokens=r[9], output_tokens=r[10],
                        dollars=None if r[11] in (None, "") else Decimal(r[11]), cost_source=r[12], latency_s=r[13])
                for r in got]

    # ------------------------------------------------------------ costs

    def cost(self, by: str, repo: str | None = None, since: str | None = None, until: str | None = None,
             demo: bool = False) -> Report | None:
        repo_path = None
        if repo:
            found = self.repo(repo)
            if found is None:
                return None
            repo_path = found.path
        from anvil.ledger.report import parse_until

        flt = Filter(since or None, parse_until(until) if until else None, None, repo_path, demo)
        with self.ledger.connect() as conn:
            if conn is None:
                return None
            try:
                return build_report(conn, [by], flt, self.baseline)
            except ledger_errors():
                return None

    # ------------------------------------------------------------ memory

    def memory(self, repo: Repo) -> list[tuple[str, str]]:
        """(name, text) of each memory or conventions file the repository has; [] = not recorded yet."""
        base = Path(repo.path) / ".anvil"
        out = []
        for name in MEMORY_PATHS:
            p = base / name
            files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p] if p.is_file() else []
            for f in files[:50]:
                try:
                    out.append((str(f.relative_to(base)), f.read_text(encoding="utf-8", errors="replace")[:20000]))
                except OSError:
                    continue
        return out


def _artifact(run: Run, stage: str) -> tuple[str | None, str | None]:
    name = ARTIFACTS.get(stage)
    if name is None:
        return None, None
    text = run.read_artifact(name)
    if text is None:
        return name, None
    if name.endswith(".json"):
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except json.JSONDecodeError:
            pass
    return name, text[:MAX_ARTIFACT]
