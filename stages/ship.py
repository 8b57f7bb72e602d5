"""ship: a commit on the run's branch with a generated message; with --pr, push and open a PR.

The message comes from a cheap model (Conventional Commits subject and a
body); if its subject is not conventional, gitops derives one from the
request. Trailers name the model of every stage and the run id. The PR body
has the summary, the test result and the cost per stage.
"""

from __future__ import annotations

from typing import Any

from anvil.routing.walker import WalkerError
from anvil.run.stage_llm import StageExhausted
from anvil.stages.base import StageContext, StageOutcome, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import BuildOutput, ReviewOutput, ShipOutput, TestOutput
from anvil.stages.schemas import CommitText
from anvil.workspace import gitops
from anvil.workspace.github import pr_body, push_and_open_pr

NAME: StageName = "ship"


def stage_models(ctx: StageContext) -> dict[str, str | None]:
    return {r.stage: r.model for r in ctx.stage_records() if r.model}


def cost_rows(ctx: StageContext) -> list[dict[str, Any]]:
    return [{"stage": r.stage, "model": r.model, "tokens": r.tokens, "cost": r.cost}
            for r in ctx.stage_records() if r.model or r.tokens]


def commit_text(ctx: StageContext, user: str) -> CommitText:
    """The model's commit message; if no model gives a usable one, one derived from the request.

    The work is built, tested and reviewed by now: a failed commit message must not throw it
    away. The fallback is said out loud (progress note and event), never silent. A budget stop
    still stops.
    """
    try:
        return ctx.ask(load_prompt(NAME), user, schema=CommitText).parsed
    except (StageExhausted, WalkerError) as exc:
        first = (exc.message.splitlines() or [""])[0]
        ctx.event("ship.message_fallback", error=exc.message[:1000])
        ctx.note(f"no commit message from a model ({first[:100]}); derived one from the request")
        return CommitText(subject=ctx.request, body=ctx.spec().goal)


def run(ctx: StageContext) -> StageOutcome:
    out = ctx.output(ShipOutput)
    spec = ctx.spec()
    test = ctx.output(TestOutput).summary
    if not out.sha:
        stat = ctx.workspace.diff(stat=True)
        review_out = ctx.output(ReviewOutput).review
        review = review_out.summary if review_out else ""
        user = "\n".join([section("Request", ctx.request), section("Goal", spec.goal),
                          section("Changed files", stat), section("Review summary", review),
                          section("Diff", ctx.workspace.diff()[:30_000])])
        text = commit_text(ctx, user)
        models = stage_models(ctx)
        message = gitops.commit_message(ctx.request, subject=text.subject, body=text.body, models=models,
                                        run_id=ctx.run_id)
        # Only what the edits wrote: a file the test run left behind is not part of the change.
        written = set(ctx.output(BuildOutput).changed_files) | set(ctx.output(TestOutput).test_files)
        edited = sorted(p for p in written if ctx.workspace.exists(p))  # a resumed run may have dropped some
        sha = gitops.commit(ctx.worktree, message, paths=edited or None)
        out = ShipOutput(sha=sha, message=message, branch=ctx.branch)
        ctx.save(out)
    if ctx.options.get("pr") and not out.pr_url:
        repo_cfg = ctx.config.repo
        subject = (out.message or ctx.request).splitlines()[0]
        body = pr_body(spec.goal + "\n\n" + "\n".join(f"- {c}" for c in spec.acceptance_criteria), test,
                       cost_rows(ctx), run_id=ctx.run_id)
        pr = push_and_open_pr(
            worktree=ctx.worktree,
            repo_root=ctx.repo_root,
            branch=ctx.branch,
            base=ctx.options.get("base_branch") or ctx.base_ref,
            remote=ctx.options.get("remote") or repo_cfg.remote,
            title=subject,
            body=body,
            api_url=repo_cfg.github_api_url,
        )
        out = out.model_copy(update={"pr_url": pr.url})
        ctx.save(out)  # the runner copies it to the run's pr_url
    ctx.artifact("ship.json", out.model_dump_json(include={"branch", "sha", "message", "pr_url"}, indent=2) + "\n")
    where = out.pr_url or out.branch
    return StageOutcome(summary=f"committed {(out.sha or 'nothing')[:10]} on {where}")
