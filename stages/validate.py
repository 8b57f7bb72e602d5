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

import re
from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import CommandCheck, CriterionResult, TestOutput, ValidateOutput, ValidateResult
from anvil.stages.plan_validator import is_test_path
from anvil.stages.schemas import CriteriaVerdict, Plan
from anvil.workspace.testrun import default_source_roots, run_command

NAME: StageName = "validate"
_TOKENS = re.compile(r"`([^`]+)`|\"([^\"]{2,})\"|(?<![\w-])(--?[a-zA-Z][\w-]*)")


def criterion_tokens(criterion: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _TOKENS.finditer(criterion)]


def added_text(diff: str) -> str:
    return "\n".join(line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))


def check_criteria(criteria: list[str], diff: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(settled checks, criteria left for the model)."""
    added = added_text(diff)
    settled: list[dict[str, Any]] = []
    left: list[str] = []
    for c in criteria:
        tokens = criterion_tokens(c)
        if tokens and all(t in added for t in tokens):
            settled.append({"criterion": c, "met": True, "evidence": "diff adds " + ", ".join(tokens), "by": "diff"})
        else:
            left.append(c)
    return settled, left


def scope_check(changed: list[str], plan: Plan | None) -> list[str]:
    planned = set(plan.planned_paths()) if plan is not None else set()
    return [f for f in changed if f not in planned and not is_test_path(f)]


def run(ctx: StageContext) -> StageOutcome:
    repo = ctx.config.repo
    timeout = float(ctx.policy.timeout)
    roots = list(repo.source_roots) or default_source_roots(ctx.worktree)
    commands: list[CommandCheck] = []
    seconds = ctx.output(ValidateOutput).command_seconds
    for kind, cmds in (("lint", repo.lint_commands), ("typecheck", repo.typecheck_commands),
                       ("format", repo.format_commands)):
        for cmd in cmds:
            r = run_command(cmd, ctx.worktree, timeout, source_roots=roots)
            seconds = round(seconds + r.duration, 3)
            commands.append(CommandCheck(kind=kind, command=cmd, passed=r.passed, summary=r.summary(),
                                         report=r.report if not r.passed else ""))
    diff = ctx.workspace.diff()
    changed = ctx.workspace.changed_files()
    out_of_scope = scope_check(changed, ctx.plan())
    spec = ctx.spec()
    settled, left = check_criteria(spec.acceptance_criteria, diff)
    if left:
        test = ctx.output(TestOutput).summary
        user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in left)),
                          section("Test result", test), section("Diff", diff[:60_000])])
        verdict: CriteriaVerdict = ctx.ask(load_prompt(NAME), user, schema=CriteriaVerdict).parsed
        by_text = {v.criterion.strip(): v for v in verdict.criteria}
        for i, c in enumerate(left):
            v = by_text.get(c.strip()) or (verdict.criteria[i] if i < len(verdict.criteria) else None)
            settled.append({"criterion": c, "met": bool(v and v.met), "evidence": v.evidence if v else "no verdict",
                            "by": "model"})
    result = ValidateResult(commands=commands, changed_files=changed, out_of_scope=out_of_scope,
                            criteria=[CriterionResult(**c) for c in settled])
    ctx.save(ValidateOutput(result=result, command_seconds=seconds))
    ctx.artifact("validate.json", result.model_dump_json(indent=2) + "\n")
    failed_cmds = [c for c in result.commands if not c.passed]
    unmet = [c for c in result.criteria if not c.met]
    if failed_cmds or unmet:
        reason = "; ".join([*(c.summary for c in failed_cmds), *(f"criterion not met: {c.criterion}" for c in unmet)])
        sig = "validate:" + "|".join(sorted(c.command for c in failed_cmds) + sorted(c.criterion for c in unmet))
        return StageOutcome(status="back", back_to="build", reason=reason[:500], signature=sig, summary=reason[:120])
    note = f", {len(out_of_scope)} unplanned file(s)" if out_of_scope else ""
    return StageOutcome(summary=f"{len(commands)} command(s) ok, {len(settled)} criteria met{note}")


def feedback_for_build(ctx: StageContext) -> str:
    res = ctx.output(ValidateOutput).result or ValidateResult()
    parts = ["Validation failed after your change. Fix it:"]
    for c in res.commands:
        if not c.passed:
            parts.append(f"\n{c.summary}\n{c.report}")
    for r in res.criteria:
        if not r.met:
            parts.append(f"- acceptance criterion not met: {r.criterion} ({r.evidence})")
    return "\n".join(parts)
