"""test: the planned tests still missing (as edits), then the repo's test command.

One writer of tests: build writes the code and the plan's tests; this stage
writes only the `tests_to_add` build did not (no model call when none is
missing), then runs the command. The planned test files must really run: named
in the runner's output, or run on their own and passing; otherwise the change
is not "tested" and goes back to build.

Tests are written once per run (a loop back from a failure keeps them); the
command runs in the worktree with the stage's timeout, the full log goes to
the run folder as test.log and the truncated report to the next build prompt.
A failure sends the run back to build with the failure's signature, so the
same failure twice counts as stuck.
"""

from __future__ import annotations

import os
import re
import shlex

from anvil.config.detect import detect
from anvil.providers.types import Message
from anvil.run.runner import save_checkpoint
from anvil.stages.base import (
    StageContext,
    StageOutcome,
    command_guard,
    files_block,
    load_prompt,
    section,
    tracked_files,
)
from anvil.stages.names import StageName
from anvil.stages.outputs import BuildOutput, TestOutput, TestResult
from anvil.stages.plan_validator import is_test_path
from anvil.stages.schemas import Plan
from anvil.workspace.edits import parse_edit_blocks
from anvil.workspace.testrun import CommandResult, default_source_roots, redact_file, run_command
from anvil.workspace.verdict import Verdict, judge, pytest_env

NAME: StageName = "test"


def planned_tests(plan: Plan | None) -> list[tuple[str, str]]:
    """(file, test name) of each of the plan's tests_to_add ("tests/test_x.py::test_y - what it checks")."""
    out = []
    for item in (plan.tests_to_add if plan else []):
        head = re.split(r"\s+[-–—:]\s+|\s+\(", item.strip(), maxsplit=1)[0]
        path, _, name = head.partition("::")
        if path.strip():
            out.append((path.strip(), name.split("[")[0].split("::")[-1].strip()))
    return out


def missing_tests(ctx: StageContext, plan: Plan | None) -> list[str]:
    """The planned tests that build did not write: a missing file, or a test name not in it."""
    from anvil.workspace.workspace import WorkspaceError

    missing = []
    for path, name in planned_tests(plan):
        try:
            text: str | None = ctx.workspace.read_text(path) if ctx.workspace.exists(path) else None
        except WorkspaceError:
            text = None
        if text is None or (name and not re.search(rf"\b{re.escape(name)}\b", text)):
            missing.append(f"{path}::{name}" if name else path)
    return missing


def write_tests(ctx: StageContext) -> tuple[int, list[str]]:
    """Write only the planned tests still missing (build writes the plan's tests: one writer)."""
    spec, plan = ctx.spec(), ctx.plan()
    missing = missing_tests(ctx, plan)
    if not missing:
        ctx.event("test.nothing_to_write", planned=len(planned_tests(plan)))
        return 0, []
    tests = [p for p in tracked_files(ctx.worktree) if is_test_path(p)][:6]
    user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in spec.acceptance_criteria)),
                      section("Planned tests still missing (write these only)", "\n".join(f"- {t}" for t in missing)),
                      section("Diff", ctx.workspace.diff()[:40_000]),
                      section("Existing tests", files_block(ctx.worktree, tests, limit_total=30_000))])
    system, history = load_prompt(NAME), list[Message]()
    while True:
        answer = ctx.ask(system, user, history=history)
        if answer.text.strip().upper().startswith("NONE"):
            return 0, []
        blocks = parse_edit_blocks(answer.text)
        report = ctx.workspace.apply([b for b in blocks if is_test_path(b.path)],
                                     harness_ok=plan.planned_paths() if plan else ())
        if report.harness:  # review is told (stages/review.py)
            build = ctx.output(BuildOutput)
            ctx.save(build.model_copy(update={"harness_files": sorted({*build.harness_files, *report.harness})}))
        skipped = [b.path for b in blocks if not is_test_path(b.path)]
        if skipped:
            ctx.event("test.non_test_edits_ignored", paths=skipped)
        for r in report.refused:
            ctx.event("test.refused", path=r.block.path, reason=r.reason)
        ctx.event("test.edits", model=answer.model, outcomes=report.outcomes())
        if report.ok:
            return len(report.applied), sorted({a.block.path for a in report.applied})
        ctx.retry(f"{len(report.failed) + len(report.refused)} test edit block(s) did not apply")
        history += [Message("user", user), Message("assistant", answer.text)]
        user = report.feedback()


def new_tests_ran(ctx: StageContext, cmd: str, output: str, roots: list[str],
                  verdict: Verdict | None = None) -> tuple[bool, str, CommandResult | None]:
    """Whether the plan's test files ran: in the passing run's junit report or named in its output, or,
    when neither says so, run on their own and passing.

    The third value is that second run of the command, when there was one (its time is the stage's too)."""
    files = sorted({p for p, _ in planned_tests(ctx.plan()) if ctx.workspace.exists(p)})
    junit = verdict if verdict is not None and verdict.source == "junit" and verdict.passed else None
    if not files or all((junit is not None and junit.ran(f)) or f in output for f in files):
        return True, "", None
    r = run_command(cmd + " " + " ".join(shlex.quote(f) for f in files), ctx.worktree,
                    float(ctx.policy.call_timeout or ctx.policy.timeout), source_roots=roots)
    low = r.output.lower()
    if r.passed and "no tests ran" not in low and "collected 0 items" not in low:
        return True, "", r
    return False, (f"the planned tests ({', '.join(files)}) did not run or did not pass on their own: "
                   f"{r.summary()}\n{r.report}"), r


def run(ctx: StageContext) -> StageOutcome:
    out = ctx.output(TestOutput)
    # Written once per run; again only if a resumed worktree lost them (killed before its checkpoint).
    if not out.tests_written or not all(ctx.workspace.exists(f) for f in out.test_files):
        added, files = write_tests(ctx)
        paid = ctx.run.state.stage(ctx.stage)
        out = out.model_copy(update={"tests_added": added, "test_files": files, "tests_written": True,
                                     "tests_paid": None if paid.cost is None else str(paid.cost),
                                     "tests_tokens": paid.tokens})
        # Checkpointed before the command runs: a kill during it (or a resume) keeps the tests it
        # paid for, and the resumed stage runs only the command.
        save_checkpoint(ctx.run, ctx.worktree)
        ctx.save(out)
    cmd = ctx.config.repo.test_command
    roots = list(ctx.config.repo.source_roots)
    withheld = not ctx.config.trust.approved
    if not cmd and (withheld or not (ctx.repo_root / ".anvil" / "config.yaml").is_file()):
        # `anvil init` never ran here, or its config.yaml is not approved: detect the command as init would.

        found = detect(ctx.worktree)
        cmd, roots = found.test_command, roots or found.source_roots
        if cmd:
            why = "the repository's .anvil/config.yaml is not approved" if withheld else "no .anvil/config.yaml"
            ctx.note(f"{why}: using the detected test command `{cmd}`")
    if not cmd:
        ctx.save(out.model_copy(update={"result": TestResult(summary="no test_command configured")}))
        ctx.note("no test_command in .anvil/config.yaml: tests not run")
        return StageOutcome(status="done", summary="no test command configured")
    roots = roots or default_source_roots(ctx.worktree)

    def started(pgid: int) -> None:  # recorded, so a resume can kill a group that outlived anvil
        ctx.run.state.command_pgid = pgid
        ctx.run.save()

    # The runner's own report decides (anvil.workspace.verdict): pytest writes junit.xml to the run folder.
    junit = ctx.run_file("junit.xml")
    junit.unlink(missing_ok=True)
    guard = command_guard(ctx)
    env = {**os.environ, **pytest_env(junit, os.environ.get("PYTEST_ADDOPTS"))}
    result = run_command(cmd, ctx.worktree, float(ctx.policy.timeout), source_roots=roots,
                         log_path=ctx.run_file("test.log"), env=env, on_start=started, **guard)
    ctx.run.state.command_pgid = None
    # The run's new tests: what this stage wrote, and the plan's test files that exist now.
    plan = ctx.plan()
    planned = [t.split("::", 1)[0].strip() for t in (plan.tests_to_add if plan else [])]
    new_tests = sorted({*out.test_files, *(p for p in planned if p.endswith(".py") and ctx.workspace.exists(p))})
    verdict = judge(cmd, None if result.timed_out else result.exit_code, result.output, junit_path=junit,
                    new_test_files=new_tests)
    if junit.is_file():
        redact_file(junit, guard["secrets"])
    passed = verdict.passed and not result.timed_out
    summary = result.summary() if not result.passed or passed else \
        f"`{cmd}` failed: {verdict.reason} in {result.duration:.1f}s"
    summary += f" [{verdict.summary()}]"
    signature = result.signature or ("" if passed else "verdict:" + verdict.reason)
    report = result.report if passed or not verdict.reason else \
        f"{result.report}\n[anvil: the test run does not count as passed: {verdict.reason}]"
    ctx.save(out.model_copy(update={
        "result": TestResult(command=cmd, passed=passed, exit_code=result.exit_code,
                             timed_out=result.timed_out, duration=round(result.duration, 2),
                             failing_tests=result.failing_tests, signature=signature,
                             summary=summary, report=report, verdict=verdict.to_json()),
        "runs": out.runs + 1, "command_seconds": round(out.command_seconds + result.duration, 3),
        "command_cpu_seconds": round(out.command_cpu_seconds + result.cpu_seconds, 3)}))
    ctx.event("test.ran", command=cmd, passed=passed, failing=result.failing_tests,
              signature=signature, duration=round(result.duration, 2), verdict=verdict.to_json())
    if passed:
        ran, why, again = new_tests_ran(ctx, cmd, result.output, roots, verdict)
        saved = ctx.output(TestOutput)
        if again is not None:
            saved = saved.model_copy(update={
                "command_seconds": round(saved.command_seconds + again.duration, 3),
                "command_cpu_seconds": round(saved.command_cpu_seconds + again.cpu_seconds, 3)})
        if not ran:
            assert saved.result is not None
            ctx.save(saved.model_copy(update={"new_tests_ran": False, "result": saved.result.model_copy(
                update={"passed": False, "report": why, "summary": "the planned tests did not run"})}))
            ctx.event("test.new_tests_not_run", detail=why[:500])
            return StageOutcome(status="back", back_to="build", signature="test:new-tests-not-run",
                                reason="the planned tests did not run", summary="the planned tests did not run")
        ctx.save(saved.model_copy(update={"new_tests_ran": True}))
        return StageOutcome(summary=summary)
    return StageOutcome(status="back", back_to="build", signature=signature,
                        reason=f"tests failed: {summary}", summary=summary)


def feedback_for_build(ctx: StageContext) -> str:
    res = ctx.output(TestOutput).result or TestResult()
    return ("The test command failed after your change. Fix the code (or a wrong test) so it passes.\n\n"
            + (res.report or res.summary))


def refresh_feedback(ctx: StageContext) -> str:
    """On resume: no test command any more, no test feedback; else the failure stands (test re-runs after build)."""
    if not ctx.config.repo.test_command and (ctx.repo_root / ".anvil" / "config.yaml").is_file():
        return ""
    return feedback_for_build(ctx)
