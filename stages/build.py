"""build: the plan (and any feedback from test or review) -> edits applied in the run's worktree.

What the builder is shown: every file to change (whole when it fits, else its
outline and numbered windows around the symbols and lines the plan names,
`anvil.tools.views`), the files to read, and a list of whatever was left out.

A model with the `tools` capability works in a bounded tool loop
(`ctx.ask_with_tools`): it reads, searches, edits and runs the tests itself;
its final answer may still carry edit blocks. Other models answer once with
search/replace blocks (`anvil.workspace.edits`). Either way every block's
outcome (exact / whitespace / failed / refused) goes to the events; blocks that
apply stay applied, failed ones go back to the model with the closest lines;
each correction round spends one of the stage's retries.

`NO CHANGES NEEDED: <reason>` ends the attempt without a retry. Files the
plan did not list are reverted unless the model, asked once, keeps them with
a reason (recorded in the build output, which validate and review see).
"""

from __future__ import annotations

import re

from anvil.providers.types import Message
from anvil.stages.base import StageContext, StageFailed, StageOutcome, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import BuildOutput, RefusedPath, ToolLoopRecord
from anvil.stages.schemas import Plan
from anvil.tools.views import Target, ViewSet, files_view
from anvil.tools.write import EditLog
from anvil.workspace.editblocks import EditBlock
from anvil.workspace.edits import parse_edit_blocks
from anvil.workspace.workspace import WorkspaceError

NAME: StageName = "build"
NO_CHANGES = re.compile(r"^\W*no changes? (?:are )?needed\W*?[:\-–—]?\s*(.*)", re.I | re.S)


def targets(ctx: StageContext, plan: Plan) -> tuple[list[Target], list[str]]:
    """The views' targets (files to change, then to read) and the new files still to create."""
    out, new = [], []
    for f in plan.files_to_change:
        if f.new and not ctx.workspace.exists(f.path):
            new.append(f.path)
            continue
        out.append(Target(f.path, True, tuple(f.symbols), tuple(f.lines)))
    out += [Target(p, False) for p in plan.files_to_read]
    return out, new


def file_views(ctx: StageContext, plan: Plan, *, tools: bool) -> tuple[ViewSet, list[str]]:
    wanted, new = targets(ctx, plan)
    return files_view(ctx.workspace, wanted, tools=tools), new


def build_prompt(ctx: StageContext, plan: Plan, *, tools: bool = False) -> str:
    views, new = file_views(ctx, plan, tools=tools)
    ctx.event("build.views", **views.stats())
    files = views.text
    if new:
        files += "\n\nNew files to create (they do not exist yet): " + ", ".join(new)
    # Stable first (prompt caching): request, spec, plan and files do not change between retries.
    parts = [section("Request", ctx.request),
             section("Spec", ctx.spec().model_dump_json(indent=2)),
             section("Plan", plan.model_dump_json(indent=2)),
             section("Current files", files)]
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


def enforce_scope(ctx: StageContext, plan: Plan, out: BuildOutput, model: str) -> list[str]:
    """Revert changed files the plan did not list, unless the model, asked once, keeps them with a reason."""
    from anvil.routing.walker import WalkerError
    from anvil.stages.plan_validator import is_test_path
    from anvil.stages.schemas import ScopeAnswer

    planned = set(plan.planned_paths()) | set(out.scope_added)
    extra = [f for f in ctx.workspace.changed_files() if f not in planned and not is_test_path(f)]
    if not extra:
        return []
    ask = [f for f in extra if f not in out.scope_asked]
    keep: dict[str, str] = {}
    if ask:
        user = "\n".join([section("Plan", plan.model_dump_json(indent=2)),
                          section("Files you changed that the plan does not list", "\n".join(ask)),
                          section("Their diff", ctx.workspace.diff_of(ask)[:20_000])])
        try:
            answer = ctx.ask(load_prompt("scope"), user, schema=ScopeAnswer)
            keep = {k.path: k.reason for k in answer.parsed.keep if k.path in ask}
        except (WalkerError, StageFailed) as exc:  # no answer: fail closed, revert them
            ctx.event("build.scope_unanswered", error=exc.message[:300])
        out.scope_asked = sorted(set(out.scope_asked) | set(ask))
    for path, reason in keep.items():
        out.scope_added[path] = reason
        ctx.event("build.scope_added", path=path, reason=reason, model=model)
        ctx.note(f"kept unplanned {path}: {reason}")
    revert = [f for f in extra if f not in keep]
    if revert:
        ctx.workspace.revert(revert)
        ctx.event("build.scope_reverted", paths=revert)
        ctx.note(f"reverted {len(revert)} file(s) the plan did not list: {', '.join(revert)}")
        out.reverted = sorted(set(out.reverted) | set(revert))
    return revert


def _credit(out: BuildOutput, model: str) -> None:
    """The model whose output was kept (the commit trailer names it, not every model that tried)."""
    if model and model not in out.kept_models:
        out.kept_models.append(model)


def run(ctx: StageContext) -> StageOutcome:
    plan = ctx.plan()
    if plan is None:
        raise StageFailed(NAME, "build needs the plan stage's output (resume from plan)")
    tools = "write" in ctx.permissions() and ctx.can_use_tools()
    system = load_prompt(NAME) + (load_prompt("build-tools") if tools else "")
    user = build_prompt(ctx, plan, tools=tools)
    history: list[Message] = []
    refused_all: list[RefusedPath] = []
    applied = 0
    out = ctx.output(BuildOutput)
    out.views = file_views(ctx, plan, tools=tools)[0].stats()
    changed: set[str] = set(out.changed_files)
    harness: set[str] = set(out.harness_files)
    no_changes = ""
    model = ""
    while True:
        log = EditLog()
        if tools:
            loop = ctx.ask_with_tools(system, user, ctx.toolbox(log=log), history=history)
            text, model, stop, why_stopped = loop.text, loop.model, loop.stop, loop.reason
            out.loops.append(ToolLoopRecord(model=model, stop=stop, turns=loop.turns, tool_calls=loop.tool_calls))
        else:
            answer = ctx.ask(system, user, history=history)
            text, model, stop, why_stopped = answer.text, answer.model, "answered", ""
        changed.update(log.changed)
        applied += sum(1 for o in log.outcomes if o["outcome"] in ("exact", "whitespace", "create"))
        m = NO_CHANGES.match(text or "")
        if m and not log.changed:
            no_changes = m.group(1).strip() or "(no reason given)"
            ctx.event("build.no_changes", model=model, reason=no_changes[:500])
            ctx.note(f"{model}: no changes needed: {no_changes[:100]}")
            _credit(out, model)
            break
        blocks = parse_edit_blocks(text or "")
        if not blocks:
            if log.changed:
                ctx.event("build.edits", model=model, outcomes=log.outcomes, files=sorted(log.changed), stop=stop)
                _credit(out, model)
                break
            why = (f"the tool loop of {model} {why_stopped} without changing a file" if stop != "answered"
                   else f"{model} answered without edit blocks")
            ctx.retry(why)
            history += [Message("user", user), Message("assistant", text or "(no answer)")]
            user = ("Your answer had no edit blocks and changed no file. Change the files (edit blocks or the "
                    "edit tool), or answer `NO CHANGES NEEDED: <reason>` if nothing needs to change.")
            continue
        report = ctx.workspace.apply(blocks, harness_ok=plan.planned_paths())
        applied += len(report.applied)
        changed.update(report.changed_files)
        harness.update(report.harness)
        for r in report.refused:
            refused_all.append(RefusedPath(path=r.block.path, reason=r.reason))
            ctx.event("build.refused", path=r.block.path, reason=r.reason, model=model)
            ctx.note(f"refused edit to {r.block.path}: {r.reason}")
        ctx.event("build.edits", model=model, applied=len(report.applied), failed=len(report.failed),
                  refused=len(report.refused), files=sorted(set(report.changed_files) | log.changed),
                  outcomes=log.outcomes + report.outcomes())
        report.failed = [f for f in report.failed if not already_applied(ctx, f.block)]
        if report.ok:
            _credit(out, model)
            break
        ctx.retry(f"{len(report.failed)} failed and {len(report.refused)} refused edit block(s)")
        history += [Message("user", user), Message("assistant", text)]
        user = report.feedback()
    reverted = enforce_scope(ctx, plan, out, model)
    now = set(ctx.workspace.changed_files())
    out.changed_files = sorted(f for f in changed if f in now and f not in reverted)
    out.refused = [*out.refused, *refused_all]
    out.no_changes = no_changes
    out.harness_files = sorted(harness)
    ctx.save(out)
    ctx.feedback = ""
    if no_changes:
        return StageOutcome(summary=f"no changes needed: {no_changes[:100]}")
    return StageOutcome(summary=f"{applied} edit(s) applied to {len(out.changed_files)} file(s)"
                                + (f", {len(refused_all)} refused" if refused_all else "")
                                + (f", {len(reverted)} unplanned reverted" if reverted else ""))
