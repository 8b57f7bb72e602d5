"""Issue 17 end to end: the details of `anvil run` a daily user hits, through the real binary against the
scripted vendor server: the result on stdout, what a run starts from, --pr checked before the first call,
a closed pipe, cost report --run prefixes, ledger attempt numbers, runs rm / clean, the demo's budget."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers, scripted_models_yaml
from anvil.providers.scripted.server import ScriptedServer
from tests.e2e_helpers import ANVIL, E2E, example_repo, git, make_env, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def e2e(tmp_path):
    # the first build fails its test and is retried: a stage with more than one call
    env = start(tmp_path, ScriptedPipeline(example_answers(failing_first_build=True)))
    env.init()
    yield env
    env.server.stop()


def _branches(repo) -> list[str]:
    return git(["branch", "--format=%(refname:short)"], repo).split()


def test_result_on_stdout_start_point_cost_prefix_and_attempt_numbers(e2e):
    # a user on another branch with an uncommitted edit: the run says what it starts from, in one line
    git(["checkout", "-q", "-b", "feature"], e2e.repo)
    git(["commit", "-qam", "init's .gitignore lines"], e2e.repo)  # a commit main does not have
    (e2e.repo / "NOTES.md").write_text("work in progress\n")
    r = e2e.anvil("run", REQUEST, "--yes")
    assert r.code == 0, r.stderr
    start_lines = [ln for ln in r.stderr.splitlines() if "starting from" in ln]
    assert len(start_lines) == 1
    assert "starting from main@" in start_lines[0]
    assert "your branch 'feature' and 1 uncommitted file are not included; use --base" in start_lines[0]
    # the result is on stdout (branch, commit, cost, run), not only in the stderr table
    out = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
    assert out["branch"].startswith("anvil/add-a-search-command") and len(out["commit"]) >= 7
    assert out["cost"].startswith("$") and out["run"]
    run_id = out["run"]

    # cost report --run takes the same prefix `show` takes, and it is never a silent $0
    prefix = run_id[:-2]
    rep = e2e.anvil("cost", "report", "--run", prefix, "--json")
    assert rep.code == 0, rep.stderr
    data = rep.json()
    assert data["filters"]["run"] == run_id and data["total"]["attempts"] > 0 and data["total"]["dollars"] != "0"
    unknown = e2e.anvil("cost", "report", "--run", "19990101-0000-dead")
    assert unknown.code == 2 and "no calls of such a run" in unknown.stderr

    # the ledger's attempt numbers count 1, 2, 3 across a stage's calls (build is retried in this story)
    rows = e2e.ledger_rows(run_id)
    by_stage: dict[str, list[int]] = {}
    for row in rows:
        by_stage.setdefault(row["stage"], []).append(row["attempt"])
    assert any(len(v) > 1 for v in by_stage.values()), by_stage
    for stage, numbers in by_stage.items():
        assert numbers == list(range(1, len(numbers) + 1)), (stage, numbers)

    # runs --json: numbers, not "2m ago"
    runs = e2e.anvil("runs", "--json").json()["runs"]
    assert isinstance(runs[0]["age_seconds"], int) and "age" not in runs[0]


def test_pr_without_a_remote_fails_before_the_first_call(e2e):
    r = e2e.anvil("run", REQUEST, "--yes", "--pr", "--json")
    assert r.code == 2, r.stderr
    err = r.json()
    assert "no git remote 'origin'" in err["error"] and err["exit_code"] == 2 and "nothing was run" in err["hint"]
    assert e2e.server.requests == []  # no model was paid for
    assert not (e2e.repo / ".anvil" / "runs").exists() or not any((e2e.repo / ".anvil" / "runs").iterdir())


def test_a_closed_pipe_stops_the_display_not_the_run(e2e):
    p = subprocess.run(f"'{ANVIL}' run '{REQUEST}' --yes 2>&1 | head -3; exit ${{PIPESTATUS[0]}}", shell=True,
                       executable="/bin/bash", cwd=e2e.repo, env=e2e.env, capture_output=True, text=True,
                       timeout=300)
    assert len(p.stdout.splitlines()) == 3
    assert p.returncode == 0, p.stdout + p.stderr
    run_id = next(d.name for d in (e2e.repo / ".anvil" / "runs").iterdir() if d.name[0].isdigit())
    state = e2e.state(run_id)
    assert state["status"] == "done" and state["stages"]["ship"]["status"] == "done"
    assert "BrokenPipe" not in (e2e.run_dir(run_id) / "events.jsonl").read_text()


def test_runs_rm_and_clean_with_a_dry_run(e2e):
    stopped = e2e.anvil("run", REQUEST, "--yes", "--budget", "0.0005", "--json")
    assert stopped.code == 5, stopped.stderr
    assert stopped.json()["status"] == "budget_stopped"  # one JSON object: the run's, no second error object
    done = e2e.run_ok()
    runs = {r["status"]: r for r in e2e.anvil("runs", "--json").json()["runs"]}
    left = runs["budget_stopped"]
    assert left["branch"] in _branches(e2e.repo)

    dry = e2e.anvil("clean", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    would = dry.json()["would_remove"]
    assert [w["run_id"] for w in would] == [left["id"]] and would[0]["branch"] == left["branch"]
    assert left["branch"] in _branches(e2e.repo) and e2e.run_dir(left["id"]).exists()  # nothing removed

    cleaned = e2e.anvil("clean")
    assert cleaned.code == 0 and f"{left['id']} [budget_stopped]: removed" in cleaned.stdout
    assert left["branch"] not in _branches(e2e.repo) and not e2e.run_dir(left["id"]).exists()
    assert e2e.run_dir(done["run_id"]).exists()  # a finished run stays

    rm = e2e.anvil("runs", "rm", done["run_id"][:-2], "--yes")
    assert rm.code == 0, rm.stderr
    assert "kept branch" in rm.stdout and done["branch"] in _branches(e2e.repo)  # shipped work stays
    assert not e2e.run_dir(done["run_id"]).exists()
    assert e2e.anvil("runs", "--json").json()["runs"] == []
    assert e2e.ledger_rows(done["run_id"])  # the money spent stays counted


def test_demo_honours_the_budget_variable_and_its_runs_need_demo_in_cost_report(tmp_path):
    env_run = start(tmp_path, ScriptedPipeline(example_answers()))
    env_run.server.stop()
    env = {**env_run.env, "ANVIL_BUDGET_DOLLARS": "0.001"}
    p = subprocess.run([ANVIL, "demo", "--dir", str(tmp_path / "demo"), "--json"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 5, p.stderr[-2000:]
    assert "budget" in p.stderr and "$0.0010 budget" in p.stderr
    json.loads(p.stdout)  # one JSON document on stdout
    ok = subprocess.run([ANVIL, "demo", "--dir", str(tmp_path / "demo2"), "--json"], cwd=tmp_path,
                        env=env_run.env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    run_id = json.loads(ok.stdout)["run_id"]
    hidden = subprocess.run([ANVIL, "cost", "report", "--run", run_id], cwd=tmp_path, env=env_run.env,
                            capture_output=True, text=True, timeout=60)
    assert hidden.returncode == 2 and "is an `anvil demo` run" in hidden.stderr and "--demo" in hidden.stderr
    shown = subprocess.run([ANVIL, "cost", "report", "--run", run_id, "--demo", "--json"], cwd=tmp_path,
                           env=env_run.env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and json.loads(shown.stdout)["total"]["attempts"] > 0


def _pty_run(e2e, args: list[str], *, answer: bytes | None = None, on: bytes = b"", deadline_s: float = 240):
    """The real binary on a pseudo-terminal (stdin, stdout, stderr): what a user at a terminal sees."""
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {**e2e.env, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen([ANVIL, *args], cwd=e2e.repo, env=env, stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    seen, sent = b"", False
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if answer is not None and not sent and on in seen:
            os.write(master, answer)
            sent = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(10)
    os.close(master)
    return proc.returncode, seen.decode("utf-8", "replace")


def test_a_clarify_question_on_a_tty_keeps_the_table_says_how_to_skip_and_times_out(tmp_path):
    from dataclasses import replace

    pipeline = ScriptedPipeline(example_answers())

    def slow_plan(req):  # the plan answer streams in small pieces: the live view shows tokens growing
        reply = pipeline(req)
        return replace(reply, chunk_size=64, chunk_delay=0.04) if "anvil stage: plan" in req.body.decode() else reply

    server = ScriptedServer().start()
    server.add_responder(slow_plan)
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.yaml").write_text(scripted_models_yaml(server.url))
    e2e = E2E(example_repo(tmp_path / "repo"), home, server, pipeline, make_env(home))
    try:
        e2e.init()
        (e2e.repo / ".anvil" / "stage-policy.yaml").write_text("stages:\n  clarify: {question_timeout: 2}\n")
        from anvil.config.trust import approve

        approve(e2e.repo, home)  # the user's own edit, approved (else the TTY asks to trust it first)
        code, text = _pty_run(e2e, ["run", REQUEST])
    finally:
        e2e.server.stop()
    assert code == 0, text[-3000:]
    asked = text.index("Should tags be searched too?")
    before = text[:asked]
    assert "stage" in before and "status" in before and "clarify" in before  # the table stays above it
    assert "Enter alone lets anvil assume" in text[asked:] and "anvil assumes in 2s" in text[asked:]
    assert "(no answer in 2s: anvil assumes)" in text
    assert "tok/s" in text  # tokens counted while the plan streamed, not only at the end
    run_id = next(d.name for d in (e2e.repo / ".anvil" / "runs").iterdir() if d.name[0].isdigit())
    clarify = e2e.state(run_id)["stages"]["clarify"]
    assert "assumed (unanswered question): Should tags be searched too?" in clarify["data"]["spec"]["assumptions"]
    waited, elapsed = clarify["data"]["waited_for_user"], clarify["data"]["elapsed"]
    wall = (datetime.fromisoformat(clarify["finished"]) - datetime.fromisoformat(clarify["started"])).total_seconds()
    assert waited >= 1.9  # the wait is kept apart, and not counted as stage time
    assert elapsed <= wall - waited + 1.5, (elapsed, wall, waited)  # the state's times are whole seconds
