"""End to end (the real binary, the scripted server): stages that reach real code (issue 12).

Big files shown as outline + windows and edited near their end; a planned file's region read through
a tool; a near-miss edit refused with the closest lines, then fixed; an unplanned file reverted; a
validate command failing on the base counted as pre-existing; "no changes needed"; a read-only stage
told no; the turn and tool-call bounds; a stage timeout across retries; a resume with stale feedback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from typing import Any

import pytest

from anvil.demo.scripted_run import (
    BUILD_GOOD,
    PLAN,
    REQUEST,
    REVIEW_OK,
    ScriptedPipeline,
    example_answers,
    offered_tools,
    tool_results,
)
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedToolCall
from tests.e2e_helpers import git, start

pytestmark = pytest.mark.e2e

HISTORY = ('"""History of entries."""\n\n\n'
           + "".join(f'def entry_{i}(x):\n    """Entry number {i}: adds {i} to x."""\n    return x + {i}\n\n\n'
                     for i in range(2300))
           + 'def last_entry():\n    """The last entry."""\n    return "old"\n')
ARCHIVE = "".join(f"def archive_{i}():\n    return 'archived-{i * 7 + 3}'\n\n\n" for i in range(3000))
ARCHIVE_LINE = ARCHIVE.splitlines().index("    return 'archived-10503'") + 1  # archive_1500's body
LAST_OLD = 'def last_entry():\n    """The last entry."""\n    return "old"\n'
LAST_NEW = 'def last_entry():\n    """The last entry."""\n    return "new"\n'


def call(name: str, **args: Any) -> ScriptedToolCall:
    return ScriptedToolCall(name, args)


def turn(*calls: ScriptedToolCall, text: str = "") -> ScriptedAnswer:
    return ScriptedAnswer(text=text, tool_calls=tuple(calls))


def set_repo_config(repo, **values: Any) -> None:
    path = repo / ".anvil" / "config.yaml"
    text = path.read_text()
    for key, value in values.items():
        text = re.sub(rf"^{key}:.*$", f"{key}: {json.dumps(value)}", text, flags=re.M)
    path.write_text(text)
    _approve(repo)


def write_policy(repo, text: str) -> None:
    (repo / ".anvil" / "stage-policy.yaml").write_text(text)
    _approve(repo)


def _approve(repo) -> None:
    """The test writes the repo layer as its user would: approve it (`anvil trust`) in the run's home."""
    from anvil.config.trust import approve

    approve(repo, repo.parent / "home")  # tests.e2e_helpers.start: tmp/home beside tmp/repo


def events(e2e, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    lines = (e2e.run_dir(run_id) / "events.jsonl").read_text().splitlines()
    out = [json.loads(x) for x in lines if x.strip()]
    return [e for e in out if kind is None or e["kind"] == kind]


def stage_requests(e2e, stage: str) -> list[Any]:
    return [r for r in e2e.server.requests if f"anvil stage: {stage}" in r.body.decode()[:4000]]


def big_plan() -> dict[str, Any]:
    plan = json.loads(json.dumps(PLAN))
    plan["files_to_change"].append({"path": "src/tasklist/history.py", "reason": "the last entry changes",
                                    "symbols": ["last_entry"]})
    plan["files_to_read"].append("src/tasklist/archive.py")
    plan["steps"].append({"description": "last_entry returns 'new'", "files": ["src/tasklist/history.py"]})
    return plan


def test_tool_loop_reaches_a_big_file_refuses_a_near_miss_reverts_unplanned_and_judges_lint_by_baseline(tmp_path):
    answers: dict[str, list[Any]] = example_answers()
    answers["plan"] = [json.dumps(big_plan())]
    answers["build"] = [
        turn(call("read_file", path="src/tasklist/archive.py", start=ARCHIVE_LINE - 1, end=ARCHIVE_LINE + 1),
             call("edit", path="src/tasklist/history.py", old=LAST_OLD.replace('"old"', '"olb"'), new=LAST_NEW)),
        turn(call("edit", path="src/tasklist/history.py", old=LAST_OLD, new=LAST_NEW),
             call("write_file", path="CHANGELOG.md", content="- a search command\n")),
        BUILD_GOOD,
    ]
    answers["scope"] = [json.dumps({"keep": []})]
    e2e = start(tmp_path, ScriptedPipeline(answers), extra={"src/tasklist/history.py": HISTORY,
                                                            "src/tasklist/archive.py": ARCHIVE})
    try:
        e2e.init()
        lint = f"{sys.executable} -c \"print('setup.py:3: W1 legacy warning'); raise SystemExit(1)\""
        set_repo_config(e2e.repo, lint_commands=[lint])
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id, branch = out["run_id"], out["branch"]
    assert len(HISTORY) > 150_000

    # build's first message: history.py as outline + a numbered window around last_entry, never whole;
    # archive.py (to read) as an outline only, its bodies left out and listed with the tool to read them
    build = stage_requests(e2e, "build")
    first = build[0].body.decode()
    assert "read_file" in offered_tools(build[0]) and "edit" in offered_tools(build[0])
    assert len(first) < 120_000 and "src/tasklist/history.py (" in first and "too big to show whole" in first
    last_line = HISTORY.splitlines().index('def last_entry():') + 1
    assert f"{last_line}| def last_entry():" in first
    assert "archived-10503" not in first  # the body is not there
    assert "archive_199" in first and "2800 more symbols (outline tool)" in first  # the outline, capped
    assert "Not shown in this message" in first and "src/tasklist/archive.py: lines" in first
    # ... read through a tool; the near miss refused with the closest lines, then fixed
    results = tool_results(build[1])
    assert "archived-10503" in results[0] and f"{ARCHIVE_LINE}| " in results[0]
    assert "REFUSED" in results[1] and 'return "old"' in results[1] and "nothing was written" in results[1]
    assert "edited at line" in tool_results(build[2])[2] and "created" in tool_results(build[2])[3]

    calls = events(e2e, run_id, "tool.call")
    assert [(c["tool"], c["ok"]) for c in calls] == [("read_file", True), ("edit", False), ("edit", True),
                                                     ("write_file", True)]
    assert all(c["stage"] == "build" and c["model"] == "scripted-local" for c in calls)
    [loop] = [lp for lp in events(e2e, run_id, "tool.loop") if lp["stage"] == "build"]
    assert loop["stop"] == "answered" and loop["turns"] == 3 and loop["tool_calls"] == 4
    outcomes = [o["outcome"] for e in events(e2e, run_id, "build.edits") for o in e["outcomes"]]
    assert outcomes.count("refused") == 1 and "exact" in outcomes

    # the unplanned CHANGELOG.md: asked once, not kept, reverted; never shipped
    [reverted] = events(e2e, run_id, "build.scope_reverted")
    assert reverted["paths"] == ["CHANGELOG.md"]
    files = set(git(["diff", "--name-only", f"main..{branch}"], e2e.repo).split())
    assert files == {"src/tasklist/cli.py", "src/tasklist/store.py", "src/tasklist/history.py",
                     "tests/test_search.py"}
    shipped = git(["show", f"{branch}:src/tasklist/history.py"], e2e.repo)
    assert shipped.endswith(LAST_NEW) and shipped[:-len(LAST_NEW)] == HISTORY[:-len(LAST_OLD)]

    # the lint command fails on the base commit too: pre-existing, not sent back to build
    assert events(e2e, run_id, "validate.pre_existing")
    assert not events(e2e, run_id, "stage.back")
    validate = json.loads((e2e.run_dir(run_id) / "validate.json").read_text())
    assert validate["commands"][0]["pre_existing"] and validate["commands"][0]["passed"]
    assert list((e2e.repo / ".anvil" / "cache" / "baseline").glob("*.json"))

    # one ledger row per model turn; the trailer credits the model whose edits were kept
    rows = e2e.ledger_rows(run_id)
    assert [r["stage"] for r in rows].count("build") == 3 + 1  # three turns and the scope question
    body = git(["log", "-1", "--format=%B", branch], e2e.repo)
    assert "Anvil-Model-Build: scripted-local" in body

    # `anvil show` lists the tool calls
    shown = e2e.anvil("show", run_id)
    assert shown.code == 0 and "tool calls" in shown.stdout and "read_file" in shown.stdout
    assert "stopped: answered" in shown.stdout


def no_change_plan() -> dict[str, Any]:
    return {"files_to_read": [], "steps": [{"description": "check search exists", "files": ["src/tasklist/store.py"]}],
            "files_to_change": [{"path": "src/tasklist/store.py", "reason": "maybe"}], "tests_to_add": []}


def test_no_changes_needed_ends_build_and_a_read_only_review_is_told_no(tmp_path):
    answers: dict[str, list[Any]] = example_answers()
    answers["clarify"] = [json.dumps({"goal": "make sure finished tasks can be filtered", "acceptance_criteria": []})]
    answers["plan"] = [json.dumps(no_change_plan())]
    answers["build"] = ["NO CHANGES NEEDED: TaskStore.query already filters the way the spec asks"]
    answers["review"] = [turn(call("edit", path="src/tasklist/store.py", old="class TaskStore:", new="class X:"),
                              call("run", command="touch pwned"),
                              call("read_file", path="src/tasklist/store.py", start=1, end=3)),
                         json.dumps(REVIEW_OK)]
    e2e = start(tmp_path, ScriptedPipeline(answers))
    try:
        e2e.init()
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id = out["run_id"]
    [ev] = events(e2e, run_id, "build.no_changes")
    assert "already filters" in ev["reason"]
    assert not events(e2e, run_id, "stage.retry")
    assert [r["stage"] for r in e2e.ledger_rows(run_id)].count("build") == 1
    assert e2e.pipeline.count("test") == 0  # no planned test missing: nothing to write, nobody paid
    review = [c for c in events(e2e, run_id, "tool.call") if c["stage"] == "review"]
    assert [(c["tool"], c["ok"]) for c in review] == [("edit", False), ("run", False), ("read_file", True)]
    assert "the review stage may not use edit" in review[0]["refused"]
    assert "needs permission exec" in review[1]["refused"]
    assert set(offered_tools(stage_requests(e2e, "review")[0])) == {"read_file", "outline", "search", "list_dir"}
    refusal = tool_results(stage_requests(e2e, "review")[1])
    assert refusal[0].startswith("refused: the review stage may not use edit")
    assert not (e2e.repo / "pwned").exists()
    state = e2e.state(run_id)
    assert state["stages"]["build"]["data"]["no_changes"]


def test_turn_and_tool_call_bounds_stop_the_loop_with_their_reason(tmp_path):
    read = call("read_file", path="README.md")
    answers: dict[str, list[Any]] = example_answers()
    # attempt 1: one read a turn until max_turns; attempt 2: more reads than max_tool_calls allows
    answers["build"] = [turn(read), turn(read), turn(read, read, read, read), turn(read)]
    e2e = start(tmp_path, ScriptedPipeline(answers))
    try:
        e2e.init()
        write_policy(e2e.repo, "stages:\n  build:\n    max_turns: 2\n    max_tool_calls: 3\n    retry_budget: 1\n")
        r = e2e.anvil("run", REQUEST, "--yes", "--json")
    finally:
        e2e.server.stop()
    assert r.code == 4, r.stderr
    run_id = r.json()["run_id"]
    loops = [lp for lp in events(e2e, run_id, "tool.loop") if lp["stage"] == "build"]
    assert [(lp["stop"], lp["turns"], lp["tool_calls"]) for lp in loops] == [("max_turns", 2, 2),
                                                                            ("max_tool_calls", 2, 3)]
    assert "max_tool_calls" in r.stderr + r.stdout and "without changing a file" in r.stderr + r.stdout
    last = tool_results(stage_requests(e2e, "build")[-1])
    assert any("has made them all" in t for t in last)


def test_stage_timeout_bounds_the_stage_across_its_retries(tmp_path):
    answers: dict[str, list[Any]] = example_answers()
    answers["plan"] = ["this is not a plan"]
    e2e = start(tmp_path, ScriptedPipeline(answers, slow={"plan": 1.6}))
    try:
        e2e.init()
        write_policy(e2e.repo, "stages:\n  plan:\n    timeout: 3s\n")
        t0 = time.monotonic()
        r = e2e.anvil("run", REQUEST, "--yes", "--json")
        took = time.monotonic() - t0
    finally:
        e2e.server.stop()
    assert r.code == 4, r.stderr
    assert "stage plan ran out of its 3s timeout" in r.stderr and "raise stages.plan.timeout" in r.stderr
    assert took < 20
    assert events(e2e, r.json()["run_id"], "stage.timeout")


def test_a_bad_duration_is_a_config_error(tmp_path):
    e2e = start(tmp_path, ScriptedPipeline(example_answers()))
    try:
        e2e.init()
        write_policy(e2e.repo, "stages:\n  plan:\n    timeout: .inf\n")
        r = e2e.anvil("run", REQUEST, "--yes")
    finally:
        e2e.server.stop()
    assert r.code == 2 and ".anvil/stage-policy.yaml:3 stages.plan.timeout" in r.stderr and "duration" in r.stderr
    assert "Traceback" not in r.stderr


def test_resume_recomputes_stale_feedback_and_keeps_retry_counters(tmp_path):
    answers: dict[str, list[Any]] = example_answers()
    answers["build"] = [BUILD_GOOD, "NO CHANGES NEEDED: the lint failure was the tool's, not the code's"]
    pipeline = ScriptedPipeline(answers, delays={"build": 60}, hold_turn={"build": 1})
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        # passes on the base commit, fails once search exists: a new failure, sent back to build
        lint = f"{sys.executable} -c \"import sys; sys.exit('def search' in open('src/tasklist/store.py').read())\""
        set_repo_config(e2e.repo, lint_commands=[lint])
        proc = e2e.popen("run", REQUEST, "--yes")
        deadline = time.monotonic() + 90
        while pipeline.count("build") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        run_id = next(r for r in os.listdir(e2e.repo / ".anvil" / "runs") if r[0].isdigit())
        state = e2e.state(run_id)
        assert "Validation failed" in state["build_feedback"]
        assert state["escalation"]["build"]["retries"] == 1
        set_repo_config(e2e.repo, lint_commands=[])  # the user removes the command
        r = e2e.anvil("resume", run_id, "--json")
    finally:
        e2e.server.stop()
    assert r.code == 0, r.stderr
    [ev] = events(e2e, run_id, "feedback.refreshed")
    assert ev["source"] == "validate" and ev["cleared"]
    resumed_build = stage_requests(e2e, "build")[-1].body.decode()
    assert "Validation failed" not in resumed_build and "Fix this" not in resumed_build
    state = e2e.state(run_id)
    assert state["escalation"]["build"]["retries"] == 1  # kept, not restarted
