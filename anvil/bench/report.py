"""`anvil bench report DIR`: the table, `--json`, `--csv`, and the SVG written beside the results."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from anvil.bench.results import ResultRow
from anvil.bench.stats import Pair, PolicySummary, pairs, summarise
from anvil.bench.svg import frontier_svg

SVG_NAME = "frontier.svg"


def _money(value: Decimal | float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def policy_order(folder: Path) -> list[str]:
    """The bench's --policy order (from bench.json, or its shards' after a merge)."""
    import json

    try:
        doc = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    names = list(doc.get("policies") or [])
    for shard in doc.get("shards") or []:
        names += [n for n in shard.get("policies") or [] if n not in names]
    return names


def report_json(rows: list[ResultRow], svg: Path | None, order: list[str] | None = None) -> dict[str, Any]:
    summaries = summarise(rows, order)
    return {"policies": {s.policy: s.to_json() for s in summaries},
            "pairs": [p.to_json() for p in pairs(rows, order)],
            "svg": str(svg) if svg else None,
            "rows": [r.to_json() for r in rows]}


def report_csv(rows: list[ResultRow], order: list[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["policy", "tasks", "resolved", "errors", "resolved_rate", "ci95_low", "ci95_high", "dollars",
                "dollars_per_task", "dollars_per_resolved", "unpriced_calls", "input_tokens", "cache_read_tokens",
                "cache_write_tokens", "output_tokens", "wall_s_per_task", "failures_by_stage"])
    for s in summarise(rows, order):
        j = s.to_json()
        w.writerow([s.policy, s.tasks, s.resolved, s.errors, j["resolved_rate"], *j["resolved_ci95"], j["dollars"],
                    j["dollars_per_task"] or "", j["dollars_per_resolved"] or "", s.unpriced_calls,
                    *(s.tokens[k] for k in ("input", "cache_read", "cache_write", "output")),
                    j["wall_s_per_task"] or "", ";".join(f"{k}={v}" for k, v in s.failures.most_common())])
    return buf.getvalue()


def report_text(summaries: list[PolicySummary], pair_list: list[Pair], svg: Path | None) -> str:
    head = ["policy", "tasks", "resolved", "95% interval", "$/task", "$/resolved", "tokens in/cache/out",
            "time/task", "failures by stage"]
    body = []
    for s in summaries:
        lo, hi = s.interval
        j = s.to_json()
        body.append([s.policy, str(s.tasks) + (f" (+{s.errors} errors)" if s.errors else ""),
                     f"{s.resolved} ({s.rate:.0%})", f"{lo:.0%}-{hi:.0%}", _money(s.per_task),
                     _money(s.per_resolved) + (f" +{s.unpriced_calls} unpriced" if s.unpriced_calls else ""),
                     f"{s.tokens['input']:,}/{s.tokens['cache_read']:,}/{s.tokens['output']:,}",
                     f"{j['wall_s_per_task'] or 0:.1f}s",
                     ", ".join(f"{k} {v}" for k, v in s.failures.most_common()) or "-"])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [head, *body]]
    if pair_list:
        lines += ["", "paired (tasks both policies ran): both resolved / only A / only B / neither"]
        lines += [f"  {p.a} vs {p.b}: {p.both} / {p.only_a} / {p.only_b} / {p.neither}" for p in pair_list]
    if svg is not None:
        lines += ["", f"picture: {svg}"]
    return "\n".join(lines) + "\n"


def write_svg(folder: Path, rows: list[ResultRow], order: list[str] | None = None) -> Path:
    path = folder / SVG_NAME
    path.write_text(frontier_svg(summarise(rows, order)), encoding="utf-8")
    return path
