"""validate: lint / type / format commands against a baseline, a scope check, and the acceptance criteria.

Commands: each configured command runs on the change and (once, cached per
base sha and command, `anvil.workspace.baseline`) on the base commit; only
failures the change adds count. A command that fails on the untouched tree is
reported as pre-existing, never sent back to build.

Scope: every changed file was planned, kept by the builder with a reason, or
is a test; anything else is reported (build reverts unplanned files, so this
is a last check).

Conventions: each promoted convention's check (a regex or a tree-sitter query
the repository's review history earned, anvil.memory.conventions) runs on the
lines the change adds, without a model; a line it flags fails validate like a
lint error and goes back to build.

Criteria are met only by evidence: the test result (the runner's output) and
the diff go to a cheap model, which must cite the evidence; the words of a
criterion appearing in the diff prove nothing about behaviour. A verdict on an
unchanged diff and criteria is reused, not paid for again.
"""

from __future__ import annotations

import hashlib
import json

from anvil.stages.base import StageContext, StageOutcome, command_guard, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import (
    BuildOutput,
    CommandCheck,
    CriterionResult,
    TestOutput,
    ValidateOutput,
    ValidateResult,
)
from anvil.stages.plan_validator import is_test_path
from anvil.stages.schemas import CriteriaVerdict, Plan
from anvil.workspace.testrun import default_source_roots, run_command

NAME: StageName = "validate"


def scope_check(changed: list[str], plan: Plan | None, kept: dict[str, str] | None = None) -> list[str]:

    planned = set(plan.planned_paths()) if plan is not None else set()
    planned |= set(kept or {})
    return [f for f in changed if f not in planned and not is_test_path(f)]


def configured_commands(ctx: StageContext) -> list[tuple[str, str]]:
    repo = ctx.config.repo
    return [(kind, cmd) for kind, cmds in (("lint", repo.lint_commands), ("typecheck", repo.typecheck_commands),
                                           ("format", repo.format_commands)) for cmd in cmds]


def run_commands(ctx: StageContext, commands: list[tuple[str, str]]) -> tuple[list[CommandCheck], float]:
    """Each command on the change, judged against its result on the base commit; (checks, seconds)."""
    from anvil.workspace.baseline import baseline, judge

    timeout = float(ctx.policy.call_timeout or ctx.policy.timeout)
    roots = list(ctx.config.repo.source_roots)
    out: list[CommandCheck] = []
    seconds = 0.0
    for kind, cmd in commands:
        r = run_command(cmd, ctx.worktree, timeout, source_roots=roots or default_source_roots(ctx.worktree),
                        **command_guard(ctx))
        seconds += r.duration
        if r.passed:
            out.append(CommandCheck(kind=kind, command=cmd, passed=True, summary=r.summary()))
            continue
        base = baseline(ctx.repo_root, ctx.base_ref, cmd, timeout=timeout, source_roots=roots,
                        spare_worktrees=ctx.config.repo.git.spare_worktrees)
        j = judge(r, base, ctx.worktree)
        if j.pre_existing:
            ctx.event("validate.pre_existing", command=cmd, new_lines=len(j.new_lines))
            if j.passed:
                ctx.note(f"`{cmd}` fails on the base commit too: pre-existing, not the change's")
        out.append(CommandCheck(kind=kind, command=cmd, passed=j.passed, summary=j.summary(), report=j.report(),
                                pre_existing=j.pre_existing, new_failures=list(j.new_lines[:60])))
    return out, seconds


def convention_checks(ctx: StageContext, diff: str) -> list[CommandCheck]:
    """Each enforced convention on the change's added lines: a failed check per convention it flags."""
    if not ctx.conventions:
        return []
    from anvil.memory.checks import CheckError, added_lines, violations

    lines = added_lines(diff)
    out: list[CommandCheck] = []
    for c in ctx.conventions:
        try:
            found = violations(c.check(), lines, ctx.worktree)
        except CheckError as exc:  # a broken check is reported, never a reason to send the change back
            ctx.event("validate.convention_broken", key=c.key, error=str(exc)[:500])
            ctx.note(f"convention `{c.key}` could not run: {exc} (`anvil conventions disable {c.id}`)")
            continue
        where = [f"{v.file}:{v.line}: {v.text}" for v in found]
        summary = (f"convention {c.key}: {len(found)} added line(s) break it: {c.message}" if found
                   else f"convention {c.key}: ok")
        out.append(CommandCheck(kind="convention", command=f"convention {c.key}", passed=not found,
                                summary=summary[:500], report="\n".join(where[:60]), new_failures=where[:60]))
    if any(not c.passed for c in out):
        ctx.event("validate.conventions", failed=[c.command for c in out if not c.passed])
    return out


def judge_criteria(ctx: StageContext, criteria: list[str], diff: str) -> list[CriterionResult]:
    """Each criterion met or not, by the evidence (test output, diff); reused for an unchanged diff."""
    from anvil.stages.schemas import CriteriaVerdict

    if not criteria:
        return []
    test = ctx.output(TestOutput).result
    evidence = (test.report or test.summary) if test else "the tests were not run"
    key = hashlib.sha256(json.dumps([criteria, diff, test.passed if test else None]).encode()).hexdigest()[:24]
    cached = ctx.output(ValidateOutput).verdicts.get(key)
    if cached is not None:
        ctx.event("validate.verdict_reused", key=key)
        return cached
    user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in criteria)),
                      section("Test result (the runner's output)", evidence),
                      section("Diff", diff[:60_000])])
    verdict: CriteriaVerdict = ctx.ask(load_prompt(NAME), user, schema=CriteriaVerdict).parsed
    by_text = {v.criterion.strip(): v for v in verdict.criteria}
    settled = []
    for i, c in enumerate(criteria):
        v = by_text.get(c.strip()) or (verdict.criteria[i] if i < len(verdict.criteria) else None)
        met = bool(v and v.met and v.evidence.strip())  # "met" without evidence is not met
        settled.append(CriterionResult(criterion=c, met=met, by="model",
                                       evidence=(v.evidence if v else "") or "no evidence given"))
    ctx.save(ctx.output(ValidateOutput).model_copy(
        update={"verdicts": {**ctx.output(ValidateOutput).verdicts, key: settled}}))
    return settled


def run(ctx: StageContext) -> StageOutcome:
    previous = ctx.output(ValidateOutput)
    commands, seconds = run_commands(ctx, configured_commands(ctx))
    diff = ctx.workspace.diff()
    commands += convention_checks(ctx, diff)
    changed = ctx.workspace.changed_files()
    kept = ctx.output(BuildOutput).scope_added
    out_of_scope = scope_check(changed, ctx.plan(), kept)
    settled = judge_criteria(ctx, ctx.spec().acceptance_criteria, diff)
    result = ValidateResult(commands=commands, changed_files=changed, out_of_scope=out_of_scope,
                            scope_added=kept, criteria=settled)
    ctx.save(ctx.output(ValidateOutput).model_copy(
        update={"result": result, "command_seconds": round(previous.command_seconds + seconds, 3)}))
    ctx.artifact("validate.json", result.model_dump_json(indent=2) + "\n")
    # a command that already failed on the base commit (`anvil init` ran it) is reported, not blocking
    known_failing = ctx.config.repo.pre_existing_failures
    failed_cmds = [c for c in result.commands if not c.passed and c.command not in known_failing]
    unmet = [c for c in result.criteria if not c.met]
    if failed_cmds or unmet:
        reason = "; ".join([*(c.summary for c in failed_cmds), *(f"criterion not met: {c.criterion}" for c in unmet)])
        sig = "validate:" + "|".join(sorted(c.command for c in failed_cmds) + sorted(c.criterion for c in unmet))
        return StageOutcome(status="back", back_to="build", reason=reason[:500], signature=sig, summary=reason[:120])
    pre = sum(1 for c in commands if c.pre_existing)
    note = (f", {len(out_of_scope)} unplanned file(s)" if out_of_scope else "") + \
        (f", {pre} failing on the base too (pre-existing)" if pre else "")
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


def refresh_feedback(ctx: StageContext) -> str:
    """On resume: the feedback as it stands now. Commands no longer configured are dropped, the rest run
    again on the worktree (against the baseline); criteria that were unmet stay."""
    saved = ctx.output(ValidateOutput)
    res = saved.result or ValidateResult()
    failed = {c.command for c in res.commands if not c.passed}
    commands, _ = run_commands(ctx, [(k, c) for k, c in configured_commands(ctx) if c in failed])
    commands += [c for c in convention_checks(ctx, ctx.workspace.diff()) if c.command in failed]
    res = res.model_copy(update={"commands": commands})
    ctx.save(saved.model_copy(update={"result": res}))
    if all(c.passed for c in commands) and all(c.met for c in res.criteria):
        return ""
    return feedback_for_build(ctx)
