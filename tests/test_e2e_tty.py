"""End to end on a terminal: the live rich display, and clarify asking its open question (answered on
the pty) instead of recording an assumption."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import pytest

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers
from tests.e2e_helpers import ANVIL, start

pytestmark = pytest.mark.e2e


def test_run_on_a_tty_shows_live_progress_and_asks_the_open_question(tmp_path):
    e2e = start(tmp_path, ScriptedPipeline(example_answers()))
    try:
        e2e.init()
        master, slave = pty.openpty()
        env = {**e2e.env, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
        proc = subprocess.Popen([ANVIL, "run", REQUEST], cwd=e2e.repo, env=env, stdin=slave, stdout=slave,
                                stderr=slave, close_fds=True)
        os.close(slave)
        seen, answered = b"", False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the pty
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"Should tags be searched too?" in seen:
                os.write(master, b"yes, tags too\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        proc.wait(10)
        os.close(master)
    finally:
        e2e.server.stop()
    text = seen.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-3000:]
    assert answered
    assert "branch: anvil/add-a-search-command" in text
    assert "scripted-premium" in text and "total" in text and "elapsed" in text  # the live panel
    run_id = next(p for p in os.listdir(e2e.repo / ".anvil" / "runs") if p[0].isdigit())
    state = json.loads((e2e.run_dir(run_id) / "state.json").read_text())
    spec = state["stages"]["clarify"]["data"]["spec"]
    assert "Should tags be searched too? -> yes, tags too" in spec["assumptions"]
    assert spec["open_questions"] == []
