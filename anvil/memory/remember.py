"""What a finished run teaches, read from its saved stage outputs: no model call.

- the test command that passed (kind `test_command`), from the test stage;
- the user's answers to clarify's questions (kind `clarify_answer`);
- the files of review findings that were kept and not blocking (kind `review_file`),
  anchored to the file as the run left it, so a later change to it makes the fact stale;
- every kept finding of every review round, under its rule key, for conventions
  (anvil.memory.conventions), with its fixed version when the run's final diff no longer
  has the flagged lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from anvil.stages.outputs import ClarifyOutput, ReviewOutput, StageOutput, TestOutput

if TYPE_CHECKING:
    from anvil.memory.conventions import SeenFinding
    from anvil.memory.store import Fact, MemoryStore
    from anvil.run.state import RunState


T = TypeVar("T", bound=StageOutput)


def _output(state: RunState, model: type[T]) -> T:
    return model.model_validate(state.stage(model.STAGE).data)


def remember_run(store: MemoryStore, state: RunState, run_id: str, worktree: Path) -> list[Fact]:
    """Store the deterministic lessons of a run that got through its stages; returns the facts written."""
    out: list[Fact] = []
    test = _output(state, TestOutput).result
    test_stage = state.stage("test")
    if test is not None and test.passed and test.command:
        out.append(store.add(f"The test command that worked: `{test.command}`", "test_command", root=worktree,
                             run=run_id, stage="test", model=test_stage.model or ""))
    for item in _output(state, ClarifyOutput).asked:
        answer = str(item.get("answer", "")).strip()
        if answer:
            out.append(store.add(f"The user answered a clarify question: {answer}", "clarify_answer",
                                 root=worktree, run=run_id, stage="clarify", model="user"))
    review = _output(state, ReviewOutput).review
    review_model = state.stage("review").model or ""
    for f in review.findings if review is not None else []:
        if f.severity == "blocking" or not f.file:
            continue
        out.append(store.add(f"Review accepted a finding in {f.file}: {f.message}", "review_file", root=worktree,
                             anchors=[(f.file, "")], run=run_id, stage="review", model=review_model))
    return out


MAX_FIXED = 4000  # characters of a file's final added lines kept as a finding's fixed version


def review_cases(state: RunState, run_id: str, final_diff: str) -> list[SeenFinding]:
    """Every kept finding of the run's review rounds, keyed, with its fixed version when it was fixed."""
    from anvil.memory.checks import added_lines
    from anvil.memory.conventions import SeenFinding
    from anvil.memory.rulekey import rule_key
    from anvil.stages.review import evidence_in_diff
    from anvil.stages.schemas import Finding

    added: dict[str, list[str]] = {}
    for cl in added_lines(final_diff):
        added.setdefault(cl.file, []).append(cl.text)
    out = []
    for round_ in _output(state, ReviewOutput).rounds:
        for raw in round_.findings:
            f = Finding.model_validate(raw)
            if not f.evidence.strip():
                continue
            fixed = "" if evidence_in_diff(f.evidence, final_diff) else "\n".join(added.get(f.file, []))
            out.append(SeenFinding(rule_key(f.file, f.evidence, f.message, f.rule), run_id, f.file, f.line,
                                   f.severity, f.message, f.evidence, fixed[:MAX_FIXED]))
    return out
