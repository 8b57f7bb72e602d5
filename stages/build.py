"""build: the plan (and any feedback from test or review) -> edits applied in the run's worktree.

The model answers with search/replace blocks (`anvil.workspace.edits`). Blocks
that apply stay applied; failed ones go back to the model with the closest
lines of the file, refused ones (outside the repository, into `.git/`, through
a symlink that leaves the tree) are reported and never written. Each
correction round spends one of the stage's retries (bounded by retry_budget).
"""

from __future__ import annotations

from anvil.providers.types import Message
from anvil.stages.base import StageContext, StageFailed, StageOutcome, files_block, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import BuildOutput, RefusedPath
from anvil.stages.schemas import Plan
from anvil.workspace.editblocks import EditBlock
from anvil.workspace.edits import parse_edit_blocks
from anvil.workspace.workspace import WorkspaceError

NAME: StageName = "build"


def build_prompt(ctx: StageContext, plan: Plan) -> str:
    spec = ctx.spec()
    paths = [f.path for f in plan.files_to_change] + list(plan.files_to_read)
    parts = [section("Request", ctx.request),
             section("Spec", spec.model_dump_json(indent=2)),
             section("Plan", plan.model_dump_json(indent=2)),
             section("Current files", files_block(ctx.worktree, paths))]
    if ctx.feedback:
        parts.append(section("Fix this (from the previous attempt)", ctx.feedback))
    return "\n".join(parts)


def already_applied(ctx: StageContext, block: EditBlock) -> bool:
    """A block resent on a retry whose REPLACE text is already in the file: nothing left to do."""
    replace = block.replace.strip()
    if not replace:
        return False
    try:
        text = ctx.workspace.read_text(block.path) if ctx.workspace.exists(block.path) else ""
    except WorkspaceError:
        return False
    return replace in text


def run(ctx: StageContext) -> StageOutcome:
    plan = ctx.plan()
    if plan is None:
        raise StageFailed(NAME, "build needs the plan stage's output (resume from plan)")
    system = load_prompt(NAME)
    user = build_prompt(ctx, plan)
    history: list[Message] = []
    refused_all: list[RefusedPath] = []
    applied = 0
    previous = ctx.output(BuildOutput)
    changed: set[str] = set(previous.changed_files)
    while True:
        answer = ctx.ask(system, user, history=history)
        blocks = parse_edit_blocks(answer.text)
        if not blocks:
            ctx.retry(f"{answer.model} answered without edit blocks")
            history += [Message("user", user), Message("assistant", answer.text)]
            user = "Your answer had no edit blocks. Answer with search/replace blocks as described."
            continue
        report = ctx.workspace.apply(blocks)
        applied += len(report.applied)
        changed.update(report.changed_files)
        for r in report.refused:
            refused_all.append(RefusedPath(path=r.block.path, reason=r.reason))
            ctx.event("build.refused", path=r.block.path, reason=r.reason, model=answer.model)
            ctx.note(f"refused edit to {r.block.path}: {r.reason}")
        ctx.event("build.edits", model=answer.model, applied=len(report.applied), failed=len(report.failed),
                      refused=len(report.refused), files=report.changed_files)
        report.failed = [f for f in report.failed if not already_applied(ctx, f.block)]
        if report.ok:
            break
        ctx.retry(f"{len(report.failed)} failed and {len(report.refused)} refused edit block(s)")
        history += [Message("user", user), Message("assistant", answer.text)]
        user = report.feedback()
    ctx.save(BuildOutput(changed_files=sorted(changed), refused=[*previous.refused, *refused_all]))
    ctx.feedback = ""
    return StageOutcome(summary=f"{applied} edit(s) applied to {len(changed)} file(s)"
                                + (f", {len(refused_all)} refused" if refused_all else ""))
