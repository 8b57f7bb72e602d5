"""End to end: `anvil init` + `anvil run` on a copy of examples/python-cli, every stage served by the
scripted vendor server through the real adapters, real git, the real test command."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from tests.e2e_helpers import git, start

pytestmark = pytest.mark.e2e

ARTIFACTS = ("clarify.md", "plan.json", "build.patch", "test.log", "validate.json", "review.md", "ship.json")
STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")


@pytest.fixture
def e2e(tmp_path):
    env = start(tmp_path, ScriptedPipeline(example_answers()))
    yield env
    env.server.stop()


def test_run_ships_a_tested_branch_and_leaves_the_user_alone(e2e, tmp_path):
    e2e.init()
    head_before = git(["rev-parse", "HEAD"], e2e.repo).strip()
    status_before = git(["status", "--porcelain"], e2e.repo)
    store_before = (e2e.repo / "src/tasklist/store.py").read_text()

    out = e2e.run_ok()
    run_id, branch = out["run_id"], out["branch"]
    assert out["status"] == "done" and out["exit_code"] == 0
    assert branch.startswith("anvil/add-a-search-command")

    # the user's branch and working tree are untouched
    assert git(["rev-parse", "--abbrev-ref", "HEAD"], e2e.repo).strip() == "main"
    assert git(["rev-parse", "HEAD"], e2e.repo).strip() == head_before
    assert git(["status", "--porcelain"], e2e.repo) == status_before
    assert (e2e.repo / "src/tasklist/store.py").read_text() == store_before
    assert not (e2e.repo / "tests/test_search.py").exists()

    # a branch with the commit, trailers naming each stage's model
    log = git(["log", "--format=%H %s", f"main..{branch}"], e2e.repo).splitlines()
    assert len(log) == 1 and log[0].split(" ", 1)[0] == out["commit"]
    assert log[0].split(" ", 1)[1].startswith("feat(cli): add a search command")
    body = git(["log", "-1", "--format=%B", branch], e2e.repo)
    assert "Anvil-Model-Plan: scripted-premium" in body and "Anvil-Model-Build: scripted-local" in body
    assert f"Anvil-Run: {run_id}" in body
    files = set(git(["diff", "--name-only", f"main..{branch}"], e2e.repo).split())
    assert files == {"src/tasklist/cli.py", "src/tasklist/store.py", "tests/test_search.py"}

    # the tests pass on the branch (a fresh clone, nothing of the run's worktree)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(e2e.repo), str(clone)], check=True)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=clone,
                       env={**e2e.env, "PYTHONPATH": str(clone / "src")}, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
                        "tests/test_search.py"], cwd=clone, env={**e2e.env, "PYTHONPATH": str(clone / "src")},
                       capture_output=True, text=True)
    assert "3 passed" in p.stdout, p.stdout

    # every stage has its artifact and is done; the worktree is gone, the branch stays
    run_dir = e2e.run_dir(run_id)
    for name in ARTIFACTS:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    state = e2e.state(run_id)
    assert [state["stages"][s]["status"] for s in STAGES] == ["done"] * 7
    assert not (run_dir / "worktree").exists()
    (spare,) = (e2e.repo / ".anvil" / "worktrees").glob("spare-*")  # parked clean for the next run
    assert git(["status", "--porcelain", "--ignored"], spare) == ""
    assert git(["rev-parse", "--abbrev-ref", "HEAD"], spare).strip() == "HEAD"
    assert "def search(self, word" in (run_dir / "build.patch").read_text()

    # the ledger has a row for every attempt (every request the server answered)
    rows = e2e.ledger_rows(run_id)
    assert len(rows) == len(e2e.server.requests) == len(e2e.pipeline.calls) == 7
    assert [r["stage"] for r in rows] == list(STAGES)
    assert all(r["outcome"] == "ok" for r in rows)
    ledger_total = sum(Decimal(r["dollars"]) for r in rows)
    assert ledger_total > 0 and Decimal(out["spend"]) == ledger_total
    assert sum(Decimal(str(s["cost"])) for s in out["stages"]) == ledger_total


def test_cost_report_for_the_run_adds_up(e2e):
    e2e.init()
    out = e2e.run_ok()
    rows = e2e.ledger_rows(out["run_id"])
    r = e2e.anvil("cost", "report", "--run", out["run_id"], "--json")
    assert r.code == 0, r.stderr
    report = r.json()
    ledger_total = sum(Decimal(x["dollars"]) for x in rows)
    total = Decimal(report["total"]["dollars"])
    assert total == ledger_total == Decimal(out["spend"]) > 0
    assert sum(Decimal(g["dollars"]) for g in report["rows"]) == total
    assert report["total"]["attempts"] == len(report["attempts"]) == len(rows) == 7
    assert report["total"]["unpriced"] == 0
    by_stage = {}
    for g in report["rows"]:
        by_stage[g["stage"]] = by_stage.get(g["stage"], Decimal(0)) + Decimal(g["dollars"])
    for s in out["stages"]:  # the run's own per-stage costs agree with the report
        assert by_stage.get(s["stage"], Decimal(0)) == Decimal(str(s["cost"])), s["stage"]


def test_run_outside_a_repo_is_a_clean_user_error(tmp_path, e2e):
    outside = tmp_path / "nowhere"
    outside.mkdir()
    p = subprocess.run([str(e2e.env["PATH"].split(":")[0] + "/anvil"), "run", "x", "--yes"], cwd=outside,
                       env=e2e.env, capture_output=True, text=True)
    assert p.returncode == 2
    assert "git work tree" in p.stderr and "Traceback" not in p.stderr


def test_user_mistakes_are_one_clean_line_with_exit_2(e2e):
    e2e.init()
    for args, needle in ((["--base", "nope"], "git cannot find 'nope'"),
                         (["--budget", "-1"], "--budget must be more than 0"),
                         ([], "the request is empty")):
        request = "" if not args else "add a flag"
        r = e2e.anvil("run", request, "--yes", *args)
        assert r.code == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
    assert not [p for p in (e2e.repo / ".anvil" / "runs").glob("2*")]  # nothing was started
    assert e2e.server.requests == []
    r = e2e.anvil("resume", "nosuchrun")
    assert r.code == 2 and "no run 'nosuchrun'" in r.stderr


def test_run_without_init_detects_the_test_command(e2e):
    out = e2e.run_ok()
    state = e2e.state(out["run_id"])
    result = state["stages"]["test"]["data"]["result"]
    assert result["command"] and "pytest" in result["command"] and result["passed"] is True
    assert not (e2e.repo / ".anvil" / "config.yaml").exists()
    assert git(["status", "--porcelain", "--ignored=no"], e2e.repo) == ""  # runs and cache stay invisible
