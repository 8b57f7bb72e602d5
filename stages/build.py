"""build: the plan (and any feedback from test or review) -> edits applied in the run's worktree.

What the builder is shown: every file to change (whole when it fits, else its
outline and numbered windows around the symbols and lines the plan names,
`anvil.tools.views`), the files to read, and a list of whatever was left out.

A model with the `tools` capability works in a bounded tool loop
(`StageLLM.ask_with_tools`): it reads, searches, edits and runs the tests
itself; its final answer may still carry edit blocks. Other models answer
once with search/replace blocks (`anvil.workspace.edits`). Either way every
block's outcome (exact / whitespace / failed / refused) goes to the events;
blocks that apply stay applied, failed ones go back to the model with the
closest lines; each correction round spends one of the stage's retries.

`NO CHANGES NEEDED: <reason>` ends the attempt without a retry. Files the
plan did not list are reverted unless the model, asked once, keeps them with
a reason (recorded in the plan's scope, which validate and review see).
"""

from __future__ import annotations

import re
from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section

NAME = "build"
NO_CHANGES = re.compile(r"^\W*no changes? (?:are )?needed\W*[:\-–—]?\s*(.*)", re.I | re.S)


def targets(ctx: StageContext, plan: Any) -> tuple[list[Any], list[str]]:
    """The views' targets (files to change, then to read) and the new files still to create."""
    from anvil.tools.views import Target

    out, new = [], []
    for f in plan.files_to_change:
        if f.new and not (ctx.worktree / f.path).is_file():
            new.append(f.path)
            continue
        out.append(Target(f.path, True, tuple(f.symbols), tuple(f.lines)))
    out += [Target(p, False) for p in plan.files_to_read]
    return out, new


def build_prompt(ctx: StageContext, plan: Any, *, tools: bool = False) -> str:
    from anvil.tools.views import files_view
    from anvil.workspace.workspace import Workspace

    spec = ctx.spec()
    wanted, new = targets(ctx, plan)
    views = files_view(Workspace(ctx.worktree, ctx.base_ref), wanted, tools=tools)
    ctx.data(NAME)["views"] = views.stats()
    ctx.run.event("build.views", **views.stats())
    files = views.text
    if new:
        files += "\n\nNew files to create (they do not exist yet): " + ", ".join(new)
    # Stable first (prompt caching): the request, spec, plan and files do not change between retries.
    parts = [section("Request", ctx.request),
             section("Spec", spec.model_dump_json(indent=2)),
             section("Plan", plan.model_dump_json(indent=2)),
             section("Current files", files)]
    if ctx.feedback:
        parts.append(section("Fix this (from the previous attempt)", ctx.feedback))
    return "\n".join(parts)


def already_applied(ctx: StageContext, block: Any) -> bool:
    """A block resent on a retry whose REPLACE text is already in the file: nothing left to do."""
    from anvil.workspace.confine import EditRefused, confined_path

    replace = block.replace.strip()
    if not replace:
        return False
    try:
        path = confined_path(ctx.worktree, block.path)
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (EditRefused, OSError, UnicodeDecodeError):
        return False
    return replace in text


def permissions(ctx: StageContext) -> frozenset[str]:
    from anvil.tools.permissions import stage_permissions

    return stage_permissions(NAME, ctx.policy(NAME).tools)


def test_command(ctx: StageContext) -> str | None:
    return ctx.config.repo.test_command


def enforce_scope(ctx: StageContext, plan: Any, model: str) -> list[str]:
    """Revert changed files the plan did not list, unless the model, asked once, keeps them with a reason."""
    from anvil.routing.walker import WalkerError
    from anvil.run.stage_llm import StageExhausted
    from anvil.stages.plan_validator import is_test_path
    from anvil.stages.schemas import ScopeAnswer
    from anvil.workspace.workspace import Workspace

    ws = Workspace(ctx.worktree, ctx.base_ref)
    data = ctx.data(NAME)
    added: dict[str, str] = data.setdefault("scope_added", {})
    planned = set(plan.planned_paths()) | set(added)
    extra = [f for f in ws.changed_files() if f not in planned and not is_test_path(f)]
    if not extra:
        return []
    asked = set(data.setdefault("scope_asked", []))
    ask = [f for f in extra if f not in asked]
    keep: dict[str, str] = {}
    if ask:
        user = "\n".join([section("Plan", plan.model_dump_json(indent=2)),
                          section("Files you changed that the plan does not list", "\n".join(ask)),
                          section("Their diff", ws.diff_of(ask)[:20_000])])
        try:
            answer = ctx.llm.ask(NAME, load_prompt("scope"), user, schema=ScopeAnswer)
            keep = {k.path: k.reason for k in answer.parsed.keep if k.path in ask}
        except (WalkerError, StageExhausted) as exc:  # no answer: fail closed, revert them
            ctx.run.event("build.scope_unanswered", error=exc.message[:300])
        data["scope_asked"] = sorted(asked | set(ask))
    for path, reason in keep.items():
        added[path] = reason
        ctx.run.event("build.scope_added", path=path, reason=reason, model=model)
        ctx.progress.note(NAME, f"kept unplanned {path}: {reason}")
    revert = [f for f in extra if f not in keep]
    if revert:
        ws.revert(revert)
        ctx.run.event("build.scope_reverted", paths=revert)
        ctx.progress.note(NAME, f"reverted {len(revert)} file(s) the plan did not list: {', '.join(revert)}")
        data["reverted"] = sorted(set(data.get("reverted", [])) | set(revert))
    return revert


def run(ctx: StageContext) -> StageOutcome:
    from anvil.providers.types import Message
    from anvil.tools.registry import toolbox
    from anvil.tools.write import EditLog
    from anvil.workspace.edits import apply_edits, parse_edit_blocks
    from anvil.workspace.workspace import Workspace

    plan = ctx.plan()
    if plan is None:
        raise RuntimeError("build needs the plan stage's output")
    perms = permissions(ctx)
    tools = "write" in perms and ctx.llm.can_use_tools(NAME)
    system = load_prompt(NAME) + (load_prompt("build-tools") if tools else "")
    user = build_prompt(ctx, plan, tools=tools)
    history: list[tuple[str, str]] = []
    refused_all: list[dict] = []
    applied = 0
    changed: set[str] = set(ctx.data(NAME).get("changed_files", []))
    ws = Workspace(ctx.worktree, ctx.base_ref)
    no_changes = ""
    while True:
        log = EditLog()
        if tools:
            left = ctx.llm.remaining(NAME)
            box = toolbox(NAME, ws, perms, test_command=test_command(ctx), log=log,  # type: ignore[arg-type]
                          command_timeout=min(120.0, left) if left else 120.0)
            loop = ctx.llm.ask_with_tools(NAME, system, user, box,
                                          history=[Message(r, t) for r, t in history])  # type: ignore[arg-type]
            text, model, stop = loop.text, loop.model, loop.stop
            ctx.data(NAME).setdefault("loops", []).append(
                {"model": model, "stop": stop, "turns": loop.turns, "tool_calls": loop.tool_calls})
        else:
            answer = ctx.llm.ask(NAME, system, user, history=history)
            text, model, stop = answer.text, answer.model, "answered"
        changed.update(log.changed)
        applied += sum(1 for o in log.outcomes if o["outcome"] in ("exact", "whitespace", "create"))
        m = NO_CHANGES.match(text or "")
        if m and not log.changed:
            no_changes = m.group(1).strip() or "(no reason given)"
            ctx.run.event("build.no_changes", model=model, reason=no_changes[:500])
            ctx.progress.note(NAME, f"{model}: no changes needed: {no_changes[:100]}")
            _credit(ctx, model)
            break
        blocks = parse_edit_blocks(text or "")
        if not blocks:
            if log.changed:
                ctx.run.event("build.edits", model=model, outcomes=log.outcomes, files=sorted(log.changed),
                              stop=stop)
                _credit(ctx, model)
                break
            why = (f"the tool loop of {model} {loop.reason} without changing a file" if tools and stop != "answered"
                   else f"{model} answered without edit blocks")
            ctx.llm.retry(NAME, why)
            history += [("user", user), ("assistant", text or "(no answer)")]
            user = ("Your answer had no edit blocks and changed no file. Change the files (edit blocks or the "
                    "edit tool), or answer `NO CHANGES NEEDED: <reason>` if nothing needs to change.")
            continue
        report = apply_edits(ctx.worktree, blocks)
        applied += len(report.applied)
        changed.update(report.changed_files)
        for r in report.refused:
            refused_all.append({"path": r.block.path, "reason": r.reason})
            ctx.run.event("build.refused", path=r.block.path, reason=r.reason, model=model)
            ctx.progress.note(NAME, f"refused edit to {r.block.path}: {r.reason}")
        outcomes = log.outcomes + report.outcomes()
        ctx.run.event("build.edits", model=model, applied=len(report.applied), failed=len(report.failed),
                      refused=len(report.refused), files=sorted(set(report.changed_files) | log.changed),
                      outcomes=outcomes)
        report.failed = [f for f in report.failed if not already_applied(ctx, f.block)]
        if report.ok:
            _credit(ctx, model)
            break
        ctx.llm.retry(NAME, f"{len(report.failed)} failed and {len(report.refused)} refused edit block(s)")
        history += [("user", user), ("assistant", text)]
        user = report.feedback()
    reverted = enforce_scope(ctx, plan, model)
    changed = {f for f in changed if f not in reverted and (ctx.worktree / f).exists()} | \
        {f for f in changed if f not in reverted and f in ws.changed_files()}
    ctx.data(NAME)["changed_files"] = sorted(changed)
    ctx.data(NAME)["refused"] = ctx.data(NAME).get("refused", []) + refused_all
    ctx.data(NAME)["no_changes"] = no_changes
    ctx.feedback = ""
    if no_changes:
        return StageOutcome(summary=f"no changes needed: {no_changes[:100]}")
    return StageOutcome(summary=f"{applied} edit(s) applied to {len(changed)} file(s)"
                                + (f", {len(refused_all)} refused" if refused_all else "")
                                + (f", {len(reverted)} unplanned reverted" if reverted else ""))


def _credit(ctx: StageContext, model: str) -> None:
    """The model whose output was kept (the commit trailer names it, not every model that tried)."""
    kept = ctx.data(NAME).setdefault("kept_models", [])
    if model and model not in kept:
        kept.append(model)
