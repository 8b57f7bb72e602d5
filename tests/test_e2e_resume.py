"""End to end: a run killed with SIGKILL during build and finished by `anvil resume` without paying
for its finished stages again; a budget stop (exit 5) and its resume with a higher budget."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers
from tests.e2e_helpers import git, start

pytestmark = pytest.mark.e2e


def _wait(predicate, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_during_build_then_resume_finishes_without_repeating_paid_stages(tmp_path):
    pipeline = ScriptedPipeline(example_answers(), delays={"build": 60})
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        proc = e2e.popen("run", REQUEST, "--yes")
        try:
            _wait(lambda: pipeline.count("build") >= 1, what="the build call")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        runs = os.listdir(e2e.repo / ".anvil" / "runs")
        run_id = next(r for r in runs if r[0].isdigit())
        state = e2e.state(run_id)
        assert state["stages"]["build"]["status"] == "running" and state["stages"]["plan"]["status"] == "done"
        rows = e2e.ledger_rows(run_id)
        assert [(r["stage"], r["state"]) for r in rows] == [("clarify", "settled"), ("plan", "settled"),
                                                            ("build", "started")]  # the call in flight too

        listed = e2e.anvil("runs", "--json")
        assert listed.code == 0
        assert [r for r in listed.json()["runs"] if r["id"] == run_id][0]["status"] == "interrupted"

        r = e2e.anvil("resume", run_id[:15], "--json")
        assert r.code == 0, r.stderr
        assert "resuming run" in r.stderr and "at build (interrupted)" in r.stderr
    finally:
        e2e.server.stop()
    out = r.json()
    assert out["status"] == "done" and out["run_id"] == run_id
    stages = [s for s, _ in pipeline.calls]
    assert stages.count("clarify") == 1 and stages.count("plan") == 1  # not paid twice
    assert stages.count("build") == 2  # the killed call and the resumed one
    rows = e2e.ledger_rows(run_id)
    assert [r["stage"] for r in rows] == ["clarify", "plan", "build", "build", "test", "validate", "review", "ship"]
    assert rows[2]["state"] == "interrupted" and rows[2]["estimated"] == 1  # settled by the resume
    assert all(r["state"] == "settled" for r in rows[3:])
    assert git(["log", "--format=%s", f"main..{out['branch']}"], e2e.repo).startswith("feat(cli)")
    kinds = [json.loads(line)["kind"] for line in (e2e.run_dir(run_id) / "events.jsonl").read_text().splitlines()]
    assert "run.resumed" in kinds and "worktree.restored" in kinds


def test_budget_stop_exits_5_then_resume_with_a_higher_budget(tmp_path):
    pipeline = ScriptedPipeline(example_answers())
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        r = e2e.anvil("run", REQUEST, "--yes", "--budget", "0.0005")
        assert r.code == 5, r.stderr
        last = r.stderr.strip().splitlines()[-2:]
        assert "budget reached before the next plan call" in last[0] and "Traceback" not in r.stderr
        run_id = next(p for p in os.listdir(e2e.repo / ".anvil" / "runs") if p[0].isdigit())
        assert f"anvil resume {run_id}" in last[1]
        state = e2e.state(run_id)
        assert state["status"] == "budget_stopped" and state["exit_code"] == 5
        assert [s for s, _ in pipeline.calls] == ["clarify"]  # the plan call never started
        assert [r_["stage"] for r_ in e2e.ledger_rows(run_id)] == ["clarify"]

        r = e2e.anvil("resume", run_id, "--budget", "1", "--json")
        assert r.code == 0, r.stderr
        again = e2e.anvil("resume", run_id)
        assert again.code == 2 and "already done" in again.stderr
    finally:
        e2e.server.stop()
    assert r.json()["status"] == "done"
    assert [s for s, _ in pipeline.calls].count("clarify") == 1
