"""review: findings with severity and evidence quoted from the diff; blocking ones go back to build.

A finding whose evidence is not in the diff is dropped (a reviewer that cannot
point at the line is guessing). The loop back is bounded by the review stage's
retry budget (and build's own).
"""

from __future__ import annotations

from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import ReviewOutput, ReviewRound, TestOutput, ValidateOutput, ValidateResult
from anvil.stages.schemas import Finding, Review

NAME: StageName = "review"


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


def markdown(review: Review, dropped: list[dict[str, Any]]) -> str:
    out = ["# Review", "", review.summary or "", ""]
    for f in review.findings:
        where = f"{f.file}:{f.line}" if f.line else f.file
        out += [f"- **{f.severity}** `{where}`: {f.message}", f"  > {f.evidence.strip()}"]
    if not review.findings:
        out.append("No findings.")
    if dropped:
        out += ["", f"## Dropped ({len(dropped)}: evidence not in the diff)"]
        out += [f"- {d['severity']} {d['file']}: {d['message']}" for d in dropped]
    return "\n".join(out) + "\n"


def run(ctx: StageContext) -> StageOutcome:

    diff = ctx.workspace.diff()
    plan = ctx.plan()
    test = ctx.output(TestOutput).summary
    validate = ctx.output(ValidateOutput).result or ValidateResult()
    user = "\n".join([section("Spec", ctx.spec().model_dump_json(indent=2)),
                      section("Plan", plan.model_dump_json(indent=2) if plan else "(none)"),
                      section("Test result", test),
                      section("Validation", validate.model_dump_json(include={"out_of_scope", "criteria"})),
                      section("Diff", diff[:80_000])])
    review: Review = ctx.ask(load_prompt(NAME), user, schema=Review).parsed
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for f in review.findings:
        (kept if evidence_in_diff(f.evidence, diff) else dropped).append(f)
    review = review.model_copy(update={"findings": kept})
    dropped_json = [d.model_dump() for d in dropped]
    previous = ctx.output(ReviewOutput)
    rounds = [*previous.rounds, ReviewRound(findings=[f.model_dump() for f in kept], dropped=dropped_json)]
    ctx.save(ReviewOutput(review=review, rounds=rounds))
    ctx.artifact("review.md", markdown(review, dropped_json))
    if dropped:
        ctx.event("review.dropped", count=len(dropped), findings=dropped_json)
    blocking = review.blocking()
    if blocking:
        ctx.retry(f"{len(blocking)} blocking finding(s)")
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
