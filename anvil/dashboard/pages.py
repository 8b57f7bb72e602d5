"""The dashboard's HTML: plain server-rendered pages, escaped at every value.

Every link carries the session token (the server accepts no request without
it). The run page subscribes to its run's events with a few lines of JS
(static/live.js); without JS it is the same page, current as of its loading.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from anvil.dashboard.charts import Bar, day_chart, hbar_chart, money
from anvil.dashboard.data import Dashboard, Repo, RunRow, RunView, StageView
from anvil.ledger.report import Report
from anvil.run.store import RUN_STATUSES

CHARTS = ("day", "stage", "model", "provider")


class Links:
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, path: str, **params: str | None) -> str:
        q = {"token": self.token, **{k: v for k, v in params.items() if v}}
        return escape(f"{path}?{urlencode(q)}")


def layout(title: str, body: str, link: Links, *, script: bool = False) -> str:
    js = f'<script src="{link("/static/live.js")}" defer></script>' if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} · anvil</title>'
            f'<link rel="stylesheet" href="{link("/static/dashboard.css")}">{js}</head><body>'
            f'<header><a class="brand" href="{link("/")}">anvil</a>'
            f'<nav><a href="{link("/")}">runs</a><a href="{link("/costs")}">costs</a>'
            f'<a href="{link("/memory")}">memory</a></nav></header><main>{body}</main></body></html>')


def cost_text(d: Decimal | None, unpriced: int) -> str:
    if d is None or (unpriced and not d):
        return f"unknown ({unpriced})" if unpriced else "unknown"
    return money(d) + (f" + {unpriced} unpriced" if unpriced else "")


def _options(values: Iterable[tuple[str, str]], chosen: str | None) -> str:
    return "".join(f'<option value="{escape(v)}"{" selected" if v == (chosen or "") else ""}>{escape(t)}</option>'
                   for v, t in values)


def run_list(dash: Dashboard, link: Links, *, repo: str | None, status: str | None, since: str | None,
             until: str | None) -> str:
    repos = dash.repos()
    rows = dash.runs(repo, status, since, until)
    form = (f'<form class="filters" method="get" action="/">'
            f'<input type="hidden" name="token" value="{escape(link.token)}">'
            f'<label>repository <select name="repo">{_options([("", "all"), *((r.id, r.name) for r in repos)], repo)}'
            f'</select></label>'
            f'<label>status <select name="status">'
            f'{_options([("", "any"), *((s, s) for s in (*RUN_STATUSES, "unknown"))], status)}</select></label>'
            f'<label>from <input type="date" name="since" value="{escape(since or "")}"></label>'
            f'<label>to <input type="date" name="until" value="{escape(until or "")}"></label>'
            f'<button type="submit">filter</button></form>')
    body = [f"<h1>Runs <small>{len(rows)}</small></h1>", form]
    if not rows:
        body.append('<p class="empty">no runs match (start one with <code>anvil run "..."</code>)</p>')
    else:
        body.append('<table class="runs"><thead><tr><th>run</th><th>repository</th><th>request</th><th>status</th>'
                    '<th>stage</th><th class="num">cost</th><th>started</th></tr></thead><tbody>')
        body += [_run_row(r, link) for r in rows]
        body.append("</tbody></table>")
    return layout("runs", "".join(body), link)


def _run_row(r: RunRow, link: Links) -> str:
    req = r.request if len(r.request) <= 90 else r.request[:87] + "..."
    return (f'<tr data-run="{escape(r.id)}" data-status="{escape(r.status)}">'
            f'<td><a href="{link(f"/run/{r.repo.id}/{r.id}")}">{escape(r.id)}</a></td>'
            f'<td title="{escape(r.repo.path)}">{escape(r.repo.name)}</td><td>{escape(req) or "<em>-</em>"}</td>'
            f'<td><span class="status {escape(r.status)}">{escape(r.status)}</span></td>'
            f'<td>{escape(r.stage or "-")}</td><td class="num">{escape(cost_text(r.cost, r.unpriced))}</td>'
            f'<td>{escape(r.created.replace("T", " ").rstrip("Z"))}</td></tr>')


def stage_cost(s: StageView) -> str:
    return cost_text(s.dollars, s.unpriced) if s.attempts else ""


def _timeline(stages: list[StageView]) -> str:
    items = []
    for s in stages:
        secs = f"{s.seconds:.1f}s" if s.seconds is not None else ""
        items.append(f'<li class="stage {escape(s.status)}" data-stage="{escape(s.name)}">'
                     f'<a href="#stage-{escape(s.name)}"><b>{escape(s.name)}</b>'
                     f'<span class="st">{escape(s.status)}</span>'
                     f'<span class="model">{escape(s.model or "")}</span><span>{secs}</span>'
                     f'<span class="cost">{escape(stage_cost(s))}</span></a></li>')
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _attempts_table(s: StageView) -> str:
    if not s.attempts:
        return '<p class="empty">no model calls recorded</p>'
    rows = []
    for a in s.attempts:
        outcome = a.outcome if a.outcome == "ok" else f"{a.error_kind or 'error'}" + (
            f" {a.http_status}" if a.http_status else "")
        served = f" → {a.served_model}" if a.served_model and a.served_model != a.model else ""
        lat = f"{a.latency_s:.2f}s" if a.latency_s is not None else "-"
        rows.append(f'<tr class="{"ok" if a.outcome == "ok" else "err"}"><td>{a.attempt}</td>'
                    f'<td>{escape(a.model + served)}</td><td>{escape(a.provider)}</td><td>{escape(outcome)}</td>'
                    f'<td class="num">{a.input_tokens:,}</td><td class="num">{a.output_tokens:,}</td>'
                    f'<td class="num">{escape(money(a.dollars) if a.dollars is not None else a.cost_source)}</td>'
                    f'<td class="num">{lat}</td></tr>')
    return ('<table class="attempts"><thead><tr><th>#</th><th>model</th><th>provider</th><th>outcome</th>'
            '<th class="num">tokens in</th><th class="num">tokens out</th><th class="num">dollars</th>'
            f'<th class="num">latency</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _artifact(s: StageView) -> str:
    if s.artifact is None:
        return ""
    if s.artifact_name and s.artifact_name.endswith(".patch"):
        lines = []
        for line in s.artifact.splitlines():
            cls = "add" if line.startswith("+") and not line.startswith("+++") else \
                "del" if line.startswith("-") and not line.startswith("---") else \
                "hunk" if line.startswith("@@") else ""
            lines.append(f'<span class="{cls}">{escape(line)}</span>' if cls else escape(line))
        text = "\n".join(lines)
    else:
        text = escape(s.artifact)
    return (f'<details open class="artifact"><summary>{escape(s.artifact_name or "")}</summary>'
            f'<pre>{text}</pre></details>')


def _tool_calls(s: StageView) -> str:
    if not s.tool_calls:
        return ""
    items = "".join(f'<li><code>{escape(e.get("kind", ""))}</code> '
                    f'{escape(json.dumps({k: v for k, v in e.items() if k not in ("t", "kind", "stage")}))[:400]}</li>'
                    for e in s.tool_calls)
    return f'<h4>tool calls</h4><ul class="tools">{items}</ul>'


def _event_row(e: dict[str, Any]) -> str:
    rest = {k: v for k, v in e.items() if k not in ("t", "kind")}
    return (f'<li><time>{escape(str(e.get("t", "")))}</time> <code>{escape(str(e.get("kind", "")))}</code> '
            f'{escape(json.dumps(rest, ensure_ascii=False, default=str)[:300])}</li>')


def run_page(v: RunView, link: Links) -> str:
    status = escape(v.status)
    head = [f'<h1>{escape(v.id)} <span id="run-status" class="status {status}">{status}</span></h1>',
            f'<p class="request">{escape(v.request)}</p><dl class="meta">',
            f'<dt>repository</dt><dd>{escape(v.repo.path)}</dd>',
            f'<dt>cost</dt><dd id="run-cost">{escape(cost_text(v.dollars, v.unpriced))}</dd>']
    for label, value in (("branch", v.branch), ("pull request", v.pr_url), ("started", v.created),
                         ("updated", v.updated), ("error", v.error)):
        if value:
            head.append(f"<dt>{label}</dt><dd>{escape(value)}</dd>")
    head.append("</dl>")
    body = [*head, _timeline(v.stages)]
    for s in v.stages:
        if s.status == "pending" and not s.attempts:
            continue
        tried = [m for m in s.models if m != s.model]
        body.append(f'<section class="stage-detail" id="stage-{escape(s.name)}"><h2>{escape(s.name)} '
                    f'<span class="status {escape(s.status)}">{escape(s.status)}</span></h2>'
                    + (f'<p>answered by <b>{escape(s.model)}</b>'
                       + (f" after {escape(', '.join(tried))}" if tried else "") + "</p>" if s.model else "")
                    + (f'<p class="error">{escape(s.error)}</p>' if s.error else "")
                    + _attempts_table(s) + _tool_calls(s) + _artifact(s) + "</section>")
    live = v.events_path is not None
    body.append(f'<section><h2>events</h2><ol id="events" class="events" data-count="{len(v.events)}"'
                + (f' data-source="{link(f"/run/{v.repo.id}/{v.id}/events", **{"from": str(len(v.events))})}"'
                   if live else "")
                + f'>{"".join(_event_row(e) for e in v.events)}</ol></section>')
    return layout(v.id, "".join(body), link, script=live)


def _bars(report: Report | None, by: str) -> list[Bar]:
    if report is None:
        return []
    return [Bar(g.key.get(by) or "-", g.dollars, g.baseline, g.unpriced) for g in report.groups]


def costs_page(dash: Dashboard, link: Links, *, repo: str | None, since: str | None, until: str | None,
               demo: bool) -> str:
    reports = {by: dash.cost(by, repo, since, until, demo) for by in CHARTS}
    repos = dash.repos()
    form = (f'<form class="filters" method="get" action="/costs">'
            f'<input type="hidden" name="token" value="{escape(link.token)}">'
            f'<label>repository <select name="repo">{_options([("", "all"), *((r.id, r.name) for r in repos)], repo)}'
            f'</select></label>'
            f'<label>from <input type="date" name="since" value="{escape(since or "")}"></label>'
            f'<label>to <input type="date" name="until" value="{escape(until or "")}"></label>'
            f'<label><input type="checkbox" name="demo" value="1"{" checked" if demo else ""}> demo runs</label>'
            f'<button type="submit">show</button></form>')
    body = ["<h1>Costs</h1>", form]
    total = reports["stage"].total if reports["stage"] is not None else None
    if total is None:
        body.append('<p class="empty">no ledger yet: nothing has been called</p>')
        return layout("costs", "".join(body), link)
    summary = f'<p class="total">spent <b>{escape(cost_text(total.dollars, total.unpriced))}</b> in {total.calls} calls'
    if dash.baseline is not None:
        if total.saving is not None:
            summary += (f'; on <b>{escape(dash.baseline.id)}</b> the same tokens would have cost '
                        f'<b>{escape(money(total.baseline))}</b>: a saving of '
                        f'<b id="saving">{escape(money(total.saving))}</b>')
        else:
            summary += f"; the baseline {escape(dash.baseline.id)} could not price every call"
    body.append(summary + "</p>")
    body.append(day_chart("spend by day", _bars(reports["day"], "day")))
    for by in CHARTS[1:]:
        body.append(hbar_chart(f"spend by {by}", _bars(reports[by], by)))
    if dash.baseline is not None:
        body.append(f'<p class="legend"><span class="key spend"></span> spent '
                    f'<span class="key baseline"></span> {escape(dash.baseline.id)} for the same tokens</p>')
    return layout("costs", "".join(body), link)


def memory_page(dash: Dashboard, link: Links) -> str:
    body = ["<h1>Memory and conventions</h1>"]
    repos: list[Repo] = dash.repos()
    if not repos:
        body.append('<p class="empty">not recorded yet</p>')
    for r in repos:
        files = dash.memory(r)
        body.append(f'<section><h2 title="{escape(r.path)}">{escape(r.name)}</h2>')
        if not files:
            body.append('<p class="empty">not recorded yet</p>')
        for name, text in files:
            body.append(f'<details class="artifact"><summary>{escape(name)}</summary><pre>{escape(text)}</pre>'
                        f'</details>')
        body.append("</section>")
    return layout("memory", "".join(body), link)


def not_found(link: Links, what: str) -> str:
    return layout("not found", f'<h1>Not found</h1><p class="empty">{escape(what)}</p>', link)
