"""Issue 14, through real sockets and processes: money in flight (SIGKILL and Ctrl-C mid-stream),
hostile bytes (YAML alias bomb, JSON bomb, huge and negative usage, a 50 MB stream, a 20 MB error
body), races (8 processes opening a fresh ledger, runs racing for one branch) and damaged ledgers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.ledger import Ledger
from anvil.ledger.migrations import LATEST
from anvil.providers.scripted.server import Reply, ScriptedServer
from anvil.routing.walker import CallSite, Walker
from tests.e2e_helpers import interruptible
from tests.walker_helpers import priced, request, resolved, settings

REPO = Path(__file__).resolve().parent.parent
ANVIL = str(Path(sys.executable).with_name("anvil"))
SSE = [("content-type", "text/event-stream")]


def _chunk(text: str) -> str:
    return ('data: {"id":"c","object":"chat.completion.chunk","model":"served-1","choices":[{"index":0,'
            f'"delta":{{"content":{json.dumps(text)}}},"finish_reason":null}}]}}\n\n')


def _done(prompt: int = 11, completion: int = 7) -> str:
    return ('data: {"id":"c","object":"chat.completion.chunk","model":"served-1","choices":[{"index":0,'
            '"delta":{},"finish_reason":"stop"}]}\n\n'
            'data: {"id":"c","object":"chat.completion.chunk","model":"served-1","choices":[],'
            f'"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion}}}}}\n\n'
            "data: [DONE]\n\n")


def _openai_factory(url: str):
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings

    return lambda rm: make_provider(ProviderSettings(name=rm.provider_name, kind="openai", base_url=url + "/v1",
                                                     api_key="k"))


# A child process that makes one streamed call through the real walker, ledger and adapter.
CHILD = textwrap.dedent("""
    import sys
    from anvil.ledger import Ledger
    from anvil.providers.types import TextDelta
    from anvil.routing.walker import CallSite, Walker
    from tests.test_robust import _openai_factory
    from tests.walker_helpers import priced, request, settings

    db, url = sys.argv[1], sys.argv[2]
    seen = [0]

    def on_event(ev):
        if isinstance(ev, TextDelta):
            seen[0] += 1
            print("DELTA", seen[0], flush=True)

    w = Walker(settings(), ledger=Ledger(db), provider_factory=_openai_factory(url))
    w.call([priced("m1")], request("x" * 4000), CallSite("killed-stream", "build"), on_event=on_event)
    print("FINISHED", flush=True)
""")


def _slow_stream(n: int = 60, delay: float = 10.0) -> Reply:
    """~n * delay / 100 seconds on the `srv` fixture (its time runs 100x faster): 6 s by default."""
    return Reply.sse([_chunk(f"word{i} ") for i in range(n)] + [_done()], headers=SSE, chunk_delay=delay)


def _start_child(db: Path, srv: ScriptedServer) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), srv.url], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True, preexec_fn=interruptible)


def _read_until(proc: subprocess.Popen, marker: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line or line.startswith(marker):
            assert line, "the child ended early"
            return
    raise AssertionError(f"no {marker!r} from the child")


def test_sigkill_mid_stream_leaves_the_streamed_tokens_and_cost_report_settles_it(tmp_path, srv):
    srv.add(_slow_stream())
    db = tmp_path / "ledger.db"
    proc = _start_child(db, srv)
    _read_until(proc, "DELTA 15")  # ~1.5 s of streaming: the started row was updated on the way
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    with Ledger(db) as led:
        (row,) = led.attempts("killed-stream")
    assert (row["state"], row["error_kind"], row["estimated"], row["pid"]) == ("started", "in_flight", 1, proc.pid)
    assert row["input_tokens"] >= 1000  # 4,000 characters / 4, estimated before the call was sent
    assert row["output_tokens"] >= 3  # what had streamed at the last update, not 0
    assert Decimal(row["dollars"]) > 0  # priced on what was counted, never $0

    r = subprocess.run([ANVIL, "cost", "report", "--all", "--json"], capture_output=True, text=True,
                       cwd=tmp_path, env=dict(os.environ, ANVIL_HOME=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["interrupted"]["calls"] == 1 and out["total"]["errors"] == {"interrupted": 1}
    assert Decimal(out["total"]["dollars"]) == Decimal(row["dollars"])
    with Ledger(db) as led:
        (row,) = led.attempts("killed-stream")
    assert (row["state"], row["error_kind"]) == ("interrupted", "interrupted")


def test_ctrl_c_mid_stream_keeps_the_tokens_streamed_so_far(tmp_path, srv):
    srv.add(_slow_stream())
    db = tmp_path / "ledger.db"
    proc = _start_child(db, srv)
    _read_until(proc, "DELTA 8")
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    assert proc.returncode != 0
    with Ledger(db) as led:
        (row,) = led.attempts("killed-stream")
    assert (row["state"], row["error_kind"], row["estimated"]) == ("interrupted", "interrupted", 1)
    assert row["input_tokens"] >= 1000 and row["output_tokens"] >= 12  # 8+ deltas of 6 chars, / 4
    assert row["dollars"] is not None and Decimal(row["dollars"]) > 0  # not the old 0/0 tokens and $0


def test_a_finished_stream_settles_its_started_row_with_the_real_usage(tmp_path, srv):
    srv.add(_slow_stream(n=3, delay=0))
    with Ledger(tmp_path / "l.db") as led:
        w = Walker(settings(), ledger=led, provider_factory=_openai_factory(srv.url))
        w.call([priced("m1")], request("x" * 4000), CallSite("r", "build"))
        (row,) = led.attempts("r")
    assert (row["state"], row["outcome"], row["estimated"]) == ("settled", "ok", 0)
    assert (row["input_tokens"], row["output_tokens"]) == (11, 7)  # the provider's counts replace the estimate


# --------------------------------------------------------------------------- races

OPENER = textwrap.dedent("""
    import sys, time
    from anvil.ledger import Ledger
    from tests.test_ledger_db import row
    go = float(sys.argv[2])
    while time.time() < go:
        pass
    with Ledger(sys.argv[1]) as led:
        led.record(row())
    print("OK")
""")


@pytest.mark.parametrize("round_", range(3))
def test_eight_processes_open_a_fresh_ledger_at_once(tmp_path, round_):
    db = tmp_path / "fresh.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    go = time.time() + 2.0  # every process spins until the same instant, imports done
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(db), str(go)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e[-500:] for _, e in outs]
    assert not any("already exists" in e for _, e in outs)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 8
    con.close()


CLAIMER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from anvil.workspace.gitops import claim_worktree
    repo, run_id, base, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    while time.time() < go:
        pass
    path, branch = claim_worktree(repo, run_id, base, "anvil/add-search")
    print(branch)
""")


def test_runs_racing_for_one_branch_name_never_share_it(tmp_path):
    from tests.e2e_helpers import git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(["init", "-q", "-b", "main"], repo)
    (repo / "a.txt").write_text("a\n")
    git(["add", "-A"], repo)
    git(["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init"], repo)
    base = git(["rev-parse", "HEAD"], repo).strip()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    go = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(repo), f"run-{i}", base, str(go)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(5)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [e[-400:] for _, e in outs]
    branches = sorted(o.strip() for o, _ in outs)
    assert len(set(branches)) == 5 and "anvil/add-search" in branches
    for i in range(5):  # each worktree is on the branch its run was told
        wt = repo / ".anvil" / "runs" / f"run-{i}" / "worktree"
        assert git(["symbolic-ref", "--short", "HEAD"], wt).strip() == outs[i][0].strip()


# --------------------------------------------------------------------------- hostile bytes

BOMB = "".join(["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"]
               + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


@pytest.mark.parametrize("text,line", [(BOMB, 2), ("stages: &s {build: *s}\n", 1)])
def test_yaml_alias_bomb_in_a_repo_policy_is_refused_fast(tmp_path, text, line):
    from tests.e2e_helpers import git

    repo = tmp_path / "repo"
    (repo / ".anvil").mkdir(parents=True)
    git(["init", "-q", "-b", "main"], repo)
    (repo / ".anvil" / "stage-policy.yaml").write_text(text)
    t0 = time.monotonic()
    r = subprocess.run([ANVIL, "policy", "check"], cwd=repo, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, ANVIL_HOME=str(tmp_path / "home")))
    elapsed = time.monotonic() - t0
    assert elapsed < 10, elapsed  # was 32 s and 300 MB for 9 levels
    assert r.returncode != 0 and "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    assert f"stage-policy.yaml:{line}" in r.stderr and "aliases" in r.stderr


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_bomb_mid_stream_is_stream_broken_and_the_walk_moves_on(tmp_path, srv):
    bomb = ('data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
            f'"delta":{{"content":"x","bomb":{_nested(100_000)}}},"finish_reason":null}}]}}\n\n')
    srv.add(Reply.sse([_chunk("Hel"), bomb], headers=SSE), match=lambda_model("bad"), times=None)
    srv.add(Reply.sse([_chunk("fine"), _done()], headers=SSE), match=lambda_model("good"), times=None)
    with Ledger(tmp_path / "l.db") as led:
        w = Walker(settings(transient_retries=1), ledger=led, provider_factory=_openai_factory(srv.url),
                   sleep=lambda s: None)
        chain = [resolved("bad", "p1", price_list="openai"), resolved("good", "p1", price_list="openai")]
        walk = w.call(chain, request(), CallSite("bomb", "build"))
        rows = led.attempts("bomb")
    assert walk.result.text == "fine" and walk.model.id == "good"
    assert [(r["model"], r["error_kind"]) for r in rows] == [("bad", "stream_broken"), ("bad", "stream_broken"),
                                                             ("good", None)]


def lambda_model(name: str):
    from anvil.providers.scripted.server import Match

    return Match(model=name)


def test_json_bomb_as_a_structured_answer_is_an_invalid_answer_not_a_crash():
    from anvil.stages.schemas import AnswerInvalid, extract_json

    with pytest.raises(AnswerInvalid):
        extract_json('{"goal": ' + _nested(200_000) + "}")


@pytest.mark.parametrize("prompt,completion,flag", [(10**18, 5, "input_tokens=1000000000000000000"),
                                                    (-40, -5, "input_tokens=-40")])
def test_huge_and_negative_usage_is_clamped_recorded_and_flagged(tmp_path, srv, prompt, completion, flag):
    srv.add(Reply.sse([_chunk("hi"), _done(prompt, completion)], headers=SSE))
    with Ledger(tmp_path / "l.db") as led:
        w = Walker(settings(), ledger=led, provider_factory=_openai_factory(srv.url))
        w.call([priced("m1")], request(), CallSite("u", "build"))
        (row,) = led.attempts("u")
        total = led.spend("u").dollars
    assert row["state"] == "settled" and flag in row["flags"]
    assert 0 <= row["input_tokens"] <= 100_000_000 and row["output_tokens"] >= 0
    assert total >= 0  # never negative spend
    if prompt < 0:
        assert (row["input_tokens"], row["output_tokens"]) == (0, 0)


def test_a_50_mb_stream_is_cut_at_the_response_cap(srv):
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings, UpstreamError

    piece = _chunk("x" * 4000)
    chunks = [piece] * (50 * 1024 * 1024 // len(piece)) + [_done()]
    srv.add(Reply.sse(chunks, headers=SSE))
    p = make_provider(ProviderSettings("p", "openai", base_url=srv.url + "/v1", api_key="k"))
    t0 = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        p.chat(request().with_model("m"))  # max 4096 output tokens: an 8 MB cap
    assert info.value.kind == "stream_broken" and "cap" in info.value.message
    assert time.monotonic() - t0 < 30


def test_a_20_mb_error_body_is_read_only_to_its_cap(srv):
    from anvil.providers import make_provider
    from anvil.providers.types import ProviderSettings, UpstreamError

    body = '{"error":{"message":"upstream exploded","type":"server_error"},"pad":"' + "x" * (20 * 1024 * 1024) + '"}'
    srv.add(Reply.json(body, status=500))
    p = make_provider(ProviderSettings("p", "openai", base_url=srv.url + "/v1", api_key="k"))
    t0 = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        p.chat(request().with_model("m"))
    assert info.value.kind == "server" and info.value.status == 500
    assert time.monotonic() - t0 < 5  # was 27 s


# --------------------------------------------------------------------------- damaged ledgers


def _damage(home: Path, how: str) -> None:
    path = home / "ledger.db"
    if how == "directory":
        path.mkdir()
    elif how == "garbage":
        path.write_bytes(os.urandom(8192))
    elif how == "truncated":
        with Ledger(path) as led:
            from tests.test_ledger_db import row

            for _ in range(50):
                led.record(row())
        data = path.read_bytes()
        path.write_bytes(data[:100] + os.urandom(len(data) - 100))
        for extra in ("-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
    elif how == "newer":
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA user_version = {LATEST + 7}")
        con.close()


@pytest.mark.parametrize("how,hint", [("directory", "directory"), ("garbage", "move it aside"),
                                      ("truncated", "move it aside"), ("newer", "upgrade anvil")])
@pytest.mark.parametrize("command", [["cost", "report", "--all"], ["cost", "report", "--json"]])
def test_cost_report_on_a_damaged_ledger_is_a_clean_error(tmp_path, how, hint, command):
    home = tmp_path / "home"
    home.mkdir()
    _damage(home, how)
    r = subprocess.run([ANVIL, *command], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, ANVIL_HOME=str(home)))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "cannot open the cost ledger at" in r.stderr and hint in r.stderr, r.stderr


# --------------------------------------------------------------------------- kill during the test command


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait_for(predicate, timeout: float = 90.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
def test_sigkill_during_the_test_command_kills_it_and_resume_runs_only_the_command(tmp_path):
    """The tests the stage paid for survive the kill; the test command dies with anvil; resume
    does not ask a model for the tests again."""
    from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers
    from tests.e2e_helpers import start

    pipeline = ScriptedPipeline(example_answers())
    e2e = start(tmp_path, pipeline)
    marker = tmp_path / "command-started"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(textwrap.dedent(f"""
        import os, pathlib, subprocess, sys, time
        m = pathlib.Path({str(marker)!r})
        if not m.exists():  # the first run: a long test command (with a worker), killed mid-way
            worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
            m.write_text(f"{{os.getpid()}} {{worker.pid}}")
            time.sleep(300)
        sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]))
    """))
    try:
        e2e.init()
        cfg = e2e.repo / ".anvil" / "config.yaml"
        cfg.write_text("\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("test_command"))
                       + f"\ntest_command: {json.dumps(sys.executable + ' ' + str(sleeper))}\n")
        from anvil.config.trust import approve

        approve(e2e.repo, e2e.home)  # the user's own test command: approved, as `anvil trust` would
        proc = e2e.popen("run", REQUEST, "--yes")
        try:
            _wait_for(marker.exists, what="the test command")
            time.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        command_pid, worker_pid = (int(x) for x in marker.read_text().split())
        # the guard saw anvil go and killed the whole group, the worker included
        _wait_for(lambda: not _pid_alive(command_pid) and not _pid_alive(worker_pid), timeout=10,
                  what="the test command's group to die with anvil")
        run_id = next(r for r in os.listdir(e2e.repo / ".anvil" / "runs") if r[0].isdigit())
        state = e2e.state(run_id)
        assert state["stages"]["test"]["status"] == "running"
        assert state["stages"]["test"]["data"]["tests_written"] is True
        assert "tests_paid" in state["stages"]["test"]["data"]
        test_calls = pipeline.count("test")
        assert test_calls == 1

        r = e2e.anvil("resume", run_id, "--json")
        assert r.code == 0, r.stderr
    finally:
        e2e.server.stop()
    assert r.json()["status"] == "done"
    assert pipeline.count("test") == test_calls  # the tests were not bought twice
    rows = e2e.ledger_rows(run_id)
    assert [x["stage"] for x in rows].count("test") == 1
    assert all(x["state"] == "settled" for x in rows)


def test_a_row_settled_after_a_report_is_summed_into_the_rollups_exactly_once(tmp_path):
    from dataclasses import replace as _replace

    from anvil.ledger.report import Filter, build_report
    from tests.test_ledger_db import row

    with Ledger(tmp_path / "l.db") as led:
        led.record(row(dollars=Decimal("0.5")))
        rid = led.start(_replace(row(dollars=Decimal("0.01")), outcome="error", error_kind="in_flight"))
        daily = build_report(led.conn, ["stage"], Filter(), source="daily")  # the refresh passes the started row
        assert daily.total.dollars == Decimal("0.51") and daily.in_flight == 1  # in flight: added from the rows
        led.settle(rid, row(dollars=Decimal("0.25")))
        for source in ("daily", "run_daily", "attempts"):
            rep = build_report(led.conn, ["stage"] if source != "run_daily" else ["run"], Filter(), source=source)
            assert rep.total.dollars == Decimal("0.75") and rep.total.attempts == 2, source
            assert rep.in_flight == 0
