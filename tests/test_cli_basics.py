"""The CLI surface: help lists every command, --version, clean errors, policy check/explain, models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.foundation_helpers import git_repo, write

COMMANDS = ("init", "run", "resume", "runs", "show", "cost", "policy", "models", "doctor", "ask", "context", "demo")


def anvil(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_help_lists_every_command(tmp_path: Path) -> None:
    res = anvil(tmp_path, "--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert f" {name} " in res.stdout, name


def test_version(tmp_path: Path) -> None:
    res = anvil(tmp_path, "--version")
    assert res.returncode == 0 and res.stdout.startswith("anvil ")


def test_policy_check_ok_and_failing(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    assert anvil(repo, "policy", "check").returncode == 0
    write(repo / ".anvil/stage-policy.yaml", """
        stages:
          review:
            timeout: null
    """)
    res = anvil(repo, "policy", "check")
    assert res.returncode == 2
    assert ".anvil/stage-policy.yaml:3 stages.review.timeout: required" in res.stderr
    assert "Traceback" not in res.stderr
    as_json = json.loads(anvil(repo, "policy", "check", "--json").stdout)
    assert as_json["ok"] is False and len(as_json["errors"]) == 1


def test_policy_explain_json_matches_resolver(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    res = anvil(repo, "policy", "explain", "--json", "--offline", env={"ANTHROPIC_API_KEY": "k"})
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    stages = {s["stage"]: s for s in data["stages"]}
    assert set(stages) == {"clarify", "plan", "build", "test", "validate", "review", "ship"}
    plan = stages["plan"]
    assert plan["chain"], plan
    assert all(link["tier"] == "premium" and link["provider"] == "anthropic" for link in plan["chain"])
    assert {"model", "tier", "provider", "context_window", "input_per_million", "output_per_million"} <= set(
        plan["chain"][0]
    )
    reasons = {e["model"]: e["reason"] for e in plan["excluded"]}
    assert reasons["gpt-6-sol"] == "provider openai unusable: no key: set OPENAI_API_KEY"


def test_policy_explain_human(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r")
    res = anvil(repo, "policy", "explain", "--stage", "review", "--offline", env={"ANTHROPIC_API_KEY": "k"})
    assert res.returncode == 0
    assert "claude-" in res.stdout and "left out" in res.stdout


def test_models_json(tmp_path: Path) -> None:
    res = anvil(tmp_path, "models", "--json", "--offline")
    assert res.returncode == 0
    rows = json.loads(res.stdout)["models"]
    local = [r for r in rows if r["tier"] == "local"]
    assert local and all(r["price_source"] == "free" for r in local if r["kind"] == "ollama")
    priced = [r for r in rows if r["price_source"] == "table"]
    assert priced and all(r["input_per_million"] is not None for r in priced)


def test_anvil_home_overrides_home(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write(home / "stage-policy.yaml", "budget: {max_dollars: 1.25}\n")
    res = anvil(tmp_path, "policy", "check", "--json", env={"ANVIL_HOME": str(home)})
    assert (
        str(home / "stage-policy.yaml") in " ".join(json.loads(res.stdout)["sources"])
        or "stage-policy.yaml" in res.stdout
    )
