"""validate: lint / type / format commands against a baseline, a scope check, and the acceptance criteria.

Commands: each configured command runs on the change and (once, cached per
base sha and command, `anvil.workspace.baseline`) on the base commit; only
failures the change adds count. A command that fails on the untouched tree is
reported as pre-existing, never sent back to build.

Scope: every changed file was planned, kept by the builder with a reason, or
is a test; anything else is reported (build reverts unplanned files, so this
is a last check).

Criteria are met only by evidence: the test result (the runner's output) and
the diff go to a cheap model, which must cite the evidence; words of a
criterion appearing in the diff prove nothing about behaviour. A verdict on
an unchanged diff and criteria is reused, not paid for again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section

NAME = "validate"


def scope_check(changed: list[str], plan: Any | None, kept: dict[str, str] | None = None) -> list[str]:
    from anvil.stages.plan_validator import is_test_path

    planned = set(plan.planned_paths()) if plan is not None else set()
    planned |= set(kept or {})
    return [f for f in changed if f not in planned and not is_test_path(f)]


def configured_commands(ctx: StageContext) -> list[tuple[str, str]]:
    repo = ctx.config.repo
    return [(kind, cmd) for kind, cmds in (("lint", repo.lint_commands), ("typecheck", repo.typecheck_commands),
                                           ("format", repo.format_commands)) for cmd in cmds]


def run_commands(ctx: StageContext, commands: list[tuple[str, str]]) -> list[dict[str, Any]]:
    from anvil.workspace.baseline import baseline, judge
    from anvil.workspace.testrun import default_source_roots, run_command

    timeout = float(ctx.policy(NAME).call_timeout or ctx.policy(NAME).timeout)
    roots = list(ctx.config.repo.source_roots)
    out = []
    for kind, cmd in commands:
        r = run_command(cmd, ctx.worktree, timeout, source_roots=roots or default_source_roots(ctx.worktree))
        ctx.data(NAME)["command_seconds"] = round(float(ctx.data(NAME).get("command_seconds", 0.0)) + r.duration, 3)
        if r.passed:
            out.append({"kind": kind, "command": cmd, "passed": True, "summary": r.summary(), "report": ""})
            continue
        base = baseline(ctx.repo_root, ctx.base_ref, cmd, timeout=timeout, source_roots=roots)
        j = judge(r, base, ctx.worktree)
        if j.pre_existing:
            ctx.run.event("validate.pre_existing", command=cmd, new_lines=len(j.new_lines))
            if j.passed:
                ctx.progress.note(NAME, f"`{cmd}` fails on the base commit too: pre-existing, not the change's")
        out.append({"kind": kind, "command": cmd, "passed": j.passed, "summary": j.summary(), "report": j.report(),
                    "pre_existing": j.pre_existing, "new_failures": list(j.new_lines[:60])})
    return out


def judge_criteria(ctx: StageContext, criteria: list[str], diff: str) -> list[dict[str, Any]]:
    """Each criterion met or not, by the evidence (test output, diff); reused for an unchanged diff."""
    from anvil.stages.schemas import CriteriaVerdict

    if not criteria:
        return []
    test = ctx.data("test").get("result") or {}
    evidence = test.get("report") or test.get("summary") or "the tests were not run"
    key = hashlib.sha256(json.dumps([criteria, diff, test.get("passed")]).encode()).hexdigest()[:24]
    cache = ctx.data(NAME).setdefault("verdicts", {})
    if key in cache:
        ctx.run.event("validate.verdict_reused", key=key)
        return cache[key]
    user = "\n".join([section("Acceptance criteria", "\n".join(f"- {c}" for c in criteria)),
                      section("Test result (the runner's output)", evidence),
                      section("Diff", diff[:60_000])])
    verdict: CriteriaVerdict = ctx.llm.ask(NAME, load_prompt(NAME), user, schema=CriteriaVerdict).parsed
    by_text = {v.criterion.strip(): v for v in verdict.criteria}
    settled = []
    for i, c in enumerate(criteria):
        v = by_text.get(c.strip()) or (verdict.criteria[i] if i < len(verdict.criteria) else None)
        met = bool(v and v.met and v.evidence.strip())  # "met" without evidence is not met
        settled.append({"criterion": c, "met": met, "evidence": (v.evidence if v else "") or "no evidence given",
                        "by": "model"})
    cache[key] = settled
    return settled


def run(ctx: StageContext) -> StageOutcome:
    from anvil.workspace import gitops

    commands = run_commands(ctx, configured_commands(ctx))
    diff = gitops.diff(ctx.worktree, ctx.base_ref)
    changed = gitops.changed_files(ctx.worktree, ctx.base_ref)
    out_of_scope = scope_check(changed, ctx.plan(), ctx.data("build").get("scope_added"))
    settled = judge_criteria(ctx, ctx.spec().acceptance_criteria, diff)
    result = {"commands": commands, "changed_files": changed, "out_of_scope": out_of_scope,
              "scope_added": ctx.data("build").get("scope_added") or {}, "criteria": settled}
    ctx.data(NAME)["result"] = result
    ctx.run.write_artifact("validate.json", json.dumps(result, indent=2) + "\n")
    failed_cmds = [c for c in commands if not c["passed"]]
    unmet = [c for c in settled if not c["met"]]
    if failed_cmds or unmet:
        reason = "; ".join([*(c["summary"] for c in failed_cmds), *(f"criterion not met: {c['criterion']}" for c in unmet)])
        sig = "validate:" + "|".join(sorted(c["command"] for c in failed_cmds) + sorted(c["criterion"] for c in unmet))
        return StageOutcome(status="back", back_to="build", reason=reason[:500], signature=sig, summary=reason[:120])
    pre = sum(1 for c in commands if c.get("pre_existing"))
    note = (f", {len(out_of_scope)} unplanned file(s)" if out_of_scope else "") + \
        (f", {pre} failing on the base too (pre-existing)" if pre else "")
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


def refresh_feedback(ctx: StageContext) -> str:
    """On resume: the feedback as it stands now. Commands no longer configured are dropped, the rest run
    again on the worktree (against the baseline); criteria that were unmet stay."""
    res = ctx.data(NAME).get("result") or {}
    now = configured_commands(ctx)
    failed = {c["command"] for c in res.get("commands", []) if not c["passed"]}
    commands = run_commands(ctx, [(k, c) for k, c in now if c in failed])
    res = {**res, "commands": commands}
    ctx.data(NAME)["result"] = res
    if not any(not c["passed"] for c in commands) and not any(not c["met"] for c in res.get("criteria", [])):
        return ""
    return feedback_for_build(ctx)
