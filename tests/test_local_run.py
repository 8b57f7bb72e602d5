"""`anvil run --local` on the bundled tiny model: fully offline, and it fails *cleanly*.

SmolLM2-135M cannot do the work; the point is the path: every stage routed to the local
model, real calls to the embedded server, then a failure that keeps the run's artifacts,
names the `anvil resume` command, exits non-zero, and leaves no server behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .local_helpers import needs_smollm2, port_free, process_gone, servers_in_log, wait_until, write_local_catalogue

pytestmark = [pytest.mark.realmodel, pytest.mark.e2e, needs_smollm2]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "python-cli"


def _anvil() -> list[str]:
    exe = shutil.which("anvil", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "anvil"]


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="examples/python-cli is missing")
def test_run_local_on_the_tiny_model_fails_cleanly_and_offline(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # Small context: clarify fits, a later stage's prompt will not (or the toy's output will not do).
    write_local_catalogue(home, threads=1, ctx_size=2048, max_output_tokens=200)
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    env = dict(os.environ, ANVIL_HOME=str(home), NO_COLOR="1")
    for var in [v for v in env if v.endswith("_API_KEY")]:
        del env[var]  # offline: no cloud provider is even usable
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True)
    subprocess.run(_anvil() + ["init", "--yes"], cwd=repo, env=env, check=True, capture_output=True, timeout=60)

    proc = subprocess.run(_anvil() + ["run", "--local", "--yes", "--json", "add a --version flag"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=240)

    assert proc.returncode in (3, 4), (proc.returncode, proc.stderr[-2000:])  # chain / stage exhausted
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    run_id, run_dir = result["run_id"], Path(result["run_dir"])
    assert result["status"] == "failed"
    assert f"anvil resume {run_id}" in proc.stderr
    state = json.loads((run_dir / "state.json").read_text())
    assert state["stages"]["clarify"]["status"] == "done"  # a real answer from the real model
    assert state["stages"]["clarify"]["models"] == ["local/smollm2-135m"]
    assert (run_dir / "clarify.md").is_file() and (run_dir / "events.jsonl").is_file()
    failed = [name for name, s in state["stages"].items() if s["status"] == "failed"]
    assert len(failed) == 1

    from anvil.ledger.db import Ledger

    with Ledger(home / "ledger.db") as ledger:
        rows = ledger.attempts(run_id)
    assert rows and {r["model"] for r in rows} == {"local/smollm2-135m"}  # nothing else was ever asked
    assert {r["cost_source"] for r in rows} == {"free"}

    started = servers_in_log(home)
    assert len(started) == 1  # one server for the whole run, shared by its stages
    for pid, port in started:
        assert wait_until(lambda pid=pid: process_gone(pid)) and wait_until(lambda port=port: port_free(port))
