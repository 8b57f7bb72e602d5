"""validate: lint / type / format commands, a scope check, and the acceptance criteria against the diff.

Deterministic first: the repo's configured commands (each must exit 0), the
scope check (every changed file was planned, or is a test), and for each
acceptance criterion the exact tokens it quotes (`backticked` names, "quoted"
text, --flags) looked up in the diff's added lines. Only criteria that check
cannot settle go to a cheap model. A failing command or an unmet criterion
sends the run back to build; an out-of-scope file is reported (to the review
and the artifact), not reverted.
"""

from __future__ import annotations

import json
import re

from anvil.stages.base import StageContext, StageOutcome, command_guard, load_prompt, section

NAME = "validate"
_TOKENS = re.compile(r"`([^`]+)`|\"([^\"]{2,})\"|(?<![\w-])(--?[a-zA-Z][\w-]*)")


def criterion_tokens(criterion: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _TOKENS.finditer(criterion)]


def added_text(diff: str) -> str:
    return "\n".join(line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))


def check_criteria(criteria: list[str], diff: str) -> tuple[list[dict], list[str]]:
    """(settled checks, criteria left for the model)."""
    added = added_text(diff)
    settled, left = [], []
    for c in criteria:
        tokens = criterion_tokens(c)
        if tokens and all(t in added for t in tokens):
            settled.append({"criterion": c, "met": True, "evidence": "diff adds " + ", ".join(tokens), "by": "diff"})
        else:
            left.append(c)
    return settled, left


def scope_check(changed: list[str], plan: object | None) -> list[str]:
    from anvil.stages.plan_validator import is_test_path

    planned = set(plan.planned_paths()) if plan is not None else set()  # type: ignore[attr-defined]
    return [f for f in changed if f not in planned and not is_test_path(f)]


def run(ctx: StageContext) -> StageOutcome:
    from anvil.stages.schemas import CriteriaVerdict
    from anvil.workspace import gitops
    from anvil.workspace.testrun import default_source_roots, run_command

    repo = ctx.config.repo
    timeout = float(ctx.policy(NAME).timeout)
    roots = list(repo.source_roots) or default_source_roots(ctx.worktree)
    commands = []
    for kind, cmds in (("lint", repo.lint_commands), ("typecheck", repo.typecheck_commands),
                       ("format", repo.format_commands)):
        for cmd in cmds:
            r = run_command(cmd, ctx.worktree, timeout, source_roots=roots, **command_guard(ctx))
            ctx.data(NAME)["command_seconds"] = round(float(ctx.data(NAME).get("command_seconds", 0.0)) + r.duration, 3)
            commands.append({"kind": kind, "command": cmd, "passed": r.passed, "summary": r.summary(),
                             "report": r.report if not r.passed else ""})
    diff = gitops.diff(ctx.worktree, ctx.base_ref)
    changed = gitops.changed_files(ctx.worktree, ctx.base_ref)
    out_of_scope = scope_check(changed, ctx.plan())
    spec = ctx.spec()
    settled, left = check_criteria(spec.acceptance_criteria, diff)
    if left:
        test = (ctx.data("test").get("result") or {}).get("summary", "not run")
        user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in left)),
                          section("Test result", test), section("Diff", diff[:60_000])])
        verdict: CriteriaVerdict = ctx.llm.ask(NAME, load_prompt(NAME), user, schema=CriteriaVerdict).parsed
        by_text = {v.criterion.strip(): v for v in verdict.criteria}
        for i, c in enumerate(left):
            v = by_text.get(c.strip()) or (verdict.criteria[i] if i < len(verdict.criteria) else None)
            settled.append({"criterion": c, "met": bool(v and v.met), "evidence": v.evidence if v else "no verdict",
                            "by": "model"})
    result = {"commands": commands, "changed_files": changed, "out_of_scope": out_of_scope, "criteria": settled}
    ctx.data(NAME)["result"] = result
    ctx.run.write_artifact("validate.json", json.dumps(result, indent=2) + "\n")
    failed_cmds = [c for c in commands if not c["passed"]]
    unmet = [c for c in settled if not c["met"]]
    if failed_cmds or unmet:
        reason = "; ".join([*(c["summary"] for c in failed_cmds), *(f"criterion not met: {c['criterion']}" for c in unmet)])
        sig = "validate:" + "|".join(sorted(c["command"] for c in failed_cmds) + sorted(c["criterion"] for c in unmet))
        return StageOutcome(status="back", back_to="build", reason=reason[:500], signature=sig, summary=reason[:120])
    note = f", {len(out_of_scope)} unplanned file(s)" if out_of_scope else ""
    return StageOutcome(summary=f"{len(commands)} command(s) ok, {len(settled)} criteria met{note}")


def feedback_for_build(ctx: StageContext) -> str:
    res = ctx.data(NAME).get("result") or {}
    parts = ["Validation failed after your change. Fix it:"]
    for c in res.get("commands", []):
        if not c["passed"]:
            parts.append(f"\n{c['summary']}\n{c['report']}")
    for c in res.get("criteria", []):
        if not c["met"]:
            parts.append(f"- acceptance criterion not met: {c['criterion']} ({c['evidence']})")
    return "\n".join(parts)
