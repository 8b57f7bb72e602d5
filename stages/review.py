"""review: findings with severity and evidence quoted from the diff; blocking ones go back to build.

The reviewer sees the diff with the lines around each hunk and, when its
model speaks tools, may read more of the repository (read-only tools: it
cannot edit or run). A finding whose evidence is not in the diff is dropped (a
reviewer that cannot point at the line is guessing). A blocking finding sends
the run back to build and spends one of build's retries (the runner's), not
review's as well.

The repository's enforced conventions (anvil.memory.conventions) are listed
for the reviewer as already checked by validate; a finding with the rule key
of one is dropped all the same (validate has passed it: the check is the
judge, and a repeated complaint would cost a build round for nothing).
"""

from __future__ import annotations

from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import BuildOutput, ReviewOutput, ReviewRound, TestOutput, ValidateOutput, ValidateResult
from anvil.stages.schemas import Finding, Review

NAME: StageName = "review"
REVIEW_CONTEXT = 12  # lines of context around each hunk of the diff the reviewer sees


def _norm(text: str) -> str:
    return " ".join(text.split())


def diff_lines(diff: str) -> list[str]:
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "diff --git", "index ", "@@")):
            continue
        out.append(line[1:] if line[:1] in "+- " else line)
    return out


def evidence_in_diff(evidence: str, diff: str) -> bool:
    """Every non-empty line of the evidence appears (whitespace-normalised) in the diff."""
    lines = [_norm(x.lstrip("+- ")) for x in evidence.strip().splitlines() if x.strip()]
    if not lines:
        return False
    hay = _norm("\n".join(diff_lines(diff)))
    return all(line in hay for line in lines)


def markdown(review: Review, dropped: list[dict[str, Any]], enforced: list[dict[str, Any]] | None = None) -> str:
    out = ["# Review", "", review.summary or "", ""]
    for f in review.findings:
        where = f"{f.file}:{f.line}" if f.line else f.file
        out += [f"- **{f.severity}** `{where}`: {f.message}", f"  > {f.evidence.strip()}"]
    if not review.findings:
        out.append("No findings.")
    if dropped:
        out += ["", f"## Dropped ({len(dropped)}: evidence not in the diff)"]
        out += [f"- {d['severity']} {d['file']}: {d['message']}" for d in dropped]
    if enforced:
        out += ["", f"## Dropped ({len(enforced)}: enforced by a convention validate runs)"]
        out += [f"- {d['severity']} {d['file']}: {d['message']}" for d in enforced]
    return "\n".join(out) + "\n"


def harness_section(ctx: StageContext) -> list[str]:
    """What review must know: the change edits the files that decide whether the tests pass."""
    files = ctx.output(BuildOutput).harness_files
    if not files:
        return []
    return [section("Test-harness files changed", "This change edits files that control how the tests run "
                    "(the plan named them). Check that they do not skip, deselect or fake tests:\n"
                    + "\n".join(f"- {f}" for f in files))]


def conventions_section(ctx: StageContext) -> list[str]:
    if not ctx.conventions:
        return []
    return [section("Conventions already enforced", "Validate checks these on every added line without a "
                    "reviewer, and this change passed them. Do not report them:\n"
                    + "\n".join(f"- {c.key}: {c.message}" for c in ctx.conventions))]


def split_enforced(ctx: StageContext, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(findings to keep, findings about an enforced convention)."""
    from anvil.memory.rulekey import rule_key

    keys = {c.key for c in ctx.conventions}
    if not keys:
        return findings, []
    keep: list[Finding] = []
    enforced: list[Finding] = []
    for f in findings:
        (enforced if rule_key(f.file, f.evidence, f.message, f.rule) in keys else keep).append(f)
    return keep, enforced


def run(ctx: StageContext) -> StageOutcome:
    # Lines around each hunk; a finding may quote any of them as evidence.
    diff = ctx.workspace.diff(context=REVIEW_CONTEXT)
    plan = ctx.plan()
    test = ctx.output(TestOutput).summary
    validate = ctx.output(ValidateOutput).result or ValidateResult()
    user = "\n".join([section("Spec", ctx.spec().model_dump_json(indent=2)),
                      section("Plan", plan.model_dump_json(indent=2) if plan else "(none)"),
                      section("Test result", test),
                      section("Validation", validate.model_dump_json(include={"out_of_scope", "scope_added",
                                                                              "criteria"})),
                      *harness_section(ctx),
                      *conventions_section(ctx),
                      section(f"Diff ({REVIEW_CONTEXT} lines of context around each change)", diff[:80_000])])
    _, review = ctx.ask_reading(load_prompt(NAME), user, Review)
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for f in review.findings:
        (kept if evidence_in_diff(f.evidence, diff) else dropped).append(f)
    kept, enforced = split_enforced(ctx, kept)
    review = review.model_copy(update={"findings": kept})
    dropped_json = [d.model_dump() for d in dropped]
    enforced_json = [d.model_dump() for d in enforced]
    previous = ctx.output(ReviewOutput)
    rounds = [*previous.rounds, ReviewRound(findings=[f.model_dump() for f in kept], dropped=dropped_json,
                                            enforced=enforced_json)]
    ctx.save(ReviewOutput(review=review, rounds=rounds))
    ctx.artifact("review.md", markdown(review, dropped_json, enforced_json))
    if dropped:
        ctx.event("review.dropped", count=len(dropped), findings=dropped_json)
    if enforced:
        ctx.event("review.enforced_dropped", count=len(enforced), findings=enforced_json)
    blocking = review.blocking()
    if blocking:
        reason = "; ".join(f"{f.file}: {f.message}" for f in blocking)
        sig = "review:" + "|".join(sorted(_norm(f.evidence) for f in blocking))
        return StageOutcome(status="back", back_to="build", reason=f"review: {reason}"[:500], signature=sig,
                            summary=f"{len(blocking)} blocking finding(s)")
    return StageOutcome(
        summary=f"{len(kept)} finding(s), none blocking" + (f"; {len(dropped)} dropped" if dropped else "")
    )


def feedback_for_build(ctx: StageContext) -> str:
    review = ctx.output(ReviewOutput).review
    parts = ["The reviewer found blocking problems in your change. Fix each one:"]
    for f in review.blocking() if review else []:
        parts.append(f"- {f.file}:{f.line or ''} {f.message}\n  evidence: {f.evidence}")
    return "\n".join(parts)
