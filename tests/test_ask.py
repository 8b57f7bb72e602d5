"""`anvil ask` end to end: a real subprocess, a models.yaml in a tmp ANVIL_HOME, the scripted server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.providers.scripted.model import ScriptedFailure, ScriptedModel
from anvil.providers.scripted.server import Match, Reply, ScriptedServer

KEY = "sk-scripted-ask-0123456789"
# kind -> path under the scripted server that its adapter expects as base_url
BASES = {"anthropic": "", "openai": "/v1", "gemini": "", "ollama": "", "openrouter": "/api/v1",
         "openai_compatible": "/v1", "deepseek": "/v1", "groq": "/v1", "mistral": "/v1", "together": "/v1",
         "opencode": "/v1", "vllm": "/v1", "lmstudio": "/v1", "llamacpp": "/v1"}
LOCAL = {"ollama", "vllm", "lmstudio", "llamacpp"}  # free, and probed for availability


@pytest.fixture
def srv():
    with ScriptedServer(time_scale=0.01) as server:
        server.add(Reply.json({"models": []}), match=Match(path="/api/tags"), times=None)  # ollama probe
        server.add(Reply.json({"data": []}), match=Match(path="/v1/models"), times=None)  # vllm/lmstudio probe
        server.add(Reply.json({"status": "ok"}), match=Match(path="/v1/health"), times=None)  # llama.cpp
        server.add(Reply.json({"status": "ok"}), match=Match(path="/health"), times=None)
        yield server


def write_models(home: Path, srv: ScriptedServer, models: list[tuple[str, str, str, str]]) -> None:
    """models: (model id, provider name, kind, price yaml or '')."""
    lines = ["providers:"]
    for _, pname, kind, _ in models:
        lines += [f"  {pname}:", f"    kind: {kind}", f"    base_url: {srv.url}{BASES[kind]}"]
        if kind not in LOCAL:
            lines.append("    api_key_env: SCRIPTED_API_KEY")
    lines.append("models:")
    for mid, pname, _kind, price in models:
        lines += [f"  - id: {mid}", f"    provider: {pname}", "    tier: cheap",
                  "    capabilities: [reasoning, code, structured]", "    complexity_max: L"]
        if price:
            lines.append(f"    price: {price}")
    (home / "models.yaml").write_text("\n".join(lines) + "\n")


def anvil(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SCRIPTED_API_KEY=KEY)
    return subprocess.run([sys.executable, "-m", "anvil", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env, input=stdin)


PRICE = "{input: 1, output: 2}"


@pytest.mark.parametrize("kind", list(BASES))
def test_ask_each_provider_kind(srv, tmp_path, _isolated_anvil_home, kind):
    model = ScriptedModel("Hello from the scripted model.", usage={"input_tokens": 1000, "output_tokens": 50})
    srv.add_responder(model, match=Match(model="the-model"))
    write_models(_isolated_anvil_home, srv, [("the-model", "prov", kind, "" if kind in LOCAL else PRICE)])
    res = anvil(tmp_path, "ask", "Say hello.", "--model", "the-model", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["text"] == "Hello from the scripted model."
    assert data["model"] == "the-model" and data["usage"]["input_tokens"] == 1000
    if kind in LOCAL:
        assert data["cost_source"] == "free" and data["dollars"] == "0"
    else:
        # 1000 * $1/M + 50 * $2/M = 0.001 + 0.0001
        assert data["cost_source"] == "override" and data["dollars"] == "0.0011"
    assert len(model.requests) == 1
    assert KEY not in res.stdout + res.stderr


def test_ask_plain_output_and_stdin_prompt(srv, tmp_path, _isolated_anvil_home):
    model = ScriptedModel("The answer is 4.", usage={"input_tokens": 20, "output_tokens": 5})
    srv.add_responder(model, match=Match(model="m"))
    write_models(_isolated_anvil_home, srv, [("m", "prov", "openai", PRICE)])
    res = anvil(tmp_path, "ask", "-", "--model", "m", "--system", "Be brief.", stdin="What is 2+2?")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "The answer is 4.\n"
    assert "model m (prov)" in res.stderr and "tokens in 20" in res.stderr and "out 5" in res.stderr
    assert "$0.000030" in res.stderr and "override" in res.stderr
    body = model.requests[0].json
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "What is 2+2?" in json.dumps(body["messages"])


def test_ask_user_errors_are_one_line(srv, tmp_path, _isolated_anvil_home):
    write_models(_isolated_anvil_home, srv, [("m", "prov", "openai", PRICE)])
    res = anvil(tmp_path, "ask", "hi", "--model", "nope")
    assert res.returncode == 2 and "not in the catalogue" in res.stderr and "Traceback" not in res.stderr
    res = anvil(tmp_path, "ask", "-", "--model", "m", stdin="   ")
    assert res.returncode == 2 and "empty" in res.stderr
    res = anvil(tmp_path, "ask", "hi", "--stage", "lunch")
    assert res.returncode == 2 and "unknown stage" in res.stderr


def test_acceptance_429_burns_quota_burns_then_cost_report(srv, tmp_path, _isolated_anvil_home):
    """Issue 4: a long retry-after burns the model, insufficient_quota burns the provider without
    a retry, the next model answers, and `anvil cost report --json` shows the attempts."""
    limited = ScriptedModel("never", failures=[ScriptedFailure("rate_limit", retry_after=3600)])
    broke = ScriptedModel("never", failures=[ScriptedFailure("quota", times=9)])
    good = ScriptedModel("Answer from the third model.", usage={"input_tokens": 2000, "output_tokens": 100})
    srv.add_responder(limited, match=Match(model="m-limited"))
    srv.add_responder(broke, match=Match(model="m-broke"))
    srv.add_responder(good, match=Match(model="m-good"))
    write_models(_isolated_anvil_home, srv, [("m-limited", "limited", "anthropic", PRICE),
                                             ("m-broke", "broke", "openai", PRICE),
                                             ("m-good", "good", "openai", PRICE)])
    (_isolated_anvil_home / "stage-policy.yaml").write_text(
        "stages:\n  clarify:\n    prefer: null\n    chain: [m-limited, m-broke, m-good]\n")
    res = anvil(tmp_path, "ask", "Go.", "--stage", "clarify", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["text"] == "Answer from the third model." and data["model"] == "m-good"
    attempts = [(a["model"], a["outcome"], a["kind"], a["status"]) for a in data["attempts"]]
    assert attempts == [("m-limited", "error", "rate_limit", 429), ("m-broke", "error", "quota", 429),
                        ("m-good", "ok", None, None)]
    assert "burned model" in data["attempts"][0]["next"]
    assert "burned every model of provider broke" in data["attempts"][1]["next"]
    assert len(limited.requests) == 1 and len(broke.requests) == 1  # never retried

    rep = anvil(tmp_path, "cost", "report", "--json", "--by", "model", "--run", data["run_id"])
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    rows = {r["model"]: r for r in report["rows"]}
    assert rows["m-limited"]["errors"] == {"rate_limit": 1} and rows["m-limited"]["dollars"] == "0"
    assert rows["m-broke"]["errors"] == {"quota": 1} and rows["m-broke"]["dollars"] == "0"
    # 2000 * $1/M + 100 * $2/M = 0.002 + 0.0002
    assert rows["m-good"]["dollars"] == "0.0022" and rows["m-good"]["calls"] == 1
    assert report["total"]["failed"] == 2 and report["total"]["dollars"] == "0.0022"
    kinds = [(a["model"], a["outcome"], a["error_kind"], a["http_status"], a["dollars"])
             for a in report["attempts"]]
    assert kinds == [("m-limited", "error", "rate_limit", 429, "0"), ("m-broke", "error", "quota", 429, "0"),
                     ("m-good", "ok", None, None, "0.0022")]
    # outside a repo the report covers every repo: the same rows by stage
    by_stage = json.loads(anvil(tmp_path, "cost", "report", "--json", "--by", "stage").stdout)
    assert [r["stage"] for r in by_stage["rows"]] == ["ask"]


def test_exhausted_chain_exit_code_3_names_every_attempt(srv, tmp_path, _isolated_anvil_home):
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("auth", times=9)]), match=Match(model="a"))
    srv.add_responder(ScriptedModel("x", failures=[ScriptedFailure("model_not_found", times=9)]),
                      match=Match(model="b"))
    write_models(_isolated_anvil_home, srv, [("a", "pa", "openai", PRICE), ("b", "pb", "anthropic", PRICE)])
    (_isolated_anvil_home / "stage-policy.yaml").write_text(
        "stages:\n  clarify:\n    prefer: null\n    chain: [a, b]\n")
    res = anvil(tmp_path, "ask", "Go.")
    assert res.returncode == 3, res.stderr
    assert "a (pa): auth HTTP 401" in res.stderr and "b (pb): model_not_found HTTP 404" in res.stderr
    assert "Traceback" not in res.stderr and KEY not in res.stderr


def test_ask_streams_on_a_terminal(srv, tmp_path, _isolated_anvil_home):
    """stdout a TTY: deltas are written as they arrive (the answer is complete, once, with a newline)."""
    import pty
    import time
    from dataclasses import replace

    model = ScriptedModel("one two three four five six", usage={"input_tokens": 10, "output_tokens": 6})
    # each SSE event 0.25 s apart (x the server's time_scale 0.01), so streaming is visible in time
    srv.add_responder(lambda req: replace(model(req), chunk_delay=25), match=Match(model="m"))
    write_models(_isolated_anvil_home, srv, [("m", "prov", "anthropic", PRICE)])
    master, slave = pty.openpty()
    env = dict(os.environ, SCRIPTED_API_KEY=KEY)
    proc = subprocess.Popen([sys.executable, "-m", "anvil", "ask", "count", "--model", "m"], cwd=tmp_path,
                            stdout=slave, stderr=subprocess.PIPE, env=env, text=True)
    os.close(slave)
    out = b""
    arrivals: list[tuple[float, bytes]] = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        arrivals.append((time.monotonic(), chunk))
        out += chunk
    os.close(master)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert out.decode().replace("\r\n", "\n") == "one two three four five six\n"
    assert "model m (prov)" in err
    # the first words were on the terminal well before the last ones: written as they arrived
    first = next(t for t, c in arrivals if b"one" in c)
    last = next(t for t, c in arrivals if b"six" in c)
    assert last - first > 0.5, arrivals


def test_ask_claude_cli_reports_its_own_cost(tmp_path, _isolated_anvil_home):
    """A subscription CLI (a fake `claude` on PATH): its reported total is the cost, source `provider`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    payload = {"type": "result", "subtype": "success", "is_error": False, "result": "Hi from claude.",
               "session_id": "s", "total_cost_usd": 0.0123456,
               "usage": {"input_tokens": 4, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 9000,
                         "output_tokens": 85},
               "modelUsage": {"claude-sonnet-4-5-20250929": {"inputTokens": 4, "outputTokens": 85,
                                                             "costUSD": 0.0123456}}}
    script = bindir / "claude"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nsys.stdin.read()\nprint(json.dumps({payload!r}))\n")
    script.chmod(0o755)
    (_isolated_anvil_home / "models.yaml").write_text(
        "providers:\n  sub:\n    kind: claude_cli\n"
        "models:\n  - id: sonnet\n    provider: sub\n    tier: premium\n")
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    res = subprocess.run([sys.executable, "-m", "anvil", "ask", "hi", "--model", "sonnet", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["text"] == "Hi from claude." and data["cost_source"] == "provider"
    assert data["dollars"] == "0.0123456"
    # Anthropic-style usage converted: 4 + 1200 + 9000 = 10,204 input in all
    assert data["usage"]["input_tokens"] == 10_204 and data["usage"]["cache_read_tokens"] == 9000


def test_ask_without_the_key_says_which_variable(srv, tmp_path, _isolated_anvil_home):
    write_models(_isolated_anvil_home, srv, [("m", "prov", "openai", PRICE)])
    env = {k: v for k, v in os.environ.items() if k != "SCRIPTED_API_KEY"}
    res = subprocess.run([sys.executable, "-m", "anvil", "ask", "hi", "--model", "m"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=env)
    # "no usable model" exits 3 from ask as from run (one code per condition)
    assert res.returncode == 3 and "SCRIPTED_API_KEY" in res.stderr and "Traceback" not in res.stderr
    assert srv.requests == [] or all(r.path in ("/api/tags", "/v1/models", "/health") for r in srv.requests)
