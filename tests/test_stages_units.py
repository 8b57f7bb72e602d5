"""The stages' deterministic parts: structured-answer parsing, review evidence, criteria and scope checks,
prompt markers, the scripted pipeline's stage detection."""

from __future__ import annotations

import json

import pytest

from anvil.demo.scripted_run import PLAN, SPEC, ScriptedPipeline, example_answers, stage_of, system_text
from anvil.providers.scripted.reply import RecordedRequest
from anvil.stages import review, validate
from anvil.stages.base import load_prompt
from anvil.stages.schemas import AnswerInvalid, Plan, Review, Spec, extract_json, parse_answer

DIFF = """diff --git a/src/app.py b/src/app.py
index 1..2 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,6 @@
 def main():
-    return 1
+    value = compute()
+    if value is None:
+        print("no match")
+    return value
"""


def test_parse_answer_reads_fenced_bare_and_embedded_json():
    assert parse_answer('```json\n{"goal": "g"}\n```', Spec).goal == "g"
    assert parse_answer('{"goal": "g", "extra": 1}', Spec).goal == "g"
    assert parse_answer('Sure! Here it is: {"goal": "g", "acceptance_criteria": ["a"]} hope it helps',
                        Spec).acceptance_criteria == ["a"]


def test_parse_answer_errors_are_short_and_say_where():
    with pytest.raises(AnswerInvalid, match="not a JSON object"):
        parse_answer("I think we should add a flag.", Spec)
    with pytest.raises(AnswerInvalid, match=r"files_to_change: .*at least 1") as exc:
        parse_answer(json.dumps({"files_to_change": [], "steps": [{"description": "x"}]}), Plan)
    assert "Plan schema" in str(exc.value)
    with pytest.raises(AnswerInvalid, match="severity"):
        parse_answer(json.dumps({"findings": [{"severity": "catastrophic", "message": "m"}]}), Review)
    with pytest.raises(AnswerInvalid, match="one JSON object"):
        parse_answer("[1, 2]", Spec)


def test_schemas_accept_what_models_commonly_send():
    plan = parse_answer(json.dumps({**PLAN, "files_to_read": [{"path": "a.py"}, "b.py"]}), Plan)
    assert plan.files_to_read == ["a.py", "b.py"]
    r = parse_answer(json.dumps({"findings": [{"severity": "Blocking", "message": "m"}]}), Review)
    assert r.blocking() and r.blocking()[0].severity == "blocking"
    assert Spec.model_validate(SPEC).markdown().startswith("# Spec")
    lines = parse_answer(json.dumps({"findings": [{"severity": "nit", "message": "m", "line": "12-14"},
                                                  {"severity": "nit", "message": "m", "line": "n/a"}]}), Review)
    assert [f.line for f in lines.findings] == [12, None]
    assert extract_json("```\n{\"a\": 1}\n```") == {"a": 1}


def test_review_keeps_only_findings_whose_evidence_is_in_the_diff():
    assert review.evidence_in_diff('print("no match")', DIFF)
    assert review.evidence_in_diff("+    if value is None:\n+        print(\"no match\")", DIFF)
    assert review.evidence_in_diff("    return 1", DIFF)  # a removed line is in the diff too
    assert not review.evidence_in_diff("def search_all(self):", DIFF)
    assert not review.evidence_in_diff("   ", DIFF)
    assert not review.evidence_in_diff("value = compute()\nreturn None", DIFF)  # every line must be there


def test_validate_settles_criteria_from_the_diff_and_leaves_the_rest_to_a_model():
    assert validate.criterion_tokens('The `search` command prints "no match" and accepts --all') == \
        ["search", "no match", "--all"]
    settled, left = validate.check_criteria(
        ['prints "no match" when nothing matches', "the `compute` result is returned",
         "existing behaviour is kept", "a `--json` flag exists"], DIFF)
    assert [s["criterion"] for s in settled] == ['prints "no match" when nothing matches',
                                                 "the `compute` result is returned"]
    assert left == ["existing behaviour is kept", "a `--json` flag exists"]
    assert validate.added_text(DIFF).count("return value") == 1 and "return 1" not in validate.added_text(DIFF)


def test_scope_check_allows_planned_files_and_tests_only():
    plan = Plan.model_validate(PLAN)
    changed = ["src/tasklist/cli.py", "tests/test_search.py", "tests/test_other.py", "README.md", "setup.cfg"]
    assert validate.scope_check(changed, plan) == ["README.md", "setup.cfg"]


@pytest.mark.parametrize("stage", ["clarify", "plan", "build", "test", "validate", "review", "ship"])
def test_every_prompt_starts_with_its_stage_marker(stage):
    assert load_prompt(stage).splitlines()[0] == f"anvil stage: {stage}"


def _req(body: dict, path: str = "/v1/chat/completions") -> RecordedRequest:
    raw = json.dumps(body).encode()
    return RecordedRequest("POST", path, {}, {}, raw, body)


def test_scripted_pipeline_finds_the_stage_in_every_protocol():
    marker = "anvil stage: review\n\nYou review"
    assert stage_of(_req({"model": "m", "system": [{"type": "text", "text": marker}]}, "/v1/messages")) == "review"
    assert stage_of(_req({"model": "m", "messages": [{"role": "system", "content": marker}]})) == "review"
    assert stage_of(_req({"systemInstruction": {"parts": [{"text": marker}]}},
                         "/v1beta/models/m:generateContent")) == "review"
    assert stage_of(_req({"model": "m", "messages": [{"role": "user", "content": marker}]})) is None
    assert system_text(_req({"model": "m", "system": "plain"}, "/v1/messages")) == "plain"


def test_scripted_pipeline_serves_answers_in_turn_and_the_last_repeats():
    p = ScriptedPipeline({"build": ["one", "two"]})
    req = _req({"model": "m", "stream": False, "messages": [{"role": "system", "content": "anvil stage: build"}]})
    texts = [json.loads(p(req).body)["choices"][0]["message"]["content"] for _ in range(3)]
    assert texts == ["one", "two", "two"] and p.count("build") == 3
    unknown = _req({"model": "m", "messages": [{"role": "system", "content": "anvil stage: ship"}]})
    assert p(unknown).status == 400


def test_example_answers_parse_with_the_stage_schemas():
    a = example_answers(failing_first_build=True, blocking_review=True, hostile_build=True)
    assert parse_answer(a["clarify"][0], Spec).acceptance_criteria
    assert parse_answer(a["plan"][0], Plan).files_to_change
    assert parse_answer(a["review"][0], Review).blocking() and not parse_answer(a["review"][1], Review).blocking()
    assert len(a["build"]) == 4


def test_a_block_resent_after_it_applied_counts_as_done(tmp_path):
    from types import SimpleNamespace

    from anvil.stages.build import already_applied
    from anvil.workspace.edits import EditBlock

    (tmp_path / "a.py").write_text("def f():\n    return 2\n")
    from anvil.workspace.workspace import Workspace

    ctx = SimpleNamespace(workspace=Workspace(tmp_path, "HEAD"))
    assert already_applied(ctx, EditBlock("a.py", "    return 1\n", "    return 2\n"))
    assert not already_applied(ctx, EditBlock("a.py", "    return 1\n", "    return 3\n"))
    assert not already_applied(ctx, EditBlock("../a.py", "x", "def f():"))  # outside: never "done"
    assert not already_applied(ctx, EditBlock("b.py", "", "anything"))


def test_plans_and_specs_in_the_shapes_models_actually_send():
    plan = parse_answer(json.dumps({
        "files_to_change": ["src/a.py", {"path": "tests/test_a.py", "new": True}],
        "steps": [{"description": "do it", "files": "src/a.py"}],
        "tests_to_add": [{"path": "tests/test_a.py", "test": "test_x", "description": "checks x"}],
        "risks": "none really", "rollback": ["revert", "redeploy"]}), Plan)
    assert plan.planned_paths() == ["src/a.py", "tests/test_a.py"] and plan.files_to_change[1].new
    assert plan.steps[0].files == ["src/a.py"]
    assert plan.tests_to_add == ["tests/test_a.py::test_x - checks x"]
    assert plan.risks == ["none really"] and plan.rollback == "revert; redeploy"
    spec = parse_answer(json.dumps({"goal": "g", "acceptance_criteria": "one criterion",
                                    "open_questions": [{"text": "why?"}]}), Spec)
    assert spec.acceptance_criteria == ["one criterion"] and spec.open_questions == ["why?"]


def test_plan_context_budget_shrinks_for_small_windows() -> None:
    from types import SimpleNamespace

    from anvil.stages import plan

    def ctx_with(*windows: int):
        chain = [SimpleNamespace(context_window=w) for w in windows]
        return SimpleNamespace(chain=lambda: chain)

    assert plan.context_budget(ctx_with(200_000, 128_000)) == plan.CONTEXT_TOKENS
    assert plan.context_budget(ctx_with(200_000, 8192)) == 8192 // 3  # the smallest window decides
    assert plan.context_budget(ctx_with(2048)) == 1000  # never below a useful minimum

    def no_model():
        raise RuntimeError("no usable model")

    assert plan.context_budget(SimpleNamespace(chain=no_model)) == plan.CONTEXT_TOKENS
