"""`anvil cost report`: grouping, filters, exact totals, unknown prices, failures, baseline, JSON/CSV.

The report tests run on both ledgers (`ledger_backend`): the SQLite default and a PostgreSQL
team ledger named in the home config, on a real server the tests start (tests/pg_helpers.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC
from decimal import Decimal
from pathlib import Path

from anvil.ledger import AttemptRow, Ledger
from anvil.ledger.db import repo_key
from anvil.ledger.report import Filter, build_report, parse_since, parse_until
from tests.foundation_helpers import git_repo


def row(repo: str, *, run: str = "r1", stage: str = "build", model: str = "m", provider: str = "p",
        ts: str = "2026-11-20T10:00:00.000000Z", dollars: str | None = "0.1", outcome: str = "ok",
        kind: str | None = None, inp: int = 1000, out: int = 100, cr: int = 0, cw: int = 0,
        demo: bool = False) -> AttemptRow:
    return AttemptRow(ts=ts, run_id=run, repo=repo, stage=stage, attempt=1, chain_pos=0, provider=provider,
                      provider_kind="openai", model=model, requested_model=model, served_model=model,
                      outcome=outcome, error_kind=kind, http_status=429 if kind else None, error_message=None,
                      input_tokens=inp, cache_read_tokens=cr, cache_write_tokens=cw, output_tokens=out,
                      reasoning_tokens=0, latency_s=1.0, ttft_s=None,
                      dollars=None if dollars is None else Decimal(dollars),
                      cost_source="table" if dollars is not None else "unpriced", prices_version=None,
                      request_id=None, demo=demo)


def fill(home: Path, repo: str, other: str) -> None:
    with Ledger() as led:  # the configured ledger: $ANVIL_HOME/ledger.db, or the home config's PostgreSQL
        led.record_many([
            row(repo, stage="plan", model="big", provider="acme", dollars="0.30", inp=5000, cr=4000, out=500),
            row(repo, stage="build", model="cheap", dollars="0.1"),
            row(repo, stage="build", model="cheap", dollars="0.1"),
            row(repo, stage="build", model="cheap", dollars="0.1"),  # 3 x 0.1 = 0.3 exactly
            row(repo, stage="build", model="limited", dollars="0", outcome="error", kind="rate_limit", inp=0, out=0),
            row(repo, stage="build", model="broke", provider="acme", dollars=None, outcome="error", kind="quota",
                inp=0, out=0),
            row(repo, stage="review", model="mystery", dollars=None, inp=2000, out=200),  # unknown price
            row(repo, stage="review", model="cheap", run="r2", ts="2026-11-21T09:00:00.000000Z", dollars="0.05"),
            row(repo, stage="build", model="cheap", run="demo-run", dollars="9", demo=True),
            row(other, stage="build", model="cheap", run="r9", dollars="7"),
        ])


def anvil(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anvil", "cost", "report", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))


def setup(tmp_path: Path, home: Path) -> tuple[Path, str]:
    repo = git_repo(tmp_path / "repo")
    key = repo_key(repo)
    fill(home, key, "/elsewhere")
    return repo, key


def test_json_by_stage_model_exact_totals_and_unknowns(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, key = setup(tmp_path, _isolated_anvil_home)
    res = anvil(repo, "--by", "stage", "--by", "model", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["scope"] == key and data["by"] == ["stage", "model"]
    rows = {(r["stage"], r["model"]): r for r in data["rows"]}
    assert rows[("build", "cheap")]["dollars"] == "0.3" and rows[("build", "cheap")]["calls"] == 3
    assert rows[("build", "limited")]["errors"] == {"rate_limit": 1} and rows[("build", "limited")]["calls"] == 0
    assert rows[("build", "broke")]["errors"] == {"quota": 1} and rows[("build", "broke")]["unpriced"] == 0
    assert rows[("review", "mystery")]["unpriced"] == 1 and rows[("review", "mystery")]["dollars"] == "0"
    assert rows[("plan", "big")]["cache_read_tokens"] == 4000
    t = data["total"]
    # 0.30 + 0.3 + 0.05 (the demo row and the other repo are out)
    assert t["dollars"] == "0.65" and t["unpriced"] == 1 and t["failed"] == 2 and t["calls"] == 6
    assert t["errors"] == {"rate_limit": 1, "quota": 1}
    assert ("build", "cheap") in rows and all(r["model"] != "demo" for r in data["rows"])


def test_filters_run_since_until_all_demo(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, key = setup(tmp_path, _isolated_anvil_home)
    total = lambda *a: json.loads(anvil(repo, "--json", *a).stdout)["total"]["dollars"]  # noqa: E731
    assert total("--run", "r2") == "0.05"
    assert total("--since", "2026-11-21") == "0.05"
    assert total("--until", "2026-11-20") == "0.6"  # the 20th is included, the 21st not
    assert total("--all") == "7.65"
    assert total("--demo") == "9.65"
    assert total("--all", "--demo") == "16.65"
    assert total("--repo", "/elsewhere") == "7"
    by_run = json.loads(anvil(repo, "--json", "--run", "r1").stdout)
    assert len(by_run["attempts"]) == 7 and by_run["attempts"][3]["error_kind"] is None


def test_group_by_day_provider_run_repo(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, key = setup(tmp_path, _isolated_anvil_home)
    data = json.loads(anvil(repo, "--json", "--by", "day,provider", "--all").stdout)
    keys = [(r["day"], r["provider"]) for r in data["rows"]]
    assert keys[0][0] == "2026-11-20" and keys[-1] == ("2026-11-21", "p")
    data = json.loads(anvil(repo, "--json", "--by", "repo", "--all").stdout)
    assert {r["repo"] for r in data["rows"]} == {key, "/elsewhere"}
    data = json.loads(anvil(repo, "--json", "--by", "run").stdout)
    assert {r["run"] for r in data["rows"]} == {"r1", "r2"}


def test_table_calls_out_unknown_and_failures(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, _ = setup(tmp_path, _isolated_anvil_home)
    res = anvil(repo, "--by", "model")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "unknown (1)" in out and "rate_limit 1" in out and "quota 1" in out
    assert "$0.6500 + 1 unknown" in out and "unknown price" in out
    for head in ("calls", "failed", "input", "cache read", "cache write", "output", "cost"):
        assert head in out


def test_csv(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, _ = setup(tmp_path, _isolated_anvil_home)
    res = anvil(repo, "--csv", "--by", "stage")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    by = {r["stage"]: r for r in rows}
    assert by["build"]["dollars"] == "0.3" and by["build"]["errors"] == "quota:1;rate_limit:1"
    assert by["review"]["unpriced"] == "1"


def test_bad_arguments_are_one_line_errors(tmp_path, _isolated_anvil_home, ledger_backend):
    repo, _ = setup(tmp_path, _isolated_anvil_home)
    res = anvil(repo, "--by", "colour")
    assert res.returncode == 2 and "unknown grouping" in res.stderr and "Traceback" not in res.stderr
    res = anvil(repo, "--since", "last tuesday")
    assert res.returncode == 2 and "cannot read the date" in res.stderr
    res = anvil(repo, "--baseline", "no-such-model-zz")
    assert res.returncode == 2 and "not in the catalogue" in res.stderr


def test_baseline_prices_the_same_tokens_on_one_model(tmp_path, ledger_backend):
    from anvil.config.schema import PriceOverride
    from tests.walker_helpers import resolved

    with Ledger() as led:
        led.record_many([row("/r", model="cheap", dollars="0.001", inp=1000, out=100),
                         row("/r", model="cheap", dollars="0.002", inp=3000, out=300, cr=1000)])
        # baseline $10/M input, $1/M cache read, $30/M output:
        #   input uncached 1000 + 2000 = 3000 * 10 = 30,000; cached 1000 * 1 = 1,000
        #   output 400 * 30 = 12,000 -> 43,000 / 1e6 = $0.043; saving 0.043 - 0.003 = $0.04
        base = resolved("opus", price=PriceOverride(input=Decimal(10), output=Decimal(30), cache_read=Decimal(1)))
        rep = build_report(led.conn, ["model"], Filter(repo="/r"), base)
    assert rep.total.baseline == Decimal("0.043") and rep.total.saving == Decimal("0.04")


def test_baseline_respects_long_context_tiers(tmp_path, ledger_backend):
    from tests.walker_helpers import resolved

    with Ledger() as led:
        led.record_many([row("/r", dollars="0", inp=250_000, out=1000),
                         row("/r", dollars="0", inp=100_000, out=1000)])
        base = resolved("gemini-2.5-pro", kind="gemini", price_list="google")
        rep = build_report(led.conn, ["model"], Filter(repo="/r"), base)
    # long call at the >200k tier: 250,000 * 2.5 + 1,000 * 15 = 640,000
    # short call at base: 100,000 * 1.25 + 1,000 * 10 = 135,000 -> 775,000 / 1e6 = $0.775
    # (summing first would put 350k at the long tier: $0.905)
    assert rep.total.baseline == Decimal("0.775")


def test_date_parsing():
    from datetime import datetime

    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now).startswith("2026-11-15T12:00")
    assert parse_since("24h", now).startswith("2026-11-21T12:00")
    assert parse_since("2026-11-01") == "2026-11-01"
    assert parse_until("2026-11-21") == "2026-11-22"


def _same(a, b):
    assert [g.to_json() for g in a.groups] == [g.to_json() for g in b.groups]
    assert a.total.to_json() == b.total.to_json()


def test_daily_rollup_agrees_with_the_raw_rows(tmp_path, ledger_backend):
    from tests.walker_helpers import resolved

    with Ledger() as led:
        led.record_many([
            row("/r", stage="plan", model="big", dollars="0.30", inp=250_000, cr=4000, out=500),
            row("/r", model="cheap", dollars="0.1", ts="2026-11-21T23:59:59.999999Z"),
            row("/r", model="cheap", dollars="0.1", run="r2"),
            row("/r", model="limited", dollars="0", outcome="error", kind="rate_limit", inp=0, out=0),
            row("/r", model="x", dollars=None, outcome="error", kind=None, inp=10, out=0),
            row("/r", model="mystery", dollars=None, inp=2000, out=200),
            row("/r", model="silent", dollars=None, inp=0, out=0),  # answered, reported no usage
            row("/o", model="cheap", dollars="7", demo=True),
        ])
        base = resolved("gemini-2.5-pro", kind="gemini", price_list="google")
        for by in (["stage", "model"], ["day"], ["repo", "provider"]):
            for flt in (Filter(repo="/r"), Filter(demo=True), Filter(since="2026-11-21", until="2026-11-22")):
                for b in (None, base):
                    _same(build_report(led.conn, by, flt, b, source="attempts"),
                          build_report(led.conn, by, flt, b, source="daily"))
        for b in (None, base):
            for flt in (Filter(repo="/r"), Filter(demo=True)):
                _same(build_report(led.conn, ["run", "day"], flt, b, source="attempts"),
                      build_report(led.conn, ["run", "day"], flt, b, source="run_daily"))
        rep = build_report(led.conn, ["model"], Filter(repo="/r"))
        # unknown: the tokens of "x" and "mystery", and the usage-less answer of "silent"
        assert rep.total.errors == {"rate_limit": 1, "unknown": 1} and rep.total.unpriced == 3


def test_migrations_backfill_the_rollups_from_old_rows(tmp_path):
    import sqlite3

    from anvil.ledger.db import _COLUMNS, _params
    from anvil.ledger.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(MIGRATIONS[0][1] + "\nPRAGMA user_version = 1;")
    v1 = _COLUMNS[:_COLUMNS.index("demo") + 1]  # the columns of schema 1 (later ones came with migrations)
    insert = f"INSERT INTO attempts ({', '.join(v1)}, pico_usd) VALUES ({', '.join('?' for _ in v1)}, ?)"

    def v1_params(r):
        values = _params(r)
        return (*values[:len(v1)], values[-1])

    conn.executemany(insert, [v1_params(row("/r", dollars="0.25")), v1_params(row("/r", dollars=None))])
    conn.close()
    with Ledger(path) as led:  # migrates 1 -> 2
        daily = build_report(led.conn, ["model"], Filter(repo="/r"), source="daily")
        assert daily.total.dollars == Decimal("0.25") and daily.total.unpriced == 1 and daily.total.attempts == 2
        led.record(row("/r", dollars="0.5"))  # summed in by the next report's refresh
        assert build_report(led.conn, ["model"], Filter(repo="/r"), source="daily").total.dollars == Decimal("0.75")


def test_no_ledger_yet_is_an_empty_report_and_creates_nothing(tmp_path, _isolated_anvil_home):
    res = anvil(tmp_path, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["total"]["attempts"] == 0 and "no ledger yet" in res.stderr
    assert not (_isolated_anvil_home / "ledger.db").exists()


def test_rollups_catch_up_with_rows_written_between_reports(tmp_path, ledger_backend):
    from anvil.ledger.migrations import refresh_rollups

    with Ledger() as led, Ledger() as writer:
        writer.record(row("/r", dollars="0.1"))
        assert build_report(led.conn, ["stage"], Filter(repo="/r")).total.dollars == Decimal("0.1")
        for i in range(5):  # another process keeps writing; each report sees exactly what is there
            writer.record(row("/r", run=f"r{i}", dollars="0.2", stage="plan"))
            daily = build_report(led.conn, ["stage"], Filter(repo="/r"))
            runs = build_report(led.conn, ["run"], Filter(repo="/r"))
            raw = build_report(led.conn, ["stage"], Filter(repo="/r"), source="attempts")
            assert daily.total.to_json() == raw.total.to_json() == runs.total.to_json()
            assert daily.total.dollars == Decimal("0.1") + Decimal("0.2") * (i + 1)
        assert refresh_rollups(led.conn) == 0  # nothing new: nothing summed twice
