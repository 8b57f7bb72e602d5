"""End to end: how a run stops. SIGTERM during a call (exit 130, state saved, resume finishes it) and
an exhausted chain (exit 3, every attempt listed; a resume remembers the burns)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers
from anvil.providers.scripted.model import ScriptedFailure
from tests.e2e_helpers import start

pytestmark = pytest.mark.e2e


def _run_id(e2e):
    return next(p for p in os.listdir(e2e.repo / ".anvil" / "runs") if p[0].isdigit())


def test_sigterm_during_build_stops_cleanly_with_130_and_resume_finishes(tmp_path):
    pipeline = ScriptedPipeline(example_answers(), delays={"build": 60})
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        proc = e2e.popen("run", REQUEST, "--yes")
        end = time.monotonic() + 60
        while pipeline.count("build") < 1 and time.monotonic() < end:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        run_id = _run_id(e2e)
        last = err.strip().splitlines()[-2:]
        assert "interrupted during build" in last[0] and f"anvil resume {run_id}" in last[1]
        assert "Traceback" not in err
        state = e2e.state(run_id)
        assert state["status"] == "interrupted" and state["exit_code"] == 130
        assert state["stages"]["build"]["status"] == "interrupted"  # not "failed": Ctrl-C is no failure
        rows = e2e.ledger_rows(run_id)
        assert [(r["stage"], r["outcome"], r["error_kind"]) for r in rows][-1] == ("build", "error", "interrupted")

        r = e2e.anvil("resume", run_id, "--json")
        assert r.code == 0, r.stderr
    finally:
        e2e.server.stop()
    stages = [s for s, _ in pipeline.calls]
    assert stages.count("clarify") == 1 and stages.count("plan") == 1 and stages.count("build") == 2


def test_exhausted_chain_exits_3_listing_every_attempt_and_resume_remembers_the_burns(tmp_path):
    quota = ScriptedFailure("quota", message="You exceeded your current quota")
    pipeline = ScriptedPipeline(example_answers(), failures={"scripted-premium": [quota],
                                                             "scripted-premium-b": [quota]})
    e2e = start(tmp_path, pipeline)
    try:
        e2e.init()
        r = e2e.anvil("run", REQUEST, "--yes")
        assert r.code == 3, r.stderr
        run_id = _run_id(e2e)
        assert "stage plan: every model of the chain failed" in r.stderr
        assert "scripted-premium (scripted-anthropic): quota" in r.stderr
        assert "scripted-premium-b (scripted-openai): quota" in r.stderr
        assert f"anvil resume {run_id}" in r.stderr.strip().splitlines()[-1]
        state = e2e.state(run_id)
        assert state["status"] == "failed" and state["stages"]["plan"]["status"] == "failed"
        assert {b["target"] for b in state["burns"]} == {"scripted-anthropic", "scripted-openai"}
        asked = len(e2e.server.requests)

        r = e2e.anvil("resume", run_id)
        assert r.code == 3
        assert "provider scripted-anthropic burned" in r.stderr
        assert len(e2e.server.requests) == asked  # burned providers are not asked again
    finally:
        e2e.server.stop()
