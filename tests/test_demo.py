"""`anvil demo` end to end: the real console script in a subprocess, ANVIL_HOME in tmp, the
user's own repo as the working directory, real keys and policy files that must not be used."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ANVIL = str(Path(sys.executable).with_name("anvil"))
STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")
ARTIFACTS = ("clarify.md", "plan.json", "build.patch", "test.log", "validate.json", "review.md", "ship.json")
FAKE_KEY = "sk-users-real-key-must-never-be-sent"
# The user's own layer: were the demo to read it, build would go to a real vendor.
USER_POLICY = "stages:\n  build: {model: gpt-6-sol}\n  plan: {model: gpt-6-sol}\n"
USER_MODELS = "providers:\n  openai: {base_url: 'http://127.0.0.1:9/v1'}\n"


def git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def snapshot(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if d / n not in skip]
        for n in filenames + dirnames:
            p = d / n
            if p in skip:
                continue
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


@pytest.fixture
def world(tmp_path):
    home, anvil_home, tmp = tmp_path / "home", tmp_path / "anvil-home", tmp_path / "tmp"
    for d in (home, anvil_home, tmp):
        d.mkdir()
    (anvil_home / "stage-policy.yaml").write_text(USER_POLICY)
    (anvil_home / "models.yaml").write_text(USER_MODELS)
    user_repo = tmp_path / "my-project"
    user_repo.mkdir()
    (user_repo / "app.py").write_text("print('mine')\n")
    git(["init", "-q", "-b", "main"], user_repo)
    git(["-c", "user.name=u", "-c", "user.email=u@example.com", "add", "-A"], user_repo)
    git(["-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-q", "-m", "mine"], user_repo)
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_TOKEN")) and not k.startswith(("ANVIL_", "GIT_"))}
    env.update({"ANVIL_HOME": str(anvil_home), "HOME": str(home), "TMPDIR": str(tmp), "NO_COLOR": "1",
                "OPENAI_API_KEY": FAKE_KEY, "ANTHROPIC_API_KEY": FAKE_KEY,
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"})
    env.pop("PYTHONPATH", None)
    return tmp_path, user_repo, anvil_home, env


def anvil(env: dict[str, str], cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANVIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ledger_rows(anvil_home: Path, run_id: str) -> list[dict]:
    con = sqlite3.connect(anvil_home / "ledger.db")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))]
    finally:
        con.close()


def table_price(row: dict) -> Decimal:
    """The row's dollars recomputed straight from genai-prices (not through anvil's pricing code)."""
    from datetime import datetime

    from genai_prices import Usage, calc_price

    when = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
    provider = "anthropic" if row["model"].startswith("claude") else "openai"
    usage = Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                  cache_read_tokens=row["cache_read_tokens"], cache_write_tokens=row["cache_write_tokens"])
    return calc_price(usage, row["served_model"] or row["requested_model"], provider_id=provider,
                      genai_request_timestamp=when).total_price


def test_demo_runs_the_whole_pipeline_and_leaves_the_user_alone(world):
    tmp_path, user_repo, anvil_home, env = world
    demo = tmp_path / "demo"
    user_files = {p: p.read_bytes() for p in (anvil_home / "stage-policy.yaml", anvil_home / "models.yaml")}
    head = git(["rev-parse", "HEAD"], user_repo)
    before = snapshot(tmp_path, (demo, anvil_home))

    p = anvil(env, user_repo, "demo", "--dir", str(demo), "--json")
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout)
    screen = " ".join(p.stderr.split())  # lines wrap at the console width
    run_id, branch = out["run_id"], out["branch"]
    assert out["demo"] is True and out["scripted"] is True and out["status"] == "done"
    assert out["repo"] == str(demo)

    # the screen: scripted at the start and the end, routing, the burn, the retry, the finding, the cost
    assert screen.lower().count("scripted") >= 2
    assert screen.index("The model server is scripted") < screen.index("Routing") < screen.index("clarify ")
    assert "429 rate_limit" in screen and "burned for this run" in screen
    assert "retry 1/3 (tests failed) → model gpt-5.4-mini" in screen
    assert "FAILED tests/test_search.py::test_search_ignores_case" in screen
    assert "minor src/tasklist/store.py:71 an empty word matches every task" in screen
    assert "on claude-opus-5-5" in screen and "saving" in screen
    assert f"anvil show {run_id}" in screen and f"anvil cost report --run {run_id} --demo" in screen

    # the branch: one commit on top of main with the feature and its tests, trailers naming the models
    log = git(["log", "--format=%H %s", f"main..{branch}"], demo).splitlines()
    assert len(log) == 1 and log[0].split(" ", 1)[0] == out["commit"]
    assert log[0].split(" ", 1)[1].startswith("feat(cli): add a search command")
    assert len(git(["log", "--format=%H", "main"], demo).splitlines()) == 1
    body = git(["log", "-1", "--format=%B", branch], demo)
    assert "Anvil-Model-Plan: claude-opus-5-5" in body and "Anvil-Model-Build: gpt-5.4-mini" in body
    assert set(git(["diff", "--name-only", f"main..{branch}"], demo).split()) == {
        "src/tasklist/cli.py", "src/tasklist/store.py", "tests/test_search.py"}
    assert "casefold" in git(["show", f"{branch}:src/tasklist/store.py"], demo)
    assert git(["status", "--porcelain"], demo) == ""

    # every stage done, with its artifact
    run_dir = demo / ".anvil" / "runs" / run_id
    state = json.loads((run_dir / "state.json").read_text())
    assert [state["stages"][s]["status"] for s in STAGES] == ["done"] * 7
    for name in ARTIFACTS:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert "1 failed" in (run_dir / "test.log").read_text() or "passed" in (run_dir / "test.log").read_text()

    # the ledger: one demo row per attempt (the 429 included), priced from the table or free
    rows = ledger_rows(anvil_home, run_id)
    assert [(r["stage"], r["model"], r["outcome"]) for r in rows] == [
        ("clarify", "gpt-5.4-nano", "error"), ("clarify", "gpt-5.4-mini", "ok"),
        ("plan", "claude-opus-5-5", "ok"), ("build", "ollama/qwen3-coder-30b", "ok"),
        ("test", "ollama/qwen3-coder-30b", "ok"), ("build", "gpt-5.4-mini", "ok"),
        ("validate", "ollama/qwen3-coder-30b", "ok"), ("review", "claude-opus-5-5", "ok"),
        ("ship", "ollama/qwen3-coder-30b", "ok")]
    assert all(r["demo"] == 1 for r in rows)
    assert all(r["provider"].startswith("demo-") for r in rows)
    burned = rows[0]
    assert burned["error_kind"] == "rate_limit" and burned["http_status"] == 429
    for r in rows:
        if r["model"].startswith("ollama/"):
            assert r["cost_source"] == "free" and Decimal(r["dollars"]) == 0
        else:
            assert r["cost_source"] == "table" and r["prices_version"]
            if r["outcome"] == "ok":
                assert Decimal(r["dollars"]) > 0
                assert Decimal(r["dollars"]) == table_price(r)
    total = sum(Decimal(r["dollars"]) for r in rows)
    assert Decimal(out["spend"]) == total
    assert (
        Decimal(out["baseline_dollars"]) > total and Decimal(out["saving"]) == Decimal(out["baseline_dollars"]) - total
    )

    # cost report: demo rows only with --demo
    plain = json.loads(anvil(env, demo, "cost", "report", "--json").stdout)
    assert plain["rows"] == [] and plain["total"]["attempts"] == 0
    plain_run = json.loads(anvil(env, demo, "cost", "report", "--run", run_id, "--json").stdout)
    assert plain_run["rows"] == []
    with_demo = json.loads(anvil(env, user_repo, "cost", "report", "--run", run_id, "--demo", "--json").stdout)
    assert with_demo["total"]["attempts"] == len(rows)
    assert Decimal(with_demo["total"]["dollars"]) == total

    # `anvil show` works in the demo repo
    shown = anvil(env, demo, "show", run_id)
    assert shown.returncode == 0, shown.stderr

    # nothing written outside --dir and ANVIL_HOME; the user's repo and policy files untouched
    assert snapshot(tmp_path, (demo, anvil_home)) == before
    assert git(["rev-parse", "HEAD"], user_repo) == head and git(["status", "--porcelain"], user_repo) == ""
    assert {p: p.read_bytes() for p in user_files} == user_files
    assert FAKE_KEY not in "".join(f.read_text(errors="replace") for f in run_dir.rglob("*") if f.is_file())


def test_demo_fast_path_and_picture(world):
    """--no-tests (anvil's small runner instead of pytest) tells the same story; --svg saves the screen;
    a proxy in the environment (a dead one here) does not catch the loopback model server."""
    tmp_path, user_repo, anvil_home, env = world
    env = {**env, "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    demo, svg = tmp_path / "demo2", tmp_path / "pictures" / "demo.svg"
    p = anvil(env, user_repo, "demo", "--dir", str(demo), "--no-tests", "--svg", str(svg))
    assert p.returncode == 0, p.stderr[-4000:] + p.stdout[-4000:]
    assert "anvil.demo.testrunner" in p.stdout and "FAILED tests/test_search.py" in p.stdout
    text = svg.read_text()
    assert text.startswith("<svg") and "scripted" in text and "claude-opus-5-5" in text

    # a folder with work in it is refused, cleanly
    p = anvil(env, user_repo, "demo", "--dir", str(user_repo))
    assert p.returncode == 2 and "not empty" in p.stderr and "Traceback" not in p.stderr
