"""test: tests for the acceptance criteria (as edits), then the repo's test command.

Tests are written once per run (a loop back from a failure keeps them); the
command runs in the worktree with the stage's timeout, the full log goes to
the run folder as test.log and the truncated report to the next build prompt.
A failure sends the run back to build with the failure's signature, so the
same failure twice counts as stuck.
"""

from __future__ import annotations

from anvil.config.detect import detect
from anvil.providers.types import Message
from anvil.run.runner import save_checkpoint
from anvil.stages.base import StageContext, StageOutcome, files_block, load_prompt, section, tracked_files
from anvil.stages.names import StageName
from anvil.stages.outputs import TestOutput, TestResult
from anvil.stages.plan_validator import is_test_path
from anvil.workspace.edits import parse_edit_blocks
from anvil.workspace.testrun import default_source_roots, run_command

NAME: StageName = "test"


def write_tests(ctx: StageContext) -> tuple[int, list[str]]:
    spec, plan = ctx.spec(), ctx.plan()
    tests = [p for p in tracked_files(ctx.worktree) if is_test_path(p)][:6]
    user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in spec.acceptance_criteria)),
                      section("Planned tests", "\n".join(f"- {t}" for t in (plan.tests_to_add if plan else []))),
                      section("Diff", ctx.workspace.diff()[:40_000]),
                      section("Existing tests", files_block(ctx.worktree, tests, limit_total=30_000))])
    system, history = load_prompt(NAME), list[Message]()
    while True:
        answer = ctx.ask(system, user, history=history)
        if answer.text.strip().upper().startswith("NONE"):
            return 0, []
        blocks = parse_edit_blocks(answer.text)
        report = ctx.workspace.apply([b for b in blocks if is_test_path(b.path)])
        skipped = [b.path for b in blocks if not is_test_path(b.path)]
        if skipped:
            ctx.event("test.non_test_edits_ignored", paths=skipped)
        for r in report.refused:
            ctx.event("test.refused", path=r.block.path, reason=r.reason)
        if report.ok:
            return len(report.applied), sorted({a.block.path for a in report.applied})
        ctx.retry(f"{len(report.failed) + len(report.refused)} test edit block(s) did not apply")
        history += [Message("user", user), Message("assistant", answer.text)]
        user = report.feedback()


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
    if not cmd and not (ctx.repo_root / ".anvil" / "config.yaml").is_file():
        # `anvil init` never ran here: detect the command the way it would have.

        found = detect(ctx.worktree)
        cmd, roots = found.test_command, roots or found.source_roots
        if cmd:
            ctx.note(f"no .anvil/config.yaml: using the detected test command `{cmd}`")
    if not cmd:
        ctx.save(out.model_copy(update={"result": TestResult(summary="no test_command configured")}))
        ctx.note("no test_command in .anvil/config.yaml: tests not run")
        return StageOutcome(status="done", summary="no test command configured")
    roots = roots or default_source_roots(ctx.worktree)

    def started(pgid: int) -> None:  # recorded, so a resume can kill a group that outlived anvil
        ctx.run.state.command_pgid = pgid
        ctx.run.save()

    result = run_command(cmd, ctx.worktree, float(ctx.policy.timeout), source_roots=roots,
                         log_path=ctx.run_file("test.log"), on_start=started)
    ctx.run.state.command_pgid = None
    ctx.save(out.model_copy(update={
        "result": TestResult(command=cmd, passed=result.passed, exit_code=result.exit_code,
                             timed_out=result.timed_out, duration=round(result.duration, 2),
                             failing_tests=result.failing_tests, signature=result.signature,
                             summary=result.summary(), report=result.report),
        "runs": out.runs + 1, "command_seconds": round(out.command_seconds + result.duration, 3)}))
    ctx.event("test.ran", command=cmd, passed=result.passed, failing=result.failing_tests,
                  signature=result.signature, duration=round(result.duration, 2))
    if result.passed:
        return StageOutcome(summary=result.summary())
    return StageOutcome(status="back", back_to="build", signature=result.signature,
                        reason=f"tests failed: {result.summary()}",
                        summary=result.summary())


def feedback_for_build(ctx: StageContext) -> str:
    res = ctx.output(TestOutput).result or TestResult()
    return ("The test command failed after your change. Fix the code (or a wrong test) so it passes.\n\n"
            + (res.report or res.summary))
