"""End to end: `anvil run --pr` pushes the branch to a (bare, local) remote and opens the pull request
through a loopback GitHub API, with the summary, the test result and the cost table in its body."""

from __future__ import annotations

import subprocess

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from tests.e2e_helpers import git, start
from tests.pipeline_helpers import FakeGitHub

pytestmark = pytest.mark.e2e


def test_run_with_pr_pushes_and_opens_a_pull_request(tmp_path):
    e2e = start(tmp_path, ScriptedPipeline(example_answers()))
    bare = tmp_path / "github.com" / "acme" / "tasks.git"
    bare.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(["remote", "add", "origin", str(bare)], e2e.repo)
    git(["push", "-q", "origin", "main"], e2e.repo)
    try:
        with FakeGitHub() as api:
            e2e.init()
            cfg = e2e.repo / ".anvil" / "config.yaml"
            cfg.write_text(cfg.read_text().replace("https://api.github.com", api.url))
            e2e.env["GITHUB_TOKEN"] = "tok-123456789"
            out = e2e.run_ok("--pr", "--trust-repo")  # config.yaml edited after init: approve it again
    finally:
        e2e.server.stop()
    assert out["pr_url"].endswith("/acme/tasks/pull/7")
    assert git(["rev-parse", out["branch"]], bare).strip() == out["commit"]
    (req,) = [r for r in api.requests if r["method"] == "POST"]
    assert req["path"] == "/repos/acme/tasks/pulls"
    pr = req["json"]
    assert pr["head"] == out["branch"] and pr["base"] == "main"
    assert pr["title"].startswith("feat(cli): add a search command")
    assert "passed" in pr["body"] and "| plan | scripted-premium |" in pr["body"] and "**total**" in pr["body"]
    assert "tok-123456789" not in (e2e.run_dir(out["run_id"]) / "events.jsonl").read_text()
