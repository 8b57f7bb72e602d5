"""Aggregations over the ledger for `anvil cost report`, `anvil show` and `anvil runs`.

Everything is summed in SQL (dollars as integer pico-dollars, so the sums are
exact and fast); Python only merges the per-group error kinds and prices the
optional baseline. Unknown dollars stay unknown: a group with unpriced calls
says how many, and its total is the known part only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from anvil.errors import UserError
from anvil.ledger.db import Ledger, dec_text, from_pico, ledger_exists
from anvil.ledger.migrations import BUCKET_STARTS, bucket_sql, refresh_rollups, unpriced_sql
from anvil.ledger.opening import open_ledger
from anvil.ledger.pricing import call_cost, price_list_id, table_model_info

if TYPE_CHECKING:
    from anvil.ledger.db import Ledger
    from anvil.providers.types import Usage
    from anvil.routing.resolver import ResolvedModel

# --by name -> SQL expression
GROUPS: dict[str, str] = {
    "stage": "stage",
    "model": "model",
    "provider": "provider",
    "run": "run_id",
    "day": "substr(ts, 1, 10)",
    "repo": "repo",
    "client": "client",  # served traffic (`anvil serve`)
    "session": "session",
    "preset": "preset",
    "task": "task",  # the benchmark task (anvil bench)
}
# kept by the attempts table only (no rollup has them): grouping by one reads the raw rows
_RAW_ONLY = frozenset({"run", "client", "session", "preset", "task"})
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
# unknown dollars that matter: tokens were used, or an answer came without usage (a tokenless
# failed attempt cost nothing)
UNPRICED_SQL = unpriced_sql()


@dataclass(frozen=True)
class Filter:
    since: str | None = None  # ISO prefix, inclusive
    until: str | None = None  # ISO prefix, exclusive
    run_id: str | None = None
    repo: str | None = None  # None: every repo
    demo: bool = False  # include rows written by `anvil demo`

    def where(self, time_column: str = "ts") -> tuple[str, list[Any]]:
        parts, args = [], []
        if self.repo is not None:
            parts.append("repo = ?")
            args.append(self.repo)
        if self.since:
            parts.append(f"{time_column} >= ?")
            args.append(self.since)
        if self.until:
            parts.append(f"{time_column} < ?")
            args.append(self.until)
        if self.run_id:
            parts.append("run_id = ?")
            args.append(self.run_id)
        if not self.demo:
            parts.append("demo = 0")
        return (" WHERE " + " AND ".join(parts)) if parts else "", args

    @property
    def whole_days(self) -> bool:
        return all(v is None or len(v) == 10 for v in (self.since, self.until))


def parse_since(text: str | None, now: datetime | None = None) -> str | None:
    """`2026-11-01`, `2026-11-01T12:00`, or an age: `7d`, `24h`, `30m` -> an ISO prefix."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    t = text.strip().lower()
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    if t[-1:] in units and t[:-1].isdigit():
        at = now - timedelta(**{units[t[-1]]: int(t[:-1])})
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _iso_date(text)


def parse_until(text: str | None) -> str | None:
    """A date is inclusive: `--until 2026-11-21` keeps all of the 21st."""
    if not text:
        return None
    iso = _iso_date(text)
    if len(iso) == 10:
        day = datetime.strptime(iso, "%Y-%m-%d") + timedelta(days=1)
        return day.strftime("%Y-%m-%d")
    return iso


def _iso_date(text: str) -> str:
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            d = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return d.strftime("%Y-%m-%d") if fmt == "%Y-%m-%d" else d.strftime("%Y-%m-%dT%H:%M:%S")
    raise UserError(f"cannot read the date {text!r}", hint="use YYYY-MM-DD, YYYY-MM-DDTHH:MM, or an age like 7d / 24h")


@dataclass
class Group:
    key: dict[str, str]
    attempts: int = 0
    calls: int = 0  # successful attempts: each served call ends with one
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    pico: int = 0  # known dollars, in pico-dollars (exact integer sums)
    unpriced: int = 0
    baseline: Decimal | None = None
    baseline_unpriced: bool = False

    @property
    def dollars(self) -> Decimal:
        return from_pico(self.pico) or Decimal(0)

    @property
    def saving(self) -> Decimal | None:
        return None if self.baseline is None else self.baseline - self.dollars

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.key)
        d.update(attempts=self.attempts, calls=self.calls, failed=self.failed, errors=dict(self.errors),
                 **self.tokens, dollars=dec_text(self.dollars), unpriced=self.unpriced)
        if self.baseline is not None or self.baseline_unpriced:
            d["baseline_dollars"] = None if self.baseline is None else dec_text(self.baseline)
            d["saving"] = None if self.saving is None else dec_text(self.saving)
        return d


@dataclass
class Report:
    by: list[str]
    groups: list[Group]
    total: Group
    baseline_model: str | None = None
    unpriced_reasons: dict[str, int] = field(default_factory=dict)  # cost_note -> calls
    interrupted: int = 0  # calls cut off (Ctrl-C, kill): priced on the tokens counted so far
    interrupted_tokens: int = 0
    in_flight: int = 0  # started rows whose call has not settled yet
    flagged: int = 0  # rows whose reported usage was out of range (clamped)


def _tier_starts(baseline: ResolvedModel) -> list[int]:
    """Input-size thresholds where the baseline's table price changes (long-context tiers)."""
    if getattr(baseline.model, "price", None) is not None:
        return []
    info = table_model_info(baseline.model.wire_name, price_list_id(baseline.provider))
    if info is None:
        return []
    prices = info.get_prices(datetime.now(UTC))
    starts: set[int] = set()
    for value in vars(prices).values():
        for tier in getattr(value, "tiers", None) or ():
            starts.add(int(tier.start))
    return sorted(starts)


def _baseline_cost(baseline: ResolvedModel, n: int, sums: dict[str, int]) -> Decimal | None:
    """What `n` calls with these summed tokens cost on the baseline model.

    Rows were bucketed by the baseline's tier thresholds, so inside a bucket the price is
    linear: n times the price of the average call (priced through the one price path).
    """
    if n == 0:
        return Decimal(0)
    # The average call has fractional (Decimal) counts; the price path only multiplies them.
    avg = cast("Usage", SimpleNamespace(**{k: Decimal(sums[k]) / n for k in TOKENS}))
    cost = call_cost(baseline.model, baseline.provider, avg)
    if cost.dollars is None or cost.source == "provider":
        return None
    return (cost.dollars * n).quantize(Decimal("1e-12")).normalize()


@dataclass(frozen=True)
class _Source:
    """One table to aggregate: the raw attempts, or the trigger-kept daily rollup."""

    table: str
    time_column: str
    groups: dict[str, str]
    attempts: str
    ok: str
    unpriced: str
    error_kind: str
    bucket: str


def _raw(starts: list[int]) -> _Source:
    return _Source("attempts", "ts", GROUPS, "COUNT(*)", "SUM(outcome = 'ok')", f"SUM({UNPRICED_SQL})",
                   "CASE WHEN outcome = 'ok' THEN '' ELSE COALESCE(error_kind, 'unknown') END",
                   bucket_sql("input_tokens", tuple(starts)))


_DAILY = _Source("daily", "day", {**{k: v for k, v in GROUPS.items() if k not in _RAW_ONLY}, "day": "day"},
                 "SUM(attempts)", "SUM(ok)", "SUM(unpriced)", "error_kind", "bucket")


_RUN_DAILY = _Source("run_daily", "day", {"run": "run_id", "day": "day", "repo": "repo"},
                     "SUM(attempts)", "SUM(ok)", "SUM(unpriced)", "error_kind", "bucket")


def _pick_source(by: list[str], flt: Filter, starts: list[int]) -> _Source:
    """A rollup answers unless a single run, a sub-day time, a grouping it lacks or an unknown
    tier threshold is involved; then the raw rows do (indexed by repo+time and by run)."""
    if flt.run_id is None and flt.whole_days and set(starts) <= set(BUCKET_STARTS):
        if set(by) <= set(_DAILY.groups):
            return _DAILY
        if set(by) <= set(_RUN_DAILY.groups):
            return _RUN_DAILY
    return _raw(starts)


def build_report(conn: Any, by: list[str], flt: Filter, baseline: ResolvedModel | None = None,
                 *, source: str | None = None) -> Report:
    """Aggregate the ledger (`source` forces "attempts", "daily" or "run_daily": tests, benchmarks)."""
    starts = _tier_starts(baseline) if baseline is not None else []
    src = {"attempts": _raw(starts), "daily": _DAILY, "run_daily": _RUN_DAILY}.get(
        source or "", None) or _pick_source(by, flt, starts)
    if src.table != "attempts":
        try:
            refresh_rollups(conn)  # sum what was written since the last report
        except getattr(conn, "OperationalError", sqlite3.OperationalError):
            if source is not None:
                raise
            src = _raw(starts)  # a read-only or busy ledger: the raw rows are still right
    groups: dict[tuple, Group] = {}
    total = Group({}, tokens={t: 0 for t in TOKENS})
    _sum_into(conn, src, by, flt, baseline, groups, total)
    if src.table != "attempts":  # the rollups never hold a call still in flight: add those from the rows
        _sum_into(conn, _raw(starts), by, flt, baseline, groups, total, extra="state = 'started'")
    if baseline is not None:
        for g in [*groups.values(), total]:
            if g.baseline_unpriced:
                g.baseline = None
    ordered = sorted(groups.values(), key=lambda g: (-g.pico, tuple(g.key.values())))
    if "day" in by:
        ordered.sort(key=lambda g: g.key["day"])
    report = Report(by, ordered, total, baseline.id if baseline is not None else None)
    _notes(conn, flt, report)
    return report


def _notes(conn: Any, flt: Filter, report: Report) -> None:
    """Why calls are unpriced, and how many were interrupted or are in flight (from the raw rows)."""
    where, args = flt.where()
    glue = " AND " if where else " WHERE "
    try:
        report.unpriced_reasons = {note: n for note, n in conn.execute(
            f"SELECT cost_note, COUNT(*) FROM attempts{where}{glue}pico_usd IS NULL AND cost_note IS NOT NULL "
            f"AND {UNPRICED_SQL} GROUP BY cost_note ORDER BY 2 DESC", args)}
        for state, n, toks in conn.execute(
                f"SELECT state, COUNT(*), SUM(input_tokens + output_tokens) FROM attempts{where}{glue}"
                "state != 'settled' GROUP BY state", args):  # the partial index attempts_started
            if state == "started":
                report.in_flight = n
            else:
                report.interrupted, report.interrupted_tokens = n, toks or 0
        report.flagged = conn.execute(f"SELECT COUNT(*) FROM attempts{where}{glue}flags IS NOT NULL",
                                      args).fetchone()[0]
    except sqlite3.OperationalError:  # a ledger from before schema 6 opened read-only
        pass


def _sum_into(conn: Any, src: _Source, by: list[str], flt: Filter, baseline: ResolvedModel | None,
              groups: dict[tuple, Group], total: Group, extra: str = "") -> None:
    keys = [src.groups[b] for b in by]
    where, args = flt.where(src.time_column)
    if extra:
        where += (" AND " if where else " WHERE ") + extra
    nk = len(keys)
    # one row per group (and per tier bucket when a baseline is priced): Python touches
    # as few rows as there are groups
    cols = [*(f"{k} AS k{i}" for i, k in enumerate(keys)), f"{src.bucket if baseline is not None else '0'} AS bucket"]
    # (no constant bucket term without a baseline: GROUP BY run_id / day can then follow the
    # rollup's primary key order instead of sorting)
    group = [*(f"k{i}" for i in range(nk)), *(["bucket"] if baseline is not None else [])]
    sql = (f"SELECT {', '.join(cols)}, {src.attempts}, {src.ok}, "
           f"{', '.join(f'SUM({t})' for t in TOKENS)}, SUM(pico_usd), {src.unpriced} "
           f"FROM {src.table}{where}" + (f" GROUP BY {', '.join(group)}" if group else ""))
    nt = len(TOKENS)
    for r in conn.execute(sql, args):
        key = tuple("" if v is None else str(v) for v in r[:nk])
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(dict(zip(by, key, strict=False)), tokens={t: 0 for t in TOKENS})
        attempts, ok = r[nk + 1], r[nk + 2] or 0
        toks = r[nk + 3:nk + 3 + nt]
        pico, unpriced = r[nk + 3 + nt] or 0, r[nk + 4 + nt] or 0
        for target in (g, total):
            target.attempts += attempts
            target.calls += ok
            target.failed += attempts - ok
            target.unpriced += unpriced
            target.pico += pico
            tt = target.tokens
            for t, v in zip(TOKENS, toks, strict=False):
                tt[t] += v or 0
        if baseline is not None:
            b = _baseline_cost(baseline, attempts, {t: v or 0 for t, v in zip(TOKENS, toks, strict=False)})
            for target in (g, total):
                if b is None:
                    target.baseline_unpriced = True
                else:
                    target.baseline = (target.baseline or Decimal(0)) + b
    # failures by kind: few rows, a second small query
    fail_where = where + (" AND " if where else " WHERE ") + f"{src.error_kind} != ''"
    err_sql = (f"SELECT {', '.join([*(f'{k} AS k{i}' for i, k in enumerate(keys)), f'{src.error_kind} AS ek'])}, "
               f"{src.attempts} - {src.ok} FROM {src.table}{fail_where} "
               f"GROUP BY {', '.join([*(f'k{i}' for i in range(nk)), 'ek'])}")
    for r in conn.execute(err_sql, args):
        key = tuple("" if v is None else str(v) for v in r[:nk])
        kind, n = r[nk], r[nk + 1] or 0
        for into in (groups.get(key), total):
            if into is not None and n:
                into.errors[kind] = target.errors.get(kind, 0) + n


def attempt_rows(conn: Any, flt: Filter, limit: int = 1000) -> list[dict[str, Any]]:
    """The individual attempts under a filter (for `--run RUN --json`), oldest first."""
    where, args = flt.where()
    cur = conn.execute(
        "SELECT ts, run_id, stage, attempt, chain_pos, provider, provider_kind, model, requested_model, "
        "served_model, outcome, error_kind, http_status, error_message, input_tokens, cache_read_tokens, "
        "cache_write_tokens, output_tokens, reasoning_tokens, latency_s, ttft_s, dollars, cost_source, "
        f"prices_version, state, estimated, flags, cost_note FROM attempts{where} ORDER BY id LIMIT ?",
        [*args, limit])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]


def run_summary(run_id: str, ledger: Ledger | None = None) -> dict[str, Any] | None:
    """A run's ledger view for `anvil show` / `anvil runs`: {"total", "calls", "unpriced"};
    None when there is no ledger yet (it is not created just to be read)."""
    if ledger is None and not ledger_exists():
        return None
    own = ledger is None
    led = ledger or open_ledger()
    try:
        spend = led.spend(run_id)
        calls = []
        for a in led.attempts(run_id):
            a = dict(a)
            a["cost"] = None if a["dollars"] is None else Decimal(a["dollars"])
            calls.append(a)
        return {"total": spend.dollars, "unpriced": spend.unpriced, "tokens": spend.tokens, "calls": calls}
    finally:
        if own:
            led.close()
