"""The run store: atomic state, append-only events, artifacts, redacted exchanges, ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.errors import UserError
from anvil.providers.types import ChatRequest, ChatResult, Message, UpstreamError, Usage
from anvil.run.store import RunState, RunStore, StageState, atomic_write


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, minutes: int = 1) -> None:
        self.now += timedelta(minutes=minutes)


def _tokens(*values: str):
    it = iter(values)
    return lambda: next(it)


def test_run_ids_are_short_sortable_and_unique(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 8, 12, tzinfo=UTC))
    store = RunStore(tmp_path, clock=clock, token=_tokens("ab12", "ab12", "cd34", "0001"))
    a = store.create("first")
    b = store.create("second")  # same minute, same first token -> retried
    clock.tick(1)
    c = store.create("third")
    assert a.id == "20261122-0812-ab12"
    assert b.id == "20261122-0812-cd34"
    assert c.id == "20261122-0813-0001"
    assert store.ids() == sorted([a.id, b.id, c.id])
    assert [s.request for s in store.list()] == ["third", "second", "first"]


def test_state_roundtrip_and_prefix_load(tmp_path: Path) -> None:
    store = RunStore(tmp_path, token=_tokens("aaaa", "bbbb"))
    run = store.create("add a flag", {"pr": False, "budget": "0.50"})
    run.state.branch = "anvil/add-a-flag"
    st = run.state.stage("plan")
    st.status, st.attempts, st.model, st.cost, st.tokens = "done", 2, "claude-opus-4-5", Decimal("0.0123"), 1500
    run.state.stage("build").cost = None  # unpriced stays unknown, never $0
    run.state.spend = Decimal("0.0123")
    run.state.burns = [{"model": "x", "kind": "quota"}]
    run.save()

    loaded = store.load(run.id[:-2])  # unique prefix
    assert loaded.id == run.id
    assert loaded.state.request == "add a flag"
    assert loaded.state.options == {"pr": False, "budget": "0.50"}
    assert loaded.state.stages["plan"].cost == Decimal("0.0123")
    assert loaded.state.stages["build"].cost is None
    assert loaded.state.stages["plan"].model == "claude-opus-4-5"
    assert loaded.state.spend == Decimal("0.0123")
    assert loaded.state.stage_reached() == "plan"
    assert loaded.state.first_unfinished() == "clarify"
    assert loaded.state.burns == [{"model": "x", "kind": "quota"}]
    raw = json.loads((run.dir / "state.json").read_text())
    assert raw["stages"]["plan"]["cost"] == "0.0123"  # Decimal as a string, exact


def test_load_errors_are_user_errors(tmp_path: Path) -> None:
    store = RunStore(tmp_path, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC), token=_tokens("aaaa", "aaab"))
    store.create("one")
    store.create("two")
    with pytest.raises(UserError, match="no run"):
        store.load("nope")
    with pytest.raises(UserError, match="ambiguous"):
        store.load("20260101-0000-aaa")


def test_runs_folder_is_git_ignored(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    RunStore(tmp_path).create("x")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert ".anvil" not in status


def test_events_append_only_and_torn_line_tolerated(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("x")
    run.event("stage.start", stage="plan")
    run.event("stage.done", stage="plan", cost=Decimal("0.01"))
    with open(run.dir / "events.jsonl", "a") as fh:
        fh.write('{"kind": "torn')  # a crash mid-write
    kinds = [e["kind"] for e in run.events()]
    assert kinds == ["run.created", "stage.start", "stage.done"]
    assert run.events()[2]["cost"] == "0.01"


def test_artifacts(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create("x")
    run.write_artifact("plan.json", '{"steps": []}')
    run.write_artifact("build.patch", "diff --git a/x b/x\n")
    assert run.artifacts() == ["build.patch", "plan.json"]
    assert run.read_artifact("plan.json") == '{"steps": []}'
    assert run.read_artifact("review.md") is None
    for bad in ("../x", "state.json", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            run.write_artifact(bad, "no")


def test_exchanges_never_contain_keys(tmp_path: Path) -> None:
    key = "sk-ant-api03-THISISASECRETKEYVALUE1234567890"
    odd_key = "plainsecretwithoutanyshape42"
    run = RunStore(tmp_path).create("x", secrets=[odd_key])
    req = ChatRequest(model="claude-x", messages=(Message(role="user", content=f"my key is {key}"),),
                      extra={"headers": {"Authorization": f"Bearer {odd_key}", "x-api-key": key,
                                         "anthropic-version": "2023-06-01"}, "api_key": odd_key})
    res = ChatResult(text=f"echo {odd_key}", finish_reason="stop", usage=Usage(input_tokens=10, output_tokens=2),
                     served_model="claude-x")
    p1 = run.record_exchange("plan", 1, req, res, model="claude-x", provider="anthropic")
    err = UpstreamError("auth", f"401 from https://api.example/v1?key={odd_key}", provider="anthropic",
                        model="claude-x", status=401)
    p2 = run.record_exchange("plan", 1, req, err)
    run.event("call", headers={"Authorization": "Bearer abcdefghijklmnop"}, note=f"used {key}")
    for path in (p1, p2, run.dir / "events.jsonl"):
        text = path.read_text()
        assert key not in text and odd_key not in text and "abcdefghijklmnop" not in text, path
    data = json.loads(p1.read_text())
    assert data["ok"] is True and data["result"]["usage"]["input_tokens"] == 10
    assert data["request"]["extra"]["headers"]["anthropic-version"] == "2023-06-01"
    assert data["request"]["extra"]["headers"]["Authorization"] == "[redacted]"
    failed = json.loads(p2.read_text())
    assert failed["ok"] is False and failed["error"]["kind"] == "auth" and failed["error"]["status"] == 401
    assert [p.name for p in run.exchanges()] == ["plan-01-01.json", "plan-01-02.json"]


def test_atomic_write_leaves_old_state_when_killed(tmp_path: Path) -> None:
    """A writer killed mid-save never leaves a torn state.json behind."""
    target = tmp_path / "state.json"
    atomic_write(target, json.dumps({"n": 0}))
    script = (
        "import json, os, sys\n"
        "from pathlib import Path\n"
        "from anvil.run.store import atomic_write\n"
        "p = Path(sys.argv[1]); n = 0\n"
        "while True:\n"
        "    n += 1; atomic_write(p, json.dumps({'n': n, 'pad': 'x' * 200000}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)])
    try:
        for _ in range(40):
            data = json.loads(target.read_text())  # never a partial file
            assert "n" in data
    finally:
        proc.kill()
        proc.wait()
    json.loads(target.read_text())
    leftovers = [p for p in tmp_path.iterdir() if p.name != "state.json"]
    assert all(p.name.startswith(".state.json.") for p in leftovers)


def test_unknown_fields_are_tolerated(tmp_path: Path) -> None:
    raw = RunState(request="x").to_json()
    raw["from_the_future"] = 1
    raw["stages"]["plan"]["new_field"] = True
    st = RunState.from_json(raw)
    assert st.request == "x" and isinstance(st.stages["plan"], StageState)
    assert os.path.basename(str(tmp_path))


def test_a_run_is_locked_to_one_process(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create("x")
    run.acquire()
    code = ("import sys\nfrom pathlib import Path\nfrom anvil.run.store import RunStore\n"
            "from anvil.errors import UserError\n"
            "run = RunStore(Path(sys.argv[1])).load(sys.argv[2])\n"
            "try:\n    run.acquire()\nexcept UserError as e:\n    print(e.message); sys.exit(3)\n")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path), run.id], capture_output=True, text=True)
    assert other.returncode == 3 and "already running" in other.stdout
    run.release()
    again = subprocess.run([sys.executable, "-c", code, str(tmp_path), run.id], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run.artifacts() == []  # the lock file is not an artifact
