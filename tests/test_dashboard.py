"""`anvil dashboard`: the real server as a subprocess over loopback, real scripted runs, and the
pages read in a real headless chromium (the run list, a run page, a live run, the cost charts)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from anvil.dashboard.charts import Bar, day_chart, hbar_chart
from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers
from tests.browser_helpers import DashboardProcess, browser
from tests.e2e_helpers import ANVIL, E2E, start

STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")


def _shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots go to a tmp dir, or to $DASHBOARD_SHOTS when set (to refresh docs/)."""
    where = os.environ.get("DASHBOARD_SHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        return Path(where)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def done_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, str]]:
    """One finished scripted run (a failing first build fixed on retry) in a fresh home."""
    tmp = tmp_path_factory.mktemp("dash")
    env = start(tmp, ScriptedPipeline(example_answers(failing_first_build=True)))
    try:
        env.init()
        out = env.run_ok()
        yield env, out["run_id"]
    finally:
        env.server.stop()


@pytest.fixture(scope="module")
def dashboard(done_run: tuple[E2E, str]) -> Iterator[DashboardProcess]:
    env, _ = done_run
    d = DashboardProcess(ANVIL, env.repo, env.env)
    yield d
    d.stop()


# ------------------------------------------------------------------ the server, without a browser


def test_every_request_needs_the_token_and_a_loopback_host(dashboard: DashboardProcess) -> None:
    for path in ("/", "/costs", "/memory", "/static/live.js"):
        r = httpx.get(dashboard.base + path, trust_env=False)
        assert r.status_code == 401, path
        assert "token" in r.text
        assert httpx.get(f"{dashboard.base}{path}?token=wrong", trust_env=False).status_code == 401
    ok = httpx.get(dashboard.url, trust_env=False)
    assert ok.status_code == 200 and "<h1>Runs" in ok.text
    assert "default-src 'none'" in ok.headers["content-security-policy"]
    # a DNS-rebinding page reaches the server under another name: refused even with the token
    assert httpx.get(dashboard.url, headers={"Host": "evil.example:80"}, trust_env=False).status_code == 403
    # read-only
    assert httpx.post(dashboard.url, trust_env=False).status_code == 405


def test_run_list_filters_and_json_free_html(dashboard: DashboardProcess, done_run: tuple[E2E, str]) -> None:
    _, run_id = done_run
    page = httpx.get(dashboard.url, trust_env=False).text
    assert run_id in page and "done" in page
    assert run_id not in httpx.get(dashboard.link("/?status=failed"), trust_env=False).text
    assert run_id not in httpx.get(dashboard.link("/?since=2999-01-01"), trust_env=False).text
    assert run_id in httpx.get(dashboard.link("/?status=done&since=2000-01-01"), trust_env=False).text
    assert httpx.get(dashboard.link("/run/nope/nope"), trust_env=False).status_code == 404


def test_events_stream_replays_a_finished_run_and_ends(dashboard: DashboardProcess, done_run: tuple[E2E, str]) -> None:
    env, run_id = done_run
    page = httpx.get(dashboard.url, trust_env=False).text
    href = page.split('href="/run/')[1].split('"')[0].replace("&amp;", "&")
    repo_id = href.split("/")[0]
    lines = (env.run_dir(run_id) / "events.jsonl").read_text().splitlines()
    with httpx.stream("GET", dashboard.link(f"/run/{repo_id}/{run_id}/events?from=0"), trust_env=False,
                      timeout=20) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    data = [json.loads(x[6:]) for x in body.splitlines() if x.startswith("data: {") and '"kind"' in x]
    assert [e["kind"] for e in data] == [json.loads(x)["kind"] for x in lines]
    assert "event: state" in body and body.rstrip().endswith("event: end\ndata: {}")


def test_bad_port_is_a_user_error(tmp_path: Path) -> None:
    import subprocess

    p = subprocess.run([ANVIL, "dashboard", "--port", "70000"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "not a port number" in p.stderr and "Traceback" not in p.stderr


def test_charts_are_svg_with_one_bar_per_group() -> None:
    bars = [Bar("plan", Decimal("0.0123"), Decimal("0.05")), Bar("build", Decimal("0.002"), None, unpriced=1)]
    svg = hbar_chart("spend by stage", bars)
    assert svg.startswith("<svg") and svg.count('class="bar"') == 2
    assert "saving $0.0377" in svg and "1 unpriced" in svg
    assert day_chart("spend by day", [Bar("2026-12-01", Decimal("1"))]).count("<rect") == 1
    assert "no calls recorded" in hbar_chart("x", [])


# ------------------------------------------------------------------ in a real browser


@pytest.mark.browser
def test_run_list_and_run_page_in_chromium(dashboard: DashboardProcess, done_run: tuple[E2E, str],
                                           tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env, run_id = done_run
    shots = _shots(tmp_path_factory)
    with browser(tmp_path / "profile") as ctx:
        page = ctx.new_page()
        page.goto(dashboard.url)
        row = page.locator(f'tr[data-run="{run_id}"]')
        assert row.get_attribute("data-status") == "done"
        assert "add a search command" in row.inner_text()
        page.screenshot(path=str(shots / "runs.png"), full_page=True)

        row.locator("a").click()
        page.wait_for_selector("ol.timeline")
        assert page.locator("ol.timeline li").evaluate_all("els => els.map(e => e.dataset.stage)") == list(STAGES)
        assert page.locator("ol.timeline li.done").count() == 7
        build = page.locator("#stage-build")
        # the failing first build and its retry: two attempts with models, tokens and dollars
        assert build.locator("table.attempts tbody tr").count() >= 2
        text = build.inner_text()
        assert "scripted-" in text and "$" in text
        assert "build.patch" in text and "+" in build.locator("pre").inner_text()
        assert page.locator("#stage-plan pre").inner_text().lstrip().startswith("{")
        assert "test.log" in page.locator("#stage-test").inner_text()
        assert "review.md" in page.locator("#stage-review").inner_text()
        assert page.locator("#events li").count() == len((env.run_dir(run_id) / "events.jsonl").read_text()
                                                         .splitlines())
        page.screenshot(path=str(shots / "run.png"), full_page=False)


@pytest.mark.browser
def test_cost_charts_render_in_chromium(dashboard: DashboardProcess, tmp_path: Path,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    shots = _shots(tmp_path_factory)
    with browser(tmp_path / "profile") as ctx:
        page = ctx.new_page()
        page.goto(dashboard.link("/costs"))
        charts = page.locator("svg.chart")
        assert charts.count() == 4
        names = charts.evaluate_all("els => els.map(e => e.dataset.chart)")
        assert names == ["spend by day", "spend by stage", "spend by model", "spend by provider"]
        stage_bars = page.locator('svg[data-chart="spend by stage"] g.bar')
        assert set(stage_bars.evaluate_all("els => els.map(e => e.dataset.label)")) >= {"plan", "build", "review"}
        box = page.locator('svg[data-chart="spend by stage"] rect.spend').first.bounding_box()
        assert box is not None and box["width"] >= 1  # drawn, not just in the markup
        assert page.locator("svg.chart rect.baseline").count() >= 3  # the baseline beside each bar
        saving = page.locator("#saving").inner_text()
        assert saving.startswith("$") and Decimal(saving[1:]) > 0
        page.screenshot(path=str(shots / "costs.png"), full_page=True)
        page.goto(dashboard.link("/memory"))
        assert "not recorded yet" in page.inner_text("main")


@pytest.mark.browser
@pytest.mark.e2e
def test_live_run_page_updates_while_the_run_goes(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    shots = _shots(tmp_path_factory)
    pipeline = ScriptedPipeline(example_answers(), delays={"plan": 2.0, "review": 2.0})
    env = start(tmp_path, pipeline)
    dash = None
    proc = None
    try:
        env.init()
        dash = DashboardProcess(ANVIL, env.repo, env.env)
        proc = env.popen("run", REQUEST, "--yes", "--json")
        runs = env.repo / ".anvil" / "runs"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(runs.glob("*/state.json")):
            time.sleep(0.05)
        run_id = next(runs.glob("*/state.json")).parent.name
        with browser(tmp_path / "profile") as ctx:
            page = ctx.new_page()
            page.goto(dash.url)
            page.locator(f'tr[data-run="{run_id}"] a').click()
            page.wait_for_selector('body[data-live="on"]')
            loaded_with = int(page.locator("#events").get_attribute("data-count") or 0)
            assert page.locator("#run-status").inner_text() == "running"
            assert page.locator("ol.timeline li.done").count() < 7
            page.evaluate("window.__same_page = true")  # proves no reload happened
            page.wait_for_selector('ol.timeline li[data-stage="build"].done', timeout=60000)
            page.screenshot(path=str(shots / "live.png"))
            page.wait_for_selector('body[data-live="ended"]', state="attached", timeout=90000)
            assert page.evaluate("window.__same_page") is True
            assert page.locator("#run-status").inner_text() == "done"
            assert page.locator("ol.timeline li.done").count() == 7
            assert page.locator('ol.timeline li[data-stage="review"] .model').inner_text() == "scripted-premium"
            assert page.locator('ol.timeline li[data-stage="review"] .cost').inner_text().startswith("$")
            assert page.locator("#events li.new").count() > 0
            assert page.locator("#events li").count() > loaded_with
        assert proc.wait(timeout=60) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if dash is not None:
            dash.stop()
        env.server.stop()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
