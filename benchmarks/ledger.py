"""Ledger benchmark: the insert path and `cost report` on a 1,000,000-row ledger.

    /work/venv/bin/python benchmarks/ledger.py [--rows 1000000] [--inserts 100000] [--keep DIR]

Prints rows/s for the walker's insert path (`Ledger.record`, one committed
transaction per attempt, as in a run) and for bulk `record_many`, the one-off
rollup catch-up, then the wall time of the report queries (`build_report`, what
`anvil cost report` runs; median of 5).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil.ledger import AttemptRow, Ledger  # noqa: E402
from anvil.ledger.report import Filter, build_report  # noqa: E402

STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")
MODELS = [("claude-sonnet-4-5", "anthropic"), ("gpt-4o", "openai"), ("gemini-2.5-pro", "google"),
          ("gemini-2.5-flash", "google"), ("qwen2.5-coder", "ollama"), ("deepseek-chat", "deepseek"),
          ("mystery-model", "lab")]
KINDS = ("rate_limit", "overloaded", "quota", "server", "timeout")


def rows(n: int, seed: int = 7):
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    repos = [f"/home/dev/repo{i}" for i in range(20)]
    for i in range(n):
        model, provider = MODELS[rnd.randrange(len(MODELS))]
        failed = rnd.random() < 0.05
        # most prompts are a few thousand tokens; one in twenty is a long-context call
        inp = 0 if failed else (rnd.randrange(100_000, 300_000) if rnd.random() < 0.05
                                else rnd.randrange(500, 30_000))
        out = 0 if failed else rnd.randrange(10, 4000)
        dollars = None if model == "mystery-model" and not failed else Decimal(rnd.randrange(0, 10**7)) / 10**9
        ts = start + timedelta(seconds=i * 30)
        yield AttemptRow(
            ts=ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), run_id=f"run-{i // 40}", repo=repos[(i // 4000) % 20],
            stage=STAGES[rnd.randrange(7)], attempt=1, chain_pos=0, provider=provider, provider_kind=provider,
            model=model, requested_model=model, served_model=model, outcome="error" if failed else "ok",
            error_kind=KINDS[rnd.randrange(5)] if failed else None, http_status=429 if failed else None,
            error_message=None, input_tokens=inp, cache_read_tokens=inp // 3, cache_write_tokens=0,
            output_tokens=out, reasoning_tokens=0, latency_s=1.2, ttft_s=0.3, dollars=dollars,
            cost_source="table" if dollars is not None else "unpriced", prices_version="0.2.3",
            request_id=None, demo=False)


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--inserts", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="keep the ledgers in this folder")
    ap.add_argument("--reuse", action="store_true", help="report only, on the big ledger kept by --keep")
    a = ap.parse_args()
    base = a.keep or Path(tempfile.mkdtemp(prefix="anvil-ledger-bench-"))
    if a.reuse:
        led = Ledger(base / "big.db")
        a.rows = led.conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return reports(led, a, base)

    # 1. the walker's insert path: one committed transaction per attempt
    led = Ledger(base / "insert.db")
    sample = list(rows(a.inserts, seed=1))
    t = time.perf_counter()
    for r in sample:
        led.record(r)
    dt = time.perf_counter() - t
    led.close()
    print(f"record():      {a.inserts:>9,} rows in {dt:6.2f} s  ({a.inserts / dt:>9,.0f} rows/s, one commit each)")

    # 2. bulk fill to the report size
    led = Ledger(base / "big.db")
    t = time.perf_counter()
    led.record_many(rows(a.rows))
    dt = time.perf_counter() - t
    print(f"record_many(): {a.rows:>9,} rows in {dt:6.2f} s  ({a.rows / dt:>9,.0f} rows/s)")
    led.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    led.conn.execute("ANALYZE")
    from anvil.ledger.migrations import refresh_rollups

    t = time.perf_counter()
    n = refresh_rollups(led.conn)
    dt = time.perf_counter() - t
    print(f"rollup refresh: {n:,} new rows summed in {dt:.2f} s (paid once, by the first report after them)")
    reports(led, a, base)


def reports(led: Ledger, a: argparse.Namespace, base: Path) -> None:

    from tests.walker_helpers import resolved

    baseline = resolved("claude-sonnet-4-5", kind="anthropic", price_list="anthropic")
    cases = [
        ("one repo, --by stage,model", ["stage", "model"], Filter(repo="/home/dev/repo3"), None),
        ("--all, --by stage,model", ["stage", "model"], Filter(), None),
        ("--all, --by day", ["day"], Filter(), None),
        ("--all, --by run (per-run rollup)", ["run"], Filter(), None),
        ("--all, --by provider, --baseline", ["provider"], Filter(), baseline),
        ("--all --since 2026-08-20, --by model", ["model"], Filter(since="2026-08-20"), None),
        ("--all --since 24h-style (raw rows)", ["model"], Filter(since="2026-12-01T10:00:00"), None),
        ("one repo, --by run (raw rows)", ["run"], Filter(repo="/home/dev/repo3"), None),
        ("--run RUN", ["stage"], Filter(run_id="run-12345"), None),
    ]
    daily = led.conn.execute("SELECT COUNT(*) FROM daily").fetchone()[0]
    print(f"daily rollup: {daily:,} rows for {a.rows:,} attempts")
    for name, by, flt, base_model in cases:
        secs, rep = timed(lambda by=by, flt=flt, base_model=base_model: build_report(led.conn, by, flt, base_model))
        print(f"report {name:<38} {secs * 1000:8.1f} ms  ({len(rep.groups):,} groups, "
              f"{rep.total.attempts:,} attempts, ${rep.total.dollars:.2f})")
    secs, _ = timed(lambda: build_report(led.conn, ["stage", "model"], Filter(), None, source="attempts"), 1)
    print(f"report {'--all --by stage,model from raw rows':<38} {secs * 1000:8.1f} ms  (for comparison)")
    led.close()
    size = (base / "big.db").stat().st_size
    print(f"ledger file: {size / 1e6:.0f} MB for {a.rows:,} rows ({base})")


if __name__ == "__main__":
    main()
