"""plan: spec + retrieved context -> a plan, checked by the deterministic plan validator.

Context: a repository small enough to fit the context budget whole is given
whole (complete, deterministic, and no index to build); a bigger one goes
through `anvil.retrieval` (ranked chunks and a repository map under the token
budget); if retrieval fails, the files the request names plus the file list.
The validator's problems go back to the planner once
(counted against the stage's retry budget); a plan still invalid after that
stops the stage.
"""

from __future__ import annotations

import json

from anvil.providers.types import Message
from anvil.run.stage_llm import StageExhausted
from anvil.stages.base import (
    StageContext,
    StageOutcome,
    file_list,
    files_block,
    load_prompt,
    mentioned_paths,
    section,
    tracked_files,
)
from anvil.stages.names import StageName
from anvil.stages.outputs import PlanOutput
from anvil.stages.plan_validator import validate_plan
from anvil.stages.schemas import Plan

NAME: StageName = "plan"
CONTEXT_TOKENS = 8000
# The repository context may take at most this share of the smallest window in the chain:
# the rest holds the instructions, the spec and the answer.
CONTEXT_SHARE_OF_WINDOW = 3


def context_budget(ctx: StageContext) -> int:
    """Tokens of repository context: CONTEXT_TOKENS, less when a model of the chain has a
    small window (a local 8k model must still fit the whole prompt and its answer)."""
    try:
        windows = [m.context_window for m in ctx.chain()]
    except Exception:  # no usable model: the call itself will say so
        return CONTEXT_TOKENS
    if not windows:
        return CONTEXT_TOKENS
    return max(1000, min(CONTEXT_TOKENS, min(windows) // CONTEXT_SHARE_OF_WINDOW))


def small_repo_context(ctx: StageContext, budget_chars: int) -> str | None:
    """Every tracked text file, when together they fit `budget_chars`; else None."""
    files, total = tracked_files(ctx.worktree), 0
    for rel in files:
        path = ctx.worktree / rel
        if path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if total > budget_chars:
            return None
    block = files_block(ctx.worktree, files, limit_total=budget_chars * 2)
    ctx.save(PlanOutput(context_files=files))
    return section("The whole repository (it fits the context budget)", block)


def gather_context(ctx: StageContext, query: str) -> str:
    budget = context_budget(ctx)
    whole = small_repo_context(ctx, budget * 4)  # ~4 characters a token
    if whole is not None:
        return whole
    try:
        from anvil.retrieval import Retriever

        # The index cache is the repository's (in its git directory, shared by all worktrees):
        # the run's worktree reuses what the checkout indexed and chunks only the files that differ.
        retriever = Retriever.open(ctx.worktree)
        pack = retriever.query(query, budget)
        ctx.save(PlanOutput(context_files=[f.path for f in pack.files[:20]]))
        return section("Repository context (ranked)", pack.render())
    except Exception as exc:  # retrieval is an aid: never the reason a run stops
        ctx.event("plan.retrieval_failed", error=str(exc)[:300])
    named = mentioned_paths(ctx.worktree, query)
    return "\n".join(
        [section("Files", file_list(ctx.worktree)), section("Named files", files_block(ctx.worktree, named))]
    )


def run(ctx: StageContext) -> StageOutcome:
    spec = ctx.spec()
    query = f"{ctx.request}\n{spec.goal}\n" + "\n".join(spec.acceptance_criteria)
    user = "\n".join([section("Request", ctx.request),
                      section("Spec", spec.model_dump_json(indent=2)),
                      gather_context(ctx, query)])
    system = load_prompt(NAME)
    answer = ctx.ask(system, user, schema=Plan)
    plan: Plan = answer.parsed
    problems = validate_plan(plan, spec, ctx.worktree)
    if problems:
        ctx.event("plan.invalid", problems=problems)
        ctx.retry(f"plan validator: {len(problems)} problem(s)")
        feedback = ("The plan has problems; fix every one and answer with the whole corrected plan:\n"
                    + "\n".join(f"- {p}" for p in problems))
        answer = ctx.ask(
            system, feedback, schema=Plan, history=[Message("user", user), Message("assistant", answer.text)]
        )
        plan = answer.parsed
        problems = validate_plan(plan, spec, ctx.worktree)
        if problems:
            ctx.artifact("plan.json", json.dumps({"plan": plan.model_dump(), "problems": problems}, indent=2))
            raise StageExhausted(NAME, "the plan is still invalid after one correction: " + "; ".join(problems[:3]),
                                 retries=ctx.llm.escalation(NAME).retries)
    ctx.save(ctx.output(PlanOutput).model_copy(update={"plan": plan}))
    ctx.artifact("plan.json", json.dumps(plan.model_dump(), indent=2) + "\n")
    return StageOutcome(summary=f"{len(plan.files_to_change)} file(s), {len(plan.steps)} step(s)")
