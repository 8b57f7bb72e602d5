"""The ledger database: schema version, WAL, exact sums, and surviving a SIGKILL mid-call."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

from anvil.ledger import AttemptRow, Ledger, utc_now_iso
from anvil.ledger.migrations import LATEST

REPO = Path(__file__).resolve().parents[1]


def row(run: str = "r1", stage: str = "build", dollars: Decimal | None = Decimal("0.1"), **kw) -> AttemptRow:
    base = dict(ts=utc_now_iso(), run_id=run, repo="/repo", stage=stage, attempt=1, chain_pos=0, provider="p",
                provider_kind="openai", model="m", requested_model="m", served_model="m-1", outcome="ok",
                error_kind=None, http_status=None, error_message=None, input_tokens=100, cache_read_tokens=0,
                cache_write_tokens=0, output_tokens=10, reasoning_tokens=0, latency_s=0.2, ttft_s=0.1,
                dollars=dollars, cost_source="table" if dollars is not None else "unpriced",
                prices_version=None, request_id=None)
    base.update(kw)
    return AttemptRow(**base)


def test_fresh_ledger_is_wal_at_latest_version(tmp_path):
    with Ledger(tmp_path / "ledger.db") as led:
        assert led.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert led.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    # opening again migrates nothing and keeps rows
    with Ledger(tmp_path / "ledger.db") as led:
        led.record(row())
    with Ledger(tmp_path / "ledger.db") as led:
        assert led.spend("r1").attempts == 1


def test_default_path_is_under_anvil_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ANVIL_HOME", str(tmp_path / "home"))
    with Ledger() as led:
        assert led.path == tmp_path / "home" / "ledger.db"


def test_spend_sums_exactly_and_counts_unpriced(tmp_path):
    with Ledger(tmp_path / "l.db") as led:
        # ten times $0.1 is exactly $1 (a float sum gives 0.9999999999999999)
        led.record_many([row() for _ in range(10)])
        led.record(row(dollars=None))
        led.record(row(stage="plan", dollars=Decimal("0.0000003")))
        led.record(row(run="other", dollars=Decimal(5)))
        s = led.spend("r1")
        assert s.dollars == Decimal(1) + Decimal("0.0000003")
        assert s.attempts == 12 and s.unpriced == 1 and s.tokens == 12 * 110
        assert led.spend("r1", "plan").dollars == Decimal("0.0000003")
        texts = [r["dollars"] for r in led.attempts("r1")]
        assert texts[0] == "0.1" and texts[10] is None and texts[11] == "0.0000003"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "l.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    try:
        Ledger(path)
    except RuntimeError as exc:  # NewerSchema
        assert "newer anvil" in str(exc)
    else:
        raise AssertionError("a newer schema must not be written to")


CHILD = textwrap.dedent("""
    import sys, time
    from anvil.ledger import Ledger
    from anvil.routing.walker import CallSite, Walker
    from tests.walker_helpers import FakeProvider, ok, priced, request, settings

    class Hanging(FakeProvider):
        def chat(self, req, on_event=None):
            if len(self.calls) >= 3:
                print("HANGING", flush=True)
                time.sleep(600)
            return super().chat(req, on_event)

    fake = Hanging("p", {"a": [ok()]})
    w = Walker(settings(), ledger=Ledger(sys.argv[1]), provider_factory=lambda rm: fake)
    for i in range(10):
        w.call([priced("a")], request(), CallSite("killed-run", "build"))
        print("DONE", i, flush=True)
""")


def test_sigkill_mid_call_leaves_every_finished_attempt(tmp_path):
    db = tmp_path / "ledger.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line.strip())
        if line.startswith("HANGING") or not line:
            break
    assert "HANGING" in lines, lines
    os.kill(proc.pid, signal.SIGKILL)  # mid-call: the 4th attempt never finishes
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the WAL file is still there (nobody checkpointed): a reader must still see every row
    with Ledger(db) as led:
        rows = led.attempts("killed-run")
        assert len(rows) == 4 and all(r["outcome"] == "ok" for r in rows[:3])
        # the call in flight was written before it was sent: started, with its input estimated
        hung = rows[3]
        assert (hung["state"], hung["error_kind"], hung["estimated"]) == ("started", "in_flight", 1)
        assert hung["input_tokens"] > 0 and hung["pid"] == proc.pid
        assert led.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # its process is gone: it settles as interrupted, priced on what was counted (never $0)
        assert led.settle_unsettled() == 1
        hung = led.attempts("killed-run")[3]
        assert (hung["state"], hung["error_kind"]) == ("interrupted", "interrupted")
        assert hung["dollars"] is None or Decimal(hung["dollars"]) > 0


def test_run_summary_for_show(tmp_path, monkeypatch):
    from anvil.ledger import run_summary

    monkeypatch.setenv("ANVIL_HOME", str(tmp_path / "home"))
    assert run_summary("r1") is None and not (tmp_path / "home" / "ledger.db").exists()
    with Ledger() as led:
        led.record(row(dollars=Decimal("0.25")))
        led.record(row(dollars=None))
    s = run_summary("r1")
    assert s["total"] == Decimal("0.25") and s["unpriced"] == 1 and len(s["calls"]) == 2
    assert s["calls"][0]["cost"] == Decimal("0.25") and s["calls"][1]["cost"] is None
