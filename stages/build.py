"""build: the plan (and any feedback from test or review) -> edits applied in the run's worktree.

The model answers with search/replace blocks (`anvil.workspace.edits`). Blocks
that apply stay applied; failed ones go back to the model with the closest
lines of the file, refused ones (outside the repository, into `.git/`, through
a symlink that leaves the tree) are reported and never written. Each
correction round spends one of the stage's retries (bounded by retry_budget).
"""

from __future__ import annotations

from anvil.stages.base import StageContext, StageOutcome, files_block, load_prompt, section

NAME = "build"


def build_prompt(ctx: StageContext, plan: object) -> str:
    spec = ctx.spec()
    paths = [f.path for f in plan.files_to_change] + list(plan.files_to_read)  # type: ignore[attr-defined]
    parts = [section("Request", ctx.request),
             section("Spec", spec.model_dump_json(indent=2)),
             section("Plan", plan.model_dump_json(indent=2)),  # type: ignore[attr-defined]
             section("Current files", files_block(ctx.worktree, paths))]
    if ctx.feedback:
        parts.append(section("Fix this (from the previous attempt)", ctx.feedback))
    return "\n".join(parts)


def already_applied(ctx: StageContext, block: object) -> bool:
    """A block resent on a retry whose REPLACE text is already in the file: nothing left to do."""
    from anvil.workspace.confine import EditRefused, confined_path

    replace = block.replace.strip()  # type: ignore[attr-defined]
    if not replace:
        return False
    try:
        path = confined_path(ctx.worktree, block.path)  # type: ignore[attr-defined]
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (EditRefused, OSError, UnicodeDecodeError):
        return False
    return replace in text


def run(ctx: StageContext) -> StageOutcome:
    from anvil.workspace.edits import apply_edits, parse_edit_blocks

    plan = ctx.plan()
    if plan is None:
        raise RuntimeError("build needs the plan stage's output")
    system = load_prompt(NAME)
    user = build_prompt(ctx, plan)
    history: list[tuple[str, str]] = []
    refused_all: list[dict] = []
    applied = 0
    changed: set[str] = set(ctx.data(NAME).get("changed_files", []))
    while True:
        answer = ctx.llm.ask(NAME, system, user, history=history)
        blocks = parse_edit_blocks(answer.text)
        if not blocks:
            ctx.llm.retry(NAME, f"{answer.model} answered without edit blocks")
            history += [("user", user), ("assistant", answer.text)]
            user = "Your answer had no edit blocks. Answer with search/replace blocks as described."
            continue
        report = apply_edits(ctx.worktree, blocks, harness_ok=plan.planned_paths())
        applied += len(report.applied)
        changed.update(report.changed_files)
        if report.harness:  # review is told (stages/review.py)
            harness = ctx.data(NAME).setdefault("harness_files", [])
            harness += [p for p in report.harness if p not in harness]
        for r in report.refused:
            refused_all.append({"path": r.block.path, "reason": r.reason})
            ctx.run.event("build.refused", path=r.block.path, reason=r.reason, model=answer.model)
            ctx.progress.note(NAME, f"refused edit to {r.block.path}: {r.reason}")
        ctx.run.event("build.edits", model=answer.model, applied=len(report.applied), failed=len(report.failed),
                      refused=len(report.refused), files=report.changed_files)
        report.failed = [f for f in report.failed if not already_applied(ctx, f.block)]
        if report.ok:
            break
        ctx.llm.retry(NAME, f"{len(report.failed)} failed and {len(report.refused)} refused edit block(s)")
        history += [("user", user), ("assistant", answer.text)]
        user = report.feedback()
    ctx.data(NAME)["changed_files"] = sorted(changed)
    ctx.data(NAME)["refused"] = ctx.data(NAME).get("refused", []) + refused_all
    ctx.feedback = ""
    return StageOutcome(summary=f"{applied} edit(s) applied to {len(changed)} file(s)"
                                + (f", {len(refused_all)} refused" if refused_all else ""))
