"""`anvil runs` and `anvil show`, through the real CLI, on run folders written by the run store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.commands.runs import age
from anvil.run.store import RunStore
from tests.pipeline_helpers import make_repo


def anvil(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    t0 = datetime.now(UTC) - timedelta(hours=3)
    clock = [t0]
    tokens = iter(["aaaa", "bbbb", "cccc"])
    store = RunStore(root, clock=lambda: clock[0], token=lambda: next(tokens))

    done = store.create("add a --json flag to the list command", {"pr": False})
    done.state.status = "done"
    done.state.branch = "anvil/add-a-json-flag"
    done.state.base_ref = "main"
    for name, model, cost, tok in (("clarify", "gpt-4o-mini", "0.0004", 900),
                                   ("plan", "claude-opus-4-5", "0.0712", 5200),
                                   ("build", "qwen2.5-coder-7b", "0", 9100), ("test", "qwen2.5-coder-7b", "0", 3000),
                                   ("validate", None, "0", 0), ("review", "claude-opus-4-5", "0.0433", 4100),
                                   ("ship", "gpt-4o-mini", "0.0002", 400)):
        st = done.state.stage(name)
        st.status, st.model, st.cost, st.tokens, st.attempts = "done", model, Decimal(cost), tok, 1
        st.started, st.finished = "2026-11-22T08:00:00Z", "2026-11-22T08:00:12Z"
    done.state.stage("build").models = ["deepseek-chat", "qwen2.5-coder-7b"]
    done.state.stage("build").attempts = 2
    done.state.burns = [{"model": "deepseek-chat", "kind": "quota", "reason": "out of quota (HTTP 402)"}]
    done.state.spend = Decimal("0.1151")
    done.save()
    done.write_artifact("plan.json", '{"steps": []}\n')
    done.write_artifact("build.patch", "diff --git a/x b/x\n")

    clock[0] = t0 + timedelta(hours=2)
    failed = store.create("make done accept ranges like 3-5")
    failed.state.status = "failed"
    failed.state.error = "stage build exhausted its retry budget"
    failed.state.stage("clarify").status = "done"
    failed.state.stage("plan").status = "done"
    failed.state.stage("build").status = "failed"
    failed.state.stage("build").cost = None  # an unpriced model: unknown, never $0
    failed.state.spend = None
    failed.save()
    return root


def test_runs_json(repo: Path) -> None:
    p = anvil(repo, "runs", "--json")
    assert p.returncode == 0, p.stderr
    runs = json.loads(p.stdout)["runs"]
    assert [r["request"] for r in runs] == ["make done accept ranges like 3-5", "add a --json flag to the list command"]
    newest, oldest = runs
    assert newest["status"] == "failed" and newest["stage"] == "build" and newest["cost"] is None
    assert oldest["status"] == "done" and oldest["stage"] == "ship" and oldest["cost"] == "0.1151"
    # numbers, not "3h ago" (a script compares them); a few seconds pass between writing and reading
    assert 3 * 3600 <= oldest["age_seconds"] < 3 * 3600 + 120 and 3600 <= newest["age_seconds"] < 3600 + 120
    assert "age" not in oldest
    assert oldest["id"].endswith("-aaaa")


def test_runs_table(repo: Path) -> None:
    p = anvil(repo, "runs")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "add a --json flag to the list command" in out and "$0.1151" in out
    assert "failed" in out and "unknown" in out and "3h ago" in out


def test_show_text(repo: Path) -> None:
    rid = json.loads(anvil(repo, "runs", "--json").stdout)["runs"][1]["id"]
    p = anvil(repo, "show", rid[:-2])  # a unique prefix is enough
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"run {rid}" in out and "[done]" in out and "anvil/add-a-json-flag" in out
    assert "claude-opus-4-5" in out and "qwen2.5-coder-7b (after deepseek-chat)" in out
    assert "$0.0712" in out and "$0.1151" in out and "12.0s" in out
    assert "deepseek-chat: out of quota (HTTP 402)" in out
    assert "plan.json" in out and "build.patch" in out


def test_show_failed_run_offers_resume(repo: Path) -> None:
    rid = json.loads(anvil(repo, "runs", "--json").stdout)["runs"][0]["id"]
    out = anvil(repo, "show", rid).stdout
    assert f"anvil resume {rid}" in out and "continues at build" in out
    assert "stage build exhausted" in out


def test_show_json(repo: Path) -> None:
    rid = json.loads(anvil(repo, "runs", "--json").stdout)["runs"][1]["id"]
    d = json.loads(anvil(repo, "show", rid, "--json").stdout)
    assert d["id"] == rid and d["status"] == "done" and d["cost"] == "0.1151"
    assert [s["stage"] for s in d["stages"]] == ["clarify", "plan", "build", "test", "validate", "review", "ship"]
    build = d["stages"][2]
    assert build["attempts"] == 2 and build["models_tried"] == ["deepseek-chat", "qwen2.5-coder-7b"]
    assert [a["name"] for a in d["artifacts"]] == ["build.patch", "plan.json"]
    assert d["burns"][0]["kind"] == "quota"


def test_errors_are_clean(repo: Path, tmp_path: Path) -> None:
    p = anvil(repo, "show", "nope")
    assert p.returncode == 2 and "no run 'nope'" in p.stderr and "Traceback" not in p.stderr
    p = anvil(repo, "show", "2")  # both ids start with the year
    assert p.returncode == 2 and "ambiguous" in p.stderr
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    for args in (("runs",), ("show", "x")):
        p = anvil(outside, *args)
        assert p.returncode == 2 and "git work tree" in p.stderr and "Traceback" not in p.stderr


def test_no_runs_yet(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "empty")
    p = anvil(root, "runs")
    assert p.returncode == 0 and p.stdout == "" and "no runs yet" in p.stderr
    assert json.loads(anvil(root, "runs", "--json").stdout) == {"runs": []}


def test_a_killed_running_run_reads_as_interrupted(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    run = RunStore(root).create("x")
    run.save()
    assert RunStore(root).list()[0].status == "running"  # this process is alive
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run.state.pid = dead.pid
    raw = run.state.to_json()
    (run.dir / "state.json").write_text(json.dumps(raw))
    assert RunStore(root).list()[0].status == "interrupted"


def test_age() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert age("2026-11-22T11:59:30Z", now) == "30s ago"
    assert age("2026-11-22T11:00:00Z", now) == "1h ago"
    assert age("2026-11-20T12:00:00Z", now) == "2d ago"
    assert age(None, now) == "?"


def _attempt(db: object, run_id: str, stage: str, attempt: int, model: str, dollars: str | None,
             outcome: str = "ok", error_kind: str | None = None, status: int | None = None):
    return db.AttemptRow(ts=db.utc_now_iso(), run_id=run_id, repo="", stage=stage, attempt=attempt, chain_pos=0,
                         provider="p", provider_kind="openai", model=model, requested_model=model, served_model=model,
                         outcome=outcome, error_kind=error_kind, http_status=status, error_message=None,
                         input_tokens=1000, cache_read_tokens=0, cache_write_tokens=0, output_tokens=200,
                         reasoning_tokens=0, latency_s=1.5, ttft_s=0.2,
                         dollars=None if dollars is None else Decimal(dollars), cost_source="table",
                         prices_version=None, request_id=None)


def test_costs_come_from_the_ledger_when_it_has_the_run(repo: Path) -> None:
    db = pytest.importorskip("anvil.ledger.db")
    runs = json.loads(anvil(repo, "runs", "--json").stdout)["runs"]
    failed_id, done_id = runs[0]["id"], runs[1]["id"]
    with db.Ledger(db.default_path()) as led:
        led.record(_attempt(db, done_id, "plan", 1, "claude-opus-4-5", "0.0500"))
        led.record(_attempt(db, done_id, "build", 1, "deepseek-chat", None, "error", "quota", 402))
        led.record(_attempt(db, done_id, "build", 2, "qwen2.5-coder-7b", "0.0010"))
    d = json.loads(anvil(repo, "show", done_id, "--json").stdout)
    assert d["cost_source"] == "ledger" and Decimal(d["cost"]) == Decimal("0.051") and d["unpriced_calls"] == 1
    by = {s["stage"]: s for s in d["stages"]}
    assert Decimal(by["plan"]["cost"]) == Decimal("0.05")
    assert by["build"]["calls"] == 2 and by["build"]["unpriced_calls"] == 1
    assert [c["outcome"] for c in d["calls"]] == ["ok", "error", "ok"] and d["calls"][1]["cost"] is None
    text = anvil(repo, "show", done_id).stdout
    assert "calls (ledger)" in text and "quota 402" in text and "$0.0510 + 1 unpriced" in text
    listed = {r["id"]: r for r in json.loads(anvil(repo, "runs", "--json").stdout)["runs"]}
    assert Decimal(listed[done_id]["cost"]) == Decimal("0.051") and listed[done_id]["cost_source"] == "ledger"
    assert listed[failed_id]["cost_source"] == "run state"  # no ledger rows: the run's own record


def test_stage_cost_rows_feed_the_pr_body(repo: Path) -> None:
    from anvil.run.costs import stage_cost_rows
    from anvil.workspace.github import pr_body

    store = RunStore(repo)
    done, failed = store.load(store.ids()[0]), store.load(store.ids()[1])
    rows, total, unpriced = stage_cost_rows(done)
    assert [r["stage"] for r in rows][:3] == ["clarify", "plan", "build"] and total == Decimal("0.1151")
    assert unpriced == 0
    body = pr_body("s", "t", rows, total=total)
    assert "| plan | claude-opus-4-5 | 5200 | $0.0712 |" in body and "**$0.1151**" in body
    rows, total, unpriced = stage_cost_rows(failed)
    assert [r["stage"] for r in rows] == ["clarify", "plan", "build"]
    assert rows[2]["cost"] is None and unpriced == 1 and total is None
