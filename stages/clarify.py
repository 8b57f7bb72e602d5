"""clarify: the request -> a spec (goal, acceptance criteria, assumptions, open questions).

On a TTY without `--yes` the open questions are asked and the answers become
assumptions; otherwise each open question is recorded as an assumption
("assumed: ..."), so a run never blocks waiting for a person who is not there.
"""

from __future__ import annotations

from anvil.stages.base import StageContext, StageOutcome, file_list, load_prompt, read_for_prompt, section
from anvil.stages.names import StageName
from anvil.stages.outputs import ClarifyOutput
from anvil.stages.schemas import Spec

NAME: StageName = "clarify"


def repo_summary(ctx: StageContext) -> str:
    parts = [section("Files", file_list(ctx.worktree, limit=120))]
    for readme in ("README.md", "README.rst", "README"):
        block = read_for_prompt(ctx.worktree, readme, limit=3000)
        if block:
            parts.append(section("README", block))
            break
    return "\n".join(parts)


def run(ctx: StageContext) -> StageOutcome:
    user = "\n".join([section("Request", ctx.request), repo_summary(ctx)])
    answer = ctx.ask(load_prompt(NAME), user, schema=Spec)
    spec: Spec = answer.parsed
    answered, assumed = [], []
    for q in spec.open_questions:
        reply = ""
        if ctx.interactive and ctx.prompt_user is not None:
            reply = ctx.prompt_user(f"clarify: {q}").strip()
        if reply:
            answered.append(f"{q} -> {reply}")
        else:
            assumed.append(f"assumed (unanswered question): {q}")
    spec = spec.model_copy(update={"assumptions": [*spec.assumptions, *answered, *assumed], "open_questions": []
                                   if (answered or assumed) else spec.open_questions})
    ctx.save(ClarifyOutput(spec=spec, asked=[{"answer": a} for a in answered]))
    ctx.artifact("clarify.md", spec.markdown())
    return StageOutcome(summary=f"{len(spec.acceptance_criteria)} acceptance criteria, "
                                f"{len(spec.assumptions)} assumptions")
