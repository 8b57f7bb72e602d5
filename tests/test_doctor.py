"""`anvil doctor` against scripted vendor servers: key present, endpoint reachable, model listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from anvil.providers.scripted.server import Match, Reply, ScriptedServer
from tests.foundation_helpers import git_repo, write


def test_doctor_reports_keys_reachability_and_listing(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    with ScriptedServer() as srv:
        srv.add(Reply.json({"data": [{"id": "claude-haiku-5-5"}], "has_more": False}),
                Match(method="GET", path="/v1/models"), times=None)
        srv.add(Reply.json({"models": [{"name": "qwen2.5-coder:7b", "model": "qwen2.5-coder:7b"}]}),
                Match(method="GET", path="/api/tags"), times=None)
        srv.add(Reply.json({"version": "0.9.0"}), Match(method="GET", path="/api/version"), times=None)
        write(repo / ".anvil/models.yaml", f"""
            providers:
              anthropic: {{base_url: "{srv.url}"}}
              ollama: {{base_url: "{srv.url}"}}
        """)
        env = {**os.environ, "ANTHROPIC_API_KEY": "sk-doctor-secret"}
        res = subprocess.run([sys.executable, "-m", "anvil", "doctor", "--json", "--trust-repo"], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=120)
        auth_headers = [r.headers.get("x-api-key") for r in srv.requests if r.path == "/v1/models"]
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    by_name = {p["provider"]: p for p in data["providers"]}
    anthropic = by_name["anthropic"]
    assert anthropic["key"] == "set" and anthropic["reachable"] == "ok" and anthropic["ok"]
    assert anthropic["models"]["claude-haiku-5-5"] == "listed"
    assert anthropic["models"]["claude-opus-5-5"] == "not listed"
    assert by_name["openai"]["key"] == "missing: set OPENAI_API_KEY"
    assert by_name["ollama"]["models"]["ollama/qwen2.5-coder-7b"] == "listed"
    assert auth_headers and auth_headers[0] == "sk-doctor-secret"  # sent to the server...
    assert "sk-doctor-secret" not in res.stdout + res.stderr  # ...never printed
