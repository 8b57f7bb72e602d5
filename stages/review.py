"""review: findings with severity and evidence quoted from the diff; blocking ones go back to build.

A finding whose evidence is not in the diff is dropped (a reviewer that cannot
point at the line is guessing). The loop back is bounded by the review stage's
retry budget (and build's own).
"""

from __future__ import annotations

import json
from typing import Any

from anvil.stages.base import StageContext, StageOutcome, load_prompt, section

NAME = "review"
REVIEW_CONTEXT = 12
TOOLS_NOTE = ("\n\nYou may read more of the repository with the tools (read_file, outline, search, list_dir) "
              "before you answer; you cannot change files or run commands. End with the JSON object.")


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


def markdown(review: object, dropped: list[dict]) -> str:
    out = ["# Review", "", review.summary or "", ""]  # type: ignore[attr-defined]
    for f in review.findings:  # type: ignore[attr-defined]
        where = f"{f.file}:{f.line}" if f.line else f.file
        out += [f"- **{f.severity}** `{where}`: {f.message}", f"  > {f.evidence.strip()}"]
    if not review.findings:  # type: ignore[attr-defined]
        out.append("No findings.")
    if dropped:
        out += ["", f"## Dropped ({len(dropped)}: evidence not in the diff)"]
        out += [f"- {d['severity']} {d['file']}: {d['message']}" for d in dropped]
    return "\n".join(out) + "\n"


def ask_review(ctx: StageContext, system: str, user: str) -> Any:
    """The review, from a read-only tool loop when the model speaks tools (it may read more of the
    code), else one structured answer."""
    from anvil.stages.schemas import AnswerInvalid, Review, parse_answer
    from anvil.tools.permissions import stage_permissions
    from anvil.tools.registry import toolbox
    from anvil.workspace.workspace import Workspace

    perms = stage_permissions(NAME, ctx.policy(NAME).tools)
    if not perms or not ctx.llm.can_use_tools(NAME):
        return ctx.llm.ask(NAME, system, user, schema=Review).parsed
    box = toolbox(NAME, Workspace(ctx.worktree, ctx.base_ref), perms)  # type: ignore[arg-type]
    loop = ctx.llm.ask_with_tools(NAME, system + TOOLS_NOTE, user, box)
    try:
        return parse_answer(loop.text, Review)
    except AnswerInvalid as exc:
        ctx.run.event("stage.invalid_answer", stage=NAME, model=loop.model, error=str(exc)[:500])
        fix = f"That answer was not valid: {exc}\n\nAnswer again with the complete JSON object only."
        return ctx.llm.ask(NAME, system, fix, schema=Review,
                           history=[("user", user), ("assistant", loop.text or "(no answer)")]).parsed


def run(ctx: StageContext) -> StageOutcome:
    from anvil.workspace import gitops

    # Lines around each hunk; a finding may quote any of them as evidence.
    diff = gitops.diff(ctx.worktree, ctx.base_ref, context=REVIEW_CONTEXT)
    shown = diff
    plan = ctx.plan()
    test = (ctx.data("test").get("result") or {}).get("summary", "not run")
    validate = ctx.data("validate").get("result") or {}
    user = "\n".join([section("Spec", ctx.spec().model_dump_json(indent=2)),
                      section("Plan", plan.model_dump_json(indent=2) if plan else "(none)"),
                      section("Test result", test),
                      section("Validation", json.dumps({k: validate.get(k) for k in
                                                        ("out_of_scope", "scope_added", "criteria")})),
                      section(f"Diff ({REVIEW_CONTEXT} lines of context around each change)", shown[:80_000])])
    review = ask_review(ctx, load_prompt(NAME), user)
    kept, dropped = [], []
    for f in review.findings:
        (kept if evidence_in_diff(f.evidence, diff) else dropped).append(f)
    review = review.model_copy(update={"findings": kept})
    dropped_json = [d.model_dump() for d in dropped]
    rounds = ctx.data(NAME).setdefault("rounds", [])
    rounds.append({"findings": [f.model_dump() for f in kept], "dropped": dropped_json})
    ctx.data(NAME)["review"] = review.model_dump()
    ctx.run.write_artifact("review.md", markdown(review, dropped_json))
    if dropped:
        ctx.run.event("review.dropped", count=len(dropped), findings=dropped_json)
    blocking = review.blocking()
    if blocking:
        # The loop back spends one of build's retries (the runner's), not review's as well.
        reason = "; ".join(f"{f.file}: {f.message}" for f in blocking)
        sig = "review:" + "|".join(sorted(_norm(f.evidence) for f in blocking))
        return StageOutcome(status="back", back_to="build", reason=f"review: {reason}"[:500], signature=sig,
                            summary=f"{len(blocking)} blocking finding(s)")
    return StageOutcome(summary=f"{len(kept)} finding(s), none blocking" + (f"; {len(dropped)} dropped" if dropped else ""))


def feedback_for_build(ctx: StageContext) -> str:
    review = ctx.data(NAME).get("review") or {}
    parts = ["The reviewer found blocking problems in your change. Fix each one:"]
    for f in review.get("findings", []):
        if f["severity"] == "blocking":
            parts.append(f"- {f['file']}:{f.get('line') or ''} {f['message']}\n  evidence: {f['evidence']}")
    return "\n".join(parts)
