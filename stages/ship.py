"""ship: a commit on the run's branch with a generated message; with --pr, push and open a PR.

The message comes from a cheap model (Conventional Commits subject and a
body); if its subject is not conventional, gitops derives one from the
request. Trailers name the model of every stage and the run id. The PR body
has the summary, the test result and the cost per stage.
"""

from __future__ import annotations

import json

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section

NAME = "ship"
STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")


def stage_models(ctx: StageContext) -> dict[str, str | None]:
    """Per stage, the model(s) whose output was kept: for build the ones whose edits stayed (a premium
    model that was tried and produced nothing is not credited), for the others the last answer's."""
    out: dict[str, str | None] = {}
    for s in STAGES:
        kept = ctx.data(s).get("kept_models") or []
        model = ", ".join(kept) if kept else ctx.run.state.stage(s).model
        if model:
            out[s] = model
    return out


def cost_rows(ctx: StageContext) -> list[dict]:
    rows = []
    for s in STAGES:
        st = ctx.run.state.stage(s)
        if st.model or st.tokens:
            rows.append({"stage": s, "model": st.model, "tokens": st.tokens, "cost": st.cost})
    return rows


def commit_text(ctx: StageContext, user: str) -> object:
    """The model's commit message; if no model gives a usable one, one derived from the request.

    The work is built, tested and reviewed by now: a failed commit message must not throw it
    away. The fallback is said out loud (progress note and event), never silent. A budget stop
    still stops.
    """
    from anvil.routing.walker import WalkerError
    from anvil.run.stage_llm import StageExhausted
    from anvil.stages.schemas import CommitText

    try:
        return ctx.llm.ask(NAME, load_prompt(NAME), user, schema=CommitText).parsed
    except (StageExhausted, WalkerError) as exc:
        first = (exc.message.splitlines() or [""])[0]
        ctx.run.event("ship.message_fallback", error=exc.message[:1000])
        ctx.progress.note(NAME, f"no commit message from a model ({first[:100]}); derived one from the request")
        return CommitText(subject=ctx.request, body=ctx.spec().goal)


def run(ctx: StageContext) -> StageOutcome:
    from anvil.workspace import gitops

    data = ctx.data(NAME)
    spec = ctx.spec()
    test = (ctx.data("test").get("result") or {}).get("summary", "not run")
    if not data.get("sha"):
        stat = gitops.diff(ctx.worktree, ctx.base_ref, stat=True)
        review = (ctx.data("review").get("review") or {}).get("summary", "")
        user = "\n".join([section("Request", ctx.request), section("Goal", spec.goal),
                          section("Changed files", stat), section("Review summary", review),
                          section("Diff", gitops.diff(ctx.worktree, ctx.base_ref)[:30_000])])
        text = commit_text(ctx, user)
        models = stage_models(ctx)
        message = gitops.commit_message(ctx.request, subject=text.subject, body=text.body, models=models,
                                        run_id=ctx.run.id)
        # Only what the edits wrote: a file the test run left behind is not part of the change.
        edited = sorted(p for p in set(ctx.data("build").get("changed_files", [])) | set(ctx.data("test").get(
            "test_files", [])) if (ctx.worktree / p).exists())  # a resumed run may have dropped some
        sha = gitops.commit(ctx.worktree, message, paths=edited or None)
        data.update({"sha": sha, "message": message, "branch": ctx.run.state.branch})
        ctx.run.save()
    if ctx.options.get("pr") and not data.get("pr_url"):
        from anvil.workspace.github import pr_body, push_and_open_pr

        repo_cfg = ctx.config.repo
        subject = data["message"].splitlines()[0]
        body = pr_body(spec.goal + "\n\n" + "\n".join(f"- {c}" for c in spec.acceptance_criteria), test,
                       cost_rows(ctx), run_id=ctx.run.id)
        pr = push_and_open_pr(worktree=ctx.worktree, repo_root=ctx.repo_root, branch=ctx.run.state.branch,
                              base=ctx.options.get("base_branch") or ctx.base_ref, remote=ctx.options.get("remote") or repo_cfg.remote,
                              title=subject, body=body, api_url=repo_cfg.github_api_url)
        data["pr_url"] = pr.url
        ctx.run.state.pr_url = pr.url
    ctx.run.write_artifact("ship.json", json.dumps({k: data.get(k) for k in ("branch", "sha", "message", "pr_url")},
                                                   indent=2) + "\n")
    where = data.get("pr_url") or data.get("branch")
    return StageOutcome(summary=f"committed {str(data.get('sha') or 'nothing')[:10]} on {where}")
