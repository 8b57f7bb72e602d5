"""The pipeline runner: clarify -> plan -> build -> test -> validate -> review -> ship (DESIGN.md 3, 8, 9).

Each stage is a module of `anvil.stages` with `run(ctx) -> StageOutcome`.
The runner owns the order, the loops and the run state:

- a stage that returns `back` (test failures, failed validation, blocking
  review findings) sends the run back to build, spending one of build's
  retries through `StageLLM.retry` (which applies build's `on_retry` and
  detects "stuck": the same failure signature twice in a row);
- a `StageExhausted` ends the run (exit 4) unless the stage's `on_exhaust` is
  `skip` and the stage can be skipped; `ask` is answered inside `retry`;
- the state is saved after every step; after each finished stage the
  worktree's diff against the base commit is kept as `worktree.patch`, so a
  resumed run puts the worktree back exactly as the last finished stage left
  it and re-runs only the unfinished stages (their artifacts and outputs are
  reloaded from the run state, nothing paid for is paid for twice).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, AnvilError
from anvil.routing.availability import check_providers
from anvil.routing.budget import BudgetExceeded, BudgetGuard
from anvil.routing.burns import BurnList
from anvil.routing.walker import Walker
from anvil.run.stage_llm import StageFailed, StageLLM
from anvil.run.store import atomic_write
from anvil.stages.base import StageContext, feedback_for_build
from anvil.stages.names import SKIPPABLE, STAGES, StageName, is_stage
from anvil.workspace import gitops, spares
from anvil.workspace.env import catalogue_key_variables
from anvil.workspace.gitops import git, remove_worktree
from anvil.workspace.testrun import kill_survivors
from anvil.workspace.workspace import Workspace

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.ledger.db import Ledger
    from anvil.memory.conventions import Convention
    from anvil.memory.store import MemoryStore
    from anvil.routing.availability import Availability
    from anvil.run.events import Progress
    from anvil.run.store import Run, StageState
    from anvil.stages.base import StageContext
    from anvil.telemetry import Telemetry

ARTIFACTS: dict[StageName, str] = {
    "clarify": "clarify.md",
    "plan": "plan.json",
    "build": "build.patch",
    "test": "test.log",
    "validate": "validate.json",
    "review": "review.md",
    "ship": "ship.json",
}
CHECKPOINT = "worktree.patch"


def save_checkpoint(run: Run, worktree: Path) -> str:
    """Keep the worktree's diff against the base as the run's checkpoint; returns the patch.

    A resumed run puts the worktree back from it: written after build and test finish, and by
    the test stage once its tests are written (before the command runs)."""
    assert run.state.base_sha, "the worktree is made (and its base recorded) before the first stage"
    patch = gitops.diff(worktree, run.state.base_sha)
    atomic_write(run.dir / CHECKPOINT, patch)
    return patch


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class RunOptions:
    yes: bool = False
    pr: bool = False
    remote: str | None = None
    interactive: bool = False
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs (or resumes) one run. `provider_factory`, `availability` and `ledger` are injectable."""

    def __init__(self, config: Config, repo_root: Path, run: Run, *, options: RunOptions, progress: Progress,
                 ledger: Ledger | None, availability: dict[str, Availability] | None = None,
                 provider_factory: Callable[[Any], Any] | None = None,
                 prompt_user: Callable[[str], str] | None = None,
                 sleep: Callable[[float], None] = time.sleep, telemetry: Telemetry | None = None) -> None:
        from anvil.telemetry import NullTelemetry, StageTee

        self.config = config
        self.repo_root = Path(repo_root)
        self.run = run
        self.options = options
        self.telemetry: Telemetry = telemetry if telemetry is not None else NullTelemetry()
        # stage spans start and end exactly where the display's stages do
        self.progress: Progress = StageTee(progress, self.telemetry) if telemetry is not None else progress
        self.ledger = ledger
        # A question waiting on the user is not stage (or model) time: the wait is counted apart.
        self.waited = 0.0
        self.prompt_user = self._timed(prompt_user) if prompt_user is not None else None
        if availability is None:
            availability = check_providers(config)
        self.availability = availability
        self.llm = self._make_llm(provider_factory, sleep)
        self._memory = ""  # the remembered-facts block every stage's prompt starts with
        self._conventions: tuple[Convention, ...] = ()  # enforced by validate, told to review
        self._resumed = False
        from anvil.workspace.gitops import set_run_hooks

        set_run_hooks(config.repo.git.run_hooks)  # only $ANVIL_HOME/config.yaml can say true (loader)

    def _timed(self, prompt: Callable[[str], str]) -> Callable[[str], str]:
        def ask(question: str) -> str:
            t0 = time.monotonic()
            try:
                return prompt(question)
            finally:
                self.waited += time.monotonic() - t0
        return ask

    # ------------------------------------------------------------ wiring

    def _make_llm(self, provider_factory: Any, sleep: Callable[[float], None]) -> Any:
        settings = self.config.catalogue.walker
        burns = BurnList.from_json(self.run.state.burns, expiry=settings.burn_expiry)
        budget = BudgetGuard.from_config(self.config, self.ledger, self.run.id, on_runaway=self._runaway)
        walker = Walker(settings, ledger=self.ledger, burns=burns, provider_factory=provider_factory,
                        config=self.config, budget=budget, sleep=sleep, telemetry=self.telemetry)
        ask = None
        if self.options.interactive and self.prompt_user is not None:
            ask = lambda q: self.prompt_user(q + " [y/N]").strip().lower() in ("y", "yes")  # noqa: E731
        return StageLLM(config=self.config, availability=self.availability, walker=walker, run=self.run,
                        ledger=self.ledger, progress=self.progress, repo=str(self.repo_root),
                        demo=self.options.demo, ask_user=ask)

    def _runaway(self, stage: str, tokens: int, limit: int) -> None:
        """A stage past k times its usual tokens: flagged in the run state and the live view (not stopped)."""
        self.run.state.data.setdefault("runaway", {})[stage] = {"tokens": tokens, "limit": limit}
        self.run.event("stage.runaway", stage=stage, tokens=tokens, limit=limit)
        self.progress.note(stage, f"runaway: {tokens:,} tokens, past {limit:,} (set budget.max_tokens: auto "
                                  "to stop it)")

    def _ensure_worktree(self) -> Path:
        st = self.run.state
        if not st.base_sha:
            st.base_ref = st.base_ref or gitops.default_branch(self.repo_root, self.config.repo.remote)
            st.base_sha = gitops.rev_parse(self.repo_root, st.base_ref)
        if not st.branch:  # the branch is recorded only once this run has created it
            path, st.branch = gitops.claim_worktree(self.repo_root, self.run.id, st.base_sha,
                                                    gitops.branch_name(st.request, self.repo_root),
                                                    take_spare=lambda p: spares.take(self.repo_root, p))
        else:  # resume: our own branch (a worktree removed by hand is made again on it)
            path = gitops.create_worktree(self.repo_root, self.run.id, st.base_sha, st.branch)
        st.worktree = str(path)
        self.run.save()
        return path

    def _restore_worktree(self, worktree: Path) -> None:
        """Put the worktree back as the last finished stage left it (resume after a kill or failure)."""
        st = self.run.state
        if st.stage("ship").data.get("sha"):
            return  # committed: the branch holds the work
        base = st.base_sha
        assert base, "a run's base commit is recorded before its worktree exists"
        git(["reset", "--hard", "--quiet", base], worktree)
        git(["clean", "-fdq"], worktree)
        patch = self.run.dir / CHECKPOINT
        if patch.is_file() and patch.stat().st_size:
            git(["apply", "--binary", "--whitespace=nowarn", str(patch)], worktree)
        self.run.event("worktree.restored", checkpoint=patch.is_file())

    def _checkpoint(self, worktree: Path, stage: str) -> None:
        patch = save_checkpoint(self.run, worktree)
        if stage == "build":
            self.run.write_artifact("build.patch", patch)

    def _settle_leftovers(self, worktree: Path) -> None:
        """Resume: what a killed process left behind is dealt with before anything runs again.

        A test command that outlived anvil is killed (it would run on in the worktree about to be
        reset); calls that were in flight are settled in the ledger as `interrupted`."""
        st = self.run.state
        killed = kill_survivors(st.command_pgid, worktree)
        st.command_pgid = None
        settled = 0
        if self.ledger is not None:
            settled = self.ledger.settle_unsettled(self.run.id, only_dead=False)
        if killed or settled:
            self.run.event("run.leftovers", killed_processes=killed, calls_settled_interrupted=settled)

    # ------------------------------------------------------------ the loop

    def execute(self) -> Run:
        """Run from the first unfinished stage to the end. Raises AnvilError (with the state saved) on failure."""
        st = self.run.state
        st.status, st.error, st.exit_code = "running", None, None
        resumed = any(s.status != "pending" for s in st.stages.values())
        self.run.event("run.resumed" if resumed else "run.started", first=st.first_unfinished())
        self.telemetry.run_started(self.run.id, str(self.repo_root), resumed)
        self.run.save()
        try:
            worktree = self._ensure_worktree()
            self._resumed = resumed
            if resumed:
                self._settle_leftovers(worktree)
                self._restore_worktree(worktree)
            self._memory = self._recall(worktree)
            self._loop(worktree)
        except BudgetExceeded as exc:
            self._stop("budget_stopped", exc.message, exc.exit_code)
            raise
        except AnvilError as exc:
            self._stop("failed", exc.message, exc.exit_code)
            raise
        except KeyboardInterrupt:
            self._stop("interrupted", "interrupted", EXIT_INTERRUPTED)
            raise
        except Exception as exc:  # a bug: keep the traceback in the run's audit log
            import traceback

            self.run.event("run.internal_error", traceback=traceback.format_exc()[-8000:])
            self._stop("failed", f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)
            raise
        st.status, st.exit_code = "done", 0
        self.llm.outcomes.close_all({n: s.model for n, s in st.stages.items()}, success=True)
        self.llm.refresh_costs()
        self.run.event("run.done", branch=st.branch, pr=st.pr_url, spend=st.spend)
        self._remember(worktree)
        self.telemetry.run_finished(self.run.id, "done")
        self._cleanup(worktree)
        self.run.save()
        return self.run

    def _stop(self, status: str, message: str, code: int) -> None:
        st = self.run.state
        for s in st.stages.values():
            if s.status == "running":
                s.status = "interrupted" if status == "interrupted" else "failed"
                s.error = message[:2000]
        st.status, st.error, st.exit_code = status, message[:2000], code
        try:
            self.llm.outcomes.close_all({n: s.model for n, s in st.stages.items()}, success=False,
                                        reason=f"run {status}")
        except Exception:  # a ledger problem must not hide the real failure
            pass
        try:
            self.llm.refresh_costs()
        except Exception:  # a ledger problem must not hide the real failure
            pass
        self.run.event("run.stopped", status=status, error=message[:2000], exit_code=code)
        self.telemetry.run_finished(self.run.id, status)
        self.run.save()

    # ------------------------------------------------------------ memory

    def _recall(self, worktree: Path) -> str:
        """Mark drifted facts stale (their anchors changed in this checkout) and return the live ones' block;
        the enforced conventions go to validate and review (`self._conventions`)."""
        import sqlite3

        from anvil.memory.store import MemoryStore

        try:
            store = MemoryStore.for_repo(self.repo_root, secrets=self.run.secrets)
        except (sqlite3.Error, OSError, RuntimeError) as exc:  # memory is a help: it must not stop a run
            self.run.event("memory.unavailable", error=str(exc)[:500])
            return ""
        try:
            stale = store.check_drift(worktree)
            if stale:
                self.run.event("memory.stale", facts=[f.id for f in stale])
            self._conventions = tuple(store.conventions.enforced())
            return store.block()
        finally:
            store.close()

    def _remember(self, worktree: Path) -> None:
        import sqlite3

        from anvil.memory.remember import remember_run, review_cases
        from anvil.memory.store import MemoryStore
        from anvil.workspace import gitops

        try:
            store = MemoryStore.for_repo(self.repo_root, secrets=self.run.secrets)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self.run.event("memory.unavailable", error=str(exc)[:500])
            return
        settings = self.config.policy.conventions
        try:
            facts = remember_run(store, self.run.state, self.run.id, worktree)
            self.run.event("memory.remembered", facts=[f.id for f in facts])
            assert self.run.state.base_sha
            cases = review_cases(self.run.state, self.run.id, gitops.diff(worktree, self.run.state.base_sha))
            proposed = store.conventions.record(cases, min_runs=settings.min_runs)
            if proposed:
                self.run.event("conventions.proposed", keys=[c.key for c in proposed])
            if settings.auto_promote:
                self._auto_promote(store, proposed)
        except sqlite3.Error as exc:
            self.run.event("memory.unavailable", error=str(exc)[:500])
        finally:
            store.close()

    def _auto_promote(self, store: MemoryStore, proposed: list[Convention]) -> None:
        """Write each newly proposed convention's check with review's chain (ledger stage `conventions`)."""
        from anvil.errors import AnvilError
        from anvil.memory.writer import promote_by_model, walker_ask
        from anvil.routing.walker import CallSite

        for c in proposed:
            site = CallSite(self.run.id, "conventions", self.llm.repo, self.llm.demo)
            try:
                ask = walker_ask(self.llm.walker, self.llm.chain("review"), self.config.policy.stage("review"), site)
                written = promote_by_model(store.conventions, c, ask)
            except AnvilError as exc:  # no model, or every model failed: it stays proposed
                self.run.event("conventions.not_promoted", key=c.key, reason=exc.message[:500])
                continue
            if written.check is None:
                self.run.event("conventions.not_promoted", key=c.key, reason=written.refused[:500])
            else:
                self.run.event("conventions.promoted", key=c.key, check=written.check.kind,
                               pattern=written.check.pattern, by=written.model)

    def _cleanup(self, worktree: Path) -> None:
        # The branch keeps the commits; a left-over worktree would stop `git checkout <branch>`. A parked
        # spare is detached, so it holds no branch.
        if not spares.park(self.repo_root, worktree, self.config.repo.git.spare_worktrees):
            remove_worktree(self.repo_root, worktree)
        self.run.state.worktree_removed = True

    def _context(self, worktree: Path) -> StageContext:
        st = self.run.state
        assert st.base_sha, "the worktree is made (and its base recorded) before the first stage"
        opts = {"pr": self.options.pr, "remote": self.options.remote, "base_branch": st.base_ref,
                "yes": self.options.yes, **self.options.extra}
        workspace = Workspace(worktree, st.base_sha, secrets=self.run.secrets,
                              drop_env=catalogue_key_variables(self.config.catalogue))
        return StageContext("clarify", config=self.config, workspace=workspace,
                            repo_root=self.repo_root, run=self.run, llm=self.llm, progress=self.progress,
                            request=st.request, interactive=self.options.interactive,
                            prompt_user=self._timed_prompt(), options=opts, memory=self._memory,
                            conventions=self._conventions)

    def _timed_prompt(self) -> Callable[[str], str] | None:
        """The user prompt, with the time spent waiting for an answer taken off the stage's timeout."""
        ask = self.prompt_user
        if ask is None:
            return None

        def timed(question: str) -> str:
            t0 = time.monotonic()
            try:
                return ask(question)
            finally:
                stage = next((n for n, s in self.run.state.stages.items() if s.status == "running"), None)
                if stage:
                    self.llm.waiting_for_user(stage, time.monotonic() - t0)

        return timed

    def _loop(self, worktree: Path) -> None:
        st = self.run.state
        base_ctx = self._context(worktree)
        first = st.first_unfinished()
        if first == "build" and st.build_feedback and self._resumed:
            self._refresh_feedback(base_ctx)
        i = STAGES.index(first) if first else len(STAGES)
        while i < len(STAGES):
            name = STAGES[i]
            stage = st.stage(name)
            stage.status, stage.error = "running", None
            stage.started = stage.started or _now()
            self.run.event("stage.started", stage=name)
            self.run.save()  # `anvil runs` / a killed run show the stage it was in
            self.progress.stage_started(name, f"retry {self.llm.escalation(name).retries}"
                                        if self.llm.escalation(name).retries else "")
            t0, waited0 = time.monotonic(), self.waited
            ctx = base_ctx.for_stage(name)
            self.llm.start_stage(name)  # the stage's timeout counts from here
            try:
                module = importlib.import_module(f"anvil.stages.{name}")
                outcome = module.run(ctx)
                if outcome.status == "back":
                    ctx.feedback = feedback_for_build(module, ctx, outcome)
                    st.build_feedback_from = name
                    self.llm.retry(outcome.back_to or "build", outcome.reason, signature=outcome.signature)
            except StageFailed as exc:
                self._add_time(stage, t0)
                if self.config.policy.stage(name).on_exhaust == "skip" and name in SKIPPABLE:
                    stage.status, stage.error, stage.finished = "skipped", exc.message[:2000], _now()
                    self.run.event("stage.skipped", stage=name, reason=exc.message[:2000])
                    self.progress.stage_finished(name, "skipped", exc.reason[:120])
                    self.run.save()
                    i += 1
                    continue
                stage.status, stage.error = "failed", exc.message[:2000]
                self.progress.stage_finished(name, "failed", exc.reason[:120])
                raise
            except BaseException as exc:
                self._add_time(stage, t0, self.waited - waited0)
                first_line = (str(getattr(exc, "message", exc)).splitlines() or [""])[0]
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                self.progress.stage_finished(name, status, first_line[:160])
                raise
            self._add_time(stage, t0, self.waited - waited0)
            if outcome.status == "back":
                target = outcome.back_to or "build"
                j = STAGES.index(target)
                for later in STAGES[j:i + 1]:
                    st.stage(later).status = "pending"
                self.run.event("stage.back", stage=name, to=target, reason=outcome.reason,
                               signature=outcome.signature)
                self.progress.stage_finished(name, "back", outcome.summary or outcome.reason[:120])
                self.run.save()
                i = j
                continue
            stage.status = outcome.status
            stage.finished = _now()
            self.llm.outcomes.stage_done(name, stage.model)
            st.last_done = name
            if name == "ship":  # the run's summary fields come from ship's output
                st.pr_url = st.stage("ship").data.get("pr_url") or st.pr_url
            if (self.run.dir / ARTIFACTS[name]).is_file():
                stage.artifact = ARTIFACTS[name]
            if name in ("build", "test"):  # the stages that change files; ship's commit holds the rest
                self._checkpoint(worktree, name)
            self.run.event("stage.done", stage=name, summary=outcome.summary)
            self.progress.stage_finished(name, stage.status, outcome.summary)
            self.run.save()
            i += 1

    def _refresh_feedback(self, ctx: StageContext) -> None:
        """On resume: build's feedback as it stands now (the user may have fixed the cause meanwhile),
        recomputed by the stage that gave it, or cleared when that cause is gone."""
        st = self.run.state
        source = st.build_feedback_from
        if source is None or not is_stage(source):
            return
        refresh = getattr(importlib.import_module(f"anvil.stages.{source}"), "refresh_feedback", None)
        if refresh is None:
            return
        ctx = ctx.for_stage(source)
        before = ctx.feedback
        ctx.feedback = refresh(ctx)
        if ctx.feedback != before:
            self.run.event("feedback.refreshed", source=source, cleared=not ctx.feedback,
                           chars_before=len(before), chars_after=len(ctx.feedback))
            self.progress.note("build", f"feedback from {source} " + ("cleared: its cause is gone" if not ctx.feedback
                                                                      else "recomputed for the current state"))
        self.run.save()

    @staticmethod
    def _add_time(stage: StageState, t0: float, waited: float = 0.0) -> None:
        stage.data["elapsed"] = round(float(stage.data.get("elapsed", 0.0)) + time.monotonic() - t0 - waited, 3)
        if waited:
            stage.data["waited_for_user"] = round(float(stage.data.get("waited_for_user", 0.0)) + waited, 3)
