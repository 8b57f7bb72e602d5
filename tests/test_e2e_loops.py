"""End to end: the loops back to build (a failing test, a blocking review finding) and a model
rate-limited and burned mid-run, each through the real CLI, adapters, git and test command."""

from __future__ import annotations

import json

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from anvil.providers.scripted.model import ScriptedFailure
from tests.e2e_helpers import git, start

pytestmark = pytest.mark.e2e


def _events(e2e, run_id):
    lines = (e2e.run_dir(run_id) / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_failing_test_is_fixed_by_the_second_build_on_a_higher_tier(tmp_path):
    e2e = start(tmp_path, ScriptedPipeline(example_answers(failing_first_build=True)))
    try:
        e2e.init()
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id = out["run_id"]
    rows = e2e.ledger_rows(run_id)
    builds = [r for r in rows if r["stage"] == "build"]
    # escalation is visible in the ledger: the retry ran one tier up (build: on_retry escalate_tier)
    assert [r["model"] for r in builds] == ["scripted-local", "scripted-cheap"]
    assert all(r["outcome"] == "ok" for r in rows) and len(rows) == len(e2e.server.requests)
    assert [c[0] for c in e2e.pipeline.calls] == ["clarify", "plan", "build", "test", "build", "validate",
                                                  "review", "ship"]
    events = _events(e2e, run_id)
    back = [e for e in events if e["kind"] == "stage.back"]
    assert len(back) == 1 and back[0]["stage"] == "test" and back[0]["to"] == "build"
    assert "test_search_ignores_case" in back[0]["reason"] or "failed" in back[0]["reason"]
    state = e2e.state(run_id)
    esc = state["escalation"]["build"]
    assert esc["retries"] == 1 and esc["tier_offset"] == 1
    test_data = state["stages"]["test"]["data"]
    assert test_data["runs"] == 2 and test_data["result"]["passed"] is True
    # the second build prompt carried the failing test's report
    second_build = [r for r in e2e.server.requests if "anvil stage: build" in r.body.decode()][1]
    assert "test_search_ignores_case" in second_build.body.decode()
    branch_store = git(["show", f"{out['branch']}:src/tasklist/store.py"], e2e.repo)
    assert "word.casefold()" in branch_store


def test_blocking_review_finding_sends_the_run_back_to_build(tmp_path):
    e2e = start(tmp_path, ScriptedPipeline(example_answers(blocking_review=True)))
    try:
        e2e.init()
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id = out["run_id"]
    stages = [c[0] for c in e2e.pipeline.calls]
    assert stages == ["clarify", "plan", "build", "test", "validate", "review", "build", "validate", "review",
                      "ship"]
    back = [e for e in _events(e2e, run_id) if e["kind"] == "stage.back"]
    assert [(b["stage"], b["to"]) for b in back] == [("review", "build")]
    second_build = [r for r in e2e.server.requests if "anvil stage: build" in r.body.decode()][1]
    assert "count line" in second_build.body.decode()
    cli = git(["show", f"{out['branch']}:src/tasklist/cli.py"], e2e.repo)
    assert 'print(f"{len(tasks)} match(es)")' in cli
    state = e2e.state(run_id)
    assert state["escalation"]["review"]["retries"] == 1
    rounds = state["stages"]["review"]["data"]["rounds"]
    assert rounds[0]["findings"][0]["severity"] == "blocking" and rounds[1]["findings"][0]["severity"] == "nit"
    # the finding whose evidence is not in the diff was dropped
    assert rounds[1]["dropped"][0]["evidence"] == "def search_all(self):"
    assert "Dropped (1" in (e2e.run_dir(run_id) / "review.md").read_text()


def test_rate_limited_model_is_burned_and_the_run_goes_on(tmp_path):
    pipeline = ScriptedPipeline(example_answers(),
                                failures={"scripted-premium": [ScriptedFailure("rate_limit", retry_after=120)]})
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id = out["run_id"]
    rows = e2e.ledger_rows(run_id)
    plan = [(r["model"], r["outcome"], r["error_kind"], r["http_status"]) for r in rows if r["stage"] == "plan"]
    assert plan == [("scripted-premium", "error", "rate_limit", 429), ("scripted-premium-b", "ok", None, None)]
    # burned for the rest of the run: review (premium) never asks it again
    assert [r["model"] for r in rows if r["stage"] == "review"] == ["scripted-premium-b"]
    assert [m for s, m in pipeline.calls].count("scripted-premium") == 1
    assert len(rows) == len(e2e.server.requests) == 8
    state = e2e.state(run_id)
    assert [(b["scope"], b["target"]) for b in state["burns"]] == [("model", "scripted-premium")]
    assert "retry-after 120s" in state["burns"][0]["reason"]
    assert state["stages"]["plan"]["model"] == "scripted-premium-b"
    assert [b["target"] for b in out["burns"]] == ["scripted-premium"]
