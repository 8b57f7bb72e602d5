"""The stages' own correction loops, in-process with real adapters, git and test command: the plan
validator's findings going back to the planner, failed edit blocks explained to the builder, a
failing lint command sending the run back to build."""

from __future__ import annotations

import json
import sys

import pytest

from anvil.demo.scripted_run import (
    BUILD_FIX_REVIEW,
    CLI_EDITS,
    GOOD_MATCH,
    PLAN,
    ScriptedPipeline,
    _store_edit,
    example_answers,
)
from tests.e2e_helpers import InProcess, git

pytestmark = pytest.mark.e2e


@pytest.fixture
def ip(tmp_path, monkeypatch):
    lint = (f"{sys.executable} -c \\\"import sys; "
            f"sys.exit('match(es)' not in open('src/tasklist/cli.py').read())\\\"")
    env = InProcess(tmp_path, monkeypatch, repo_config=f'lint_commands: ["{lint}"]\n')
    yield env
    env.close()


def test_plan_validator_findings_go_back_to_the_planner_once(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    try:
        bad = {**PLAN, "files_to_change": [{"path": "src/tasklist/nope.py", "reason": "x", "new": False},
                                           *PLAN["files_to_change"]]}
        answers = example_answers()
        answers["plan"] = [json.dumps(bad), json.dumps(PLAN)]
        runner = ip.runner(ScriptedPipeline(answers))
        runner.execute()
        plans = ip.requests("plan")
        assert len(plans) == 2 and "src/tasklist/nope.py does not exist" in plans[1]
        st = runner.run.state
        assert st.status == "done" and st.escalation["plan"]["retries"] == 1
        assert [e["kind"] for e in runner.run.events()].count("plan.invalid") == 1
    finally:
        ip.close()


def test_failed_edit_blocks_go_back_with_the_closest_lines(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    try:
        wrong = _store_edit(GOOD_MATCH).replace(
            "<<<<<<< SEARCH\n    def query(self, *, include_done: bool = False, tag: str | None = None)",
            "<<<<<<< SEARCH\n    def lookup(self, done=False, tags=()) -> dict[str, Task]:\n        pass\n"
            "    def query(self, *, include_done: bool = False, tag: str | None = None)", 1)
        assert wrong != _store_edit(GOOD_MATCH)
        answers = example_answers()
        answers["build"] = ["Edits.\n\n" + CLI_EDITS + "\n" + wrong, "Fixed.\n\n" + _store_edit(GOOD_MATCH)]
        runner = ip.runner(ScriptedPipeline(answers))
        runner.execute()
        second = ip.requests("build")[1]
        assert "FAILED" in second and "closest lines in src/tasklist/store.py" in second
        assert "2 of 3 edit block(s) applied" in second
        assert runner.run.state.status == "done"
        assert "def search(self, word" in git(["show", f"{runner.run.state.branch}:src/tasklist/store.py"], ip.repo)
    finally:
        ip.close()


def test_failing_lint_command_sends_the_run_back_to_build(ip):
    answers = example_answers()
    answers["build"] = [answers["build"][0], BUILD_FIX_REVIEW]
    runner = ip.runner(ScriptedPipeline(answers))
    runner.execute()
    st = runner.run.state
    assert st.status == "done"
    back = [e for e in runner.run.events() if e["kind"] == "stage.back"]
    assert [(b["stage"], b["to"]) for b in back] == [("validate", "build")]
    assert "failed" in ip.requests("build")[1] and "Validation failed" in ip.requests("build")[1]
    result = st.stages["validate"].data["result"]
    assert result["commands"][0]["passed"] and result["out_of_scope"] == []
    assert json.loads((runner.run.dir / "validate.json").read_text())["commands"][0]["kind"] == "lint"


def test_plan_context_is_the_whole_small_repo_or_retrieval_for_a_bigger_one(tmp_path, monkeypatch):
    from anvil.stages import plan as plan_stage

    ip = InProcess(tmp_path, monkeypatch)
    try:
        runner = ip.runner(ScriptedPipeline(example_answers()))
        runner.execute()
        first = ip.requests("plan")[0]
        assert "The whole repository" in first and "class TaskStore" in first
        monkeypatch.setattr(plan_stage, "CONTEXT_TOKENS", 300)  # the example no longer fits whole
        runner = ip.runner(ScriptedPipeline(example_answers()))
        runner.execute()
        second = ip.requests("plan")[-1]
        assert "Repository context (ranked)" in second and "The whole repository" not in second
        assert "src/tasklist/store.py" in runner.run.state.stages["plan"].data["context_files"]
    finally:
        ip.close()


def test_ship_falls_back_to_a_derived_message_rather_than_losing_the_work(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    try:
        answers = example_answers()
        answers["ship"] = ["Here is a great commit message for you!"]
        runner = ip.runner(ScriptedPipeline(answers), "stages:\n  ship: {retry_budget: 0}\n")
        runner.execute()
        st = runner.run.state
        assert st.status == "done"
        subject = git(["log", "-1", "--format=%s", st.branch], ip.repo).strip()
        assert subject.startswith("feat: add a search command that lists tasks") and len(subject) <= 72
        assert "ship.message_fallback" in [e["kind"] for e in runner.run.events()]
        assert "Anvil-Model-Plan: scripted-premium" in git(["log", "-1", "--format=%B", st.branch], ip.repo)
    finally:
        ip.close()
