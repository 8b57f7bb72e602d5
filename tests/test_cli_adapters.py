"""The subscription-CLI adapters against fake `claude` / `gemini` / `codex` executables.

Each fake is a small real script put first on PATH: it records its argv, cwd
and stdin, then prints the JSON shape the real CLI prints (or sleeps, or
fails). Real subprocesses, real pipes, real process groups; no mocks.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.providers import make_provider
from anvil.providers.cli_base import CliNotFoundError, render_prompt
from anvil.providers.types import (
    ChatRequest,
    Message,
    ProviderSettings,
    ReasoningDelta,
    TextDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
)


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("ANVIL_HOME", str(tmp_path / "anvil-home"))
    return d


def fake_cli(bindir: Path, name: str, body: str) -> Path:
    """Write an executable python script `name` whose body sees `argv`, `prompt`, `record`."""
    script = bindir / name
    log = bindir / f"{name}.calls.jsonl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        "argv = sys.argv[1:]\n"
        "prompt = sys.stdin.read()\n"
        f"with open({str(log)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'argv': argv, 'prompt': prompt, 'cwd': os.getcwd()}) + '\\n')\n"
        + textwrap.dedent(body)
    )
    script.chmod(0o755)
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def request(**kw) -> ChatRequest:
    base = dict(
        model=kw.pop("model", "sonnet"),
        messages=(
            Message("system", "You are terse."),
            Message("user", "Say hello."),
        ),
        timeout=kw.pop("timeout", 20.0),
    )
    base.update(kw)
    return ChatRequest(**base)


def provider(kind: str, **options):
    return make_provider(ProviderSettings(name=f"my-{kind}", kind=kind, options=options))


# --- claude -------------------------------------------------------------------------

CLAUDE_OK = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 2310,
    "duration_api_ms": 2101,
    "num_turns": 1,
    "result": "Hello!",
    "session_id": "5f0c-fake",
    "total_cost_usd": 0.0123456,
    "usage": {
        "input_tokens": 4,
        "cache_creation_input_tokens": 1200,
        "cache_read_input_tokens": 9000,
        "output_tokens": 85,
        "server_tool_use": {"web_search_requests": 0},
        "service_tier": "standard",
    },
    "modelUsage": {
        "claude-haiku-4-5-20251001": {"inputTokens": 300, "outputTokens": 5, "costUSD": 0.0003},
        "claude-sonnet-4-5-20250929": {"inputTokens": 4, "outputTokens": 80, "costUSD": 0.012},
    },
    "permission_denials": [],
}


def test_claude_json_result_usage_and_cost(bindir: Path) -> None:
    log = fake_cli(bindir, "claude", f"print(json.dumps({CLAUDE_OK!r}))\n")
    events: list = []
    result = provider("claude_cli").chat(request(), events.append)

    assert result.text == "Hello!"
    assert result.finish_reason == "stop"
    # Anthropic convention converted: input includes both cache parts
    assert result.usage == Usage(
        input_tokens=4 + 1200 + 9000, output_tokens=85, cache_read_tokens=9000, cache_write_tokens=1200
    )
    assert result.provider_cost == Decimal("0.0123456")
    assert isinstance(result.provider_cost, Decimal)
    assert result.served_model == "claude-sonnet-4-5-20250929"
    assert result.request_id == "5f0c-fake"
    assert TextDelta("Hello!") in events and UsageUpdate(result.usage) in events

    (call,) = calls(log)
    argv = call["argv"]
    assert argv[:3] == ["-p", "--output-format", "json"]
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--system-prompt") + 1] == "You are terse."
    assert call["prompt"] == "Say hello."  # the prompt goes on stdin, not argv
    assert "Say hello." not in argv
    # run in a scratch directory, never in the caller's working tree
    assert Path(call["cwd"]).resolve() != Path.cwd().resolve()
    assert "anvil-cli-" in call["cwd"]


def test_claude_stream_json_emits_deltas(bindir: Path) -> None:
    lines = [
        {"type": "system", "subtype": "init", "model": "claude-sonnet-4-5-20250929", "session_id": "s1"},
        {"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": "Hel"}}},
        {"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": "lo!"}}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Hello!"}]}},
        dict(CLAUDE_OK, modelUsage=None),
    ]
    body = "".join(f"print(json.dumps({line!r}), flush=True)\n" for line in lines)
    log = fake_cli(bindir, "claude", body)
    events: list = []
    result = provider("claude_cli", output_format="stream-json").chat(request(), events.append)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo!"]
    assert result.text == "Hello!"
    assert result.served_model == "claude-sonnet-4-5-20250929"  # from the init event
    assert result.ttft_s is not None
    argv = calls(log)[0]["argv"]
    assert "stream-json" in argv and "--verbose" in argv


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("API Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}", "rate_limit"),
        ("Credit balance is too low", "quota"),
        ("Claude AI usage limit reached|1767225600", "quota"),
        ("Invalid API key · Please run /login", "auth"),
        ("API Error: 529 Overloaded", "overloaded"),
        ("API Error: 400 prompt is too long: 210000 tokens > 200000 maximum", "context_overflow"),
    ],
)
def test_claude_is_error_result_is_classified(bindir: Path, message: str, kind: str) -> None:
    payload = dict(CLAUDE_OK, is_error=True, result=message)
    fake_cli(bindir, "claude", f"print(json.dumps({payload!r}))\nsys.exit(1)\n")
    with pytest.raises(UpstreamError) as info:
        provider("claude_cli").chat(request())
    assert info.value.kind == kind
    assert message.split(" ")[0] in info.value.message
    assert info.value.provider == "my-claude_cli"


def test_claude_nonzero_exit_without_json_carries_stderr_tail(bindir: Path) -> None:
    fake_cli(bindir, "claude", "sys.stderr.write('x' * 5000 + '\\nError: not logged in\\n')\nsys.exit(2)\n")
    with pytest.raises(UpstreamError) as info:
        provider("claude_cli").chat(request())
    assert info.value.kind == "auth"
    assert "exited with status 2" in info.value.message
    assert "not logged in" in info.value.message
    assert len(info.value.message) < 2300  # a tail, not the whole log


def test_claude_zero_exit_without_result_is_stream_broken(bindir: Path) -> None:
    fake_cli(bindir, "claude", "print('{\"type\": \"result\", \"resu', end='')\n")
    with pytest.raises(UpstreamError) as info:
        provider("claude_cli").chat(request())
    assert info.value.kind == "stream_broken"


def test_timeout_kills_the_whole_process_group(bindir: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    fake_cli(
        bindir,
        "claude",
        f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """,
    )
    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        provider("claude_cli").chat(request(timeout=1.5))
    elapsed = time.monotonic() - started
    assert info.value.kind == "timeout"
    assert "1.5s" in info.value.message
    assert elapsed < 6
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a killed child may linger as a zombie of init for a moment
        if Path(f"/proc/{child}/stat").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the CLI's child process survived the timeout")


def test_missing_binary_names_it_and_how_to_install(bindir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(bindir))  # nothing in it
    for kind, binary, package in (
        ("claude_cli", "claude", "@anthropic-ai/claude-code"),
        ("gemini_cli", "gemini", "@google/gemini-cli"),
        ("codex_cli", "codex", "@openai/codex"),
    ):
        with pytest.raises(CliNotFoundError) as info:
            provider(kind).chat(request())
        assert info.value.kind == "auth"
        assert f"`{binary}`" in info.value.message and package in info.value.message


def test_binary_option_is_used(bindir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "opt"
    elsewhere.mkdir()
    log = fake_cli(elsewhere, "claude-nightly", f"print(json.dumps({CLAUDE_OK!r}))\n")
    result = provider("claude_cli", binary=str(elsewhere / "claude-nightly")).chat(request())
    assert result.text == "Hello!" and len(calls(log)) == 1
    with pytest.raises(CliNotFoundError):
        provider("claude_cli", binary=str(elsewhere / "nope")).chat(request())


def test_large_prompt_does_not_deadlock(bindir: Path) -> None:
    # the fake echoes the prompt length back after reading all of stdin
    fake_cli(
        bindir,
        "claude",
        "out = dict(type='result', subtype='success', is_error=False, result=str(len(prompt)), usage={})\n"
        "sys.stderr.write('e' * 200000)\nprint(json.dumps(out))\n",
    )
    big = "y" * 3_000_000
    req = request(messages=(Message("user", big),))
    assert provider("claude_cli").chat(req).text == str(len(big))


# --- gemini ------------------------------------------------------------------------

GEMINI_OK = {
    "session_id": "g-sess-1",
    "response": "Paris.",
    "stats": {
        "models": {
            "gemini-2.5-pro": {
                "api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 5053},
                "tokens": {"input": 3676, "prompt": 24939, "candidates": 20, "total": 25113,
                           "cached": 21263, "thoughts": 154, "tool": 0},
            },
            "gemini-2.5-flash-lite": {
                "api": {"totalRequests": 1, "totalErrors": 0, "totalLatencyMs": 400},
                "tokens": {"input": 100, "prompt": 100, "candidates": 5, "total": 105,
                           "cached": 0, "thoughts": 0, "tool": 0},
            },
        },
        "tools": {"totalCalls": 0},
        "files": {"totalLinesAdded": 0, "totalLinesRemoved": 0},
    },
}


def test_gemini_cli_json_and_stats(bindir: Path) -> None:
    log = fake_cli(bindir, "gemini", f"print(json.dumps({GEMINI_OK!r}))\n")
    result = provider("gemini_cli").chat(request(model="gemini-2.5-pro"))
    assert result.text == "Paris."
    assert result.usage == Usage(
        input_tokens=24939 + 100, output_tokens=20 + 154 + 5, cache_read_tokens=21263, reasoning_tokens=154
    )
    assert result.served_model == "gemini-2.5-pro"
    assert result.provider_cost is None  # the gemini CLI reports no cost: unknown, not $0
    (call,) = calls(log)
    assert call["argv"][:2] == ["--output-format", "json"]
    assert call["argv"][call["argv"].index("--model") + 1] == "gemini-2.5-pro"
    # no system-prompt flag: it is folded into the prompt on stdin
    assert "You are terse." in call["prompt"] and "Say hello." in call["prompt"]


def test_gemini_cli_error_json_on_stderr(bindir: Path) -> None:
    err = {
        "error": {
            "type": "Error",
            "message": "[API Error: You exceeded your current quota. quotaId GenerateRequestsPerDayPerProjectPerModel-FreeTier]",  # noqa: E501
            "code": 1,
        }
    }
    fake_cli(bindir, "gemini", f"sys.stderr.write(json.dumps({err!r}))\nsys.exit(1)\n")
    with pytest.raises(UpstreamError) as info:
        provider("gemini_cli").chat(request(model="gemini-2.5-pro"))
    assert info.value.kind == "quota"
    assert "exited with status 1" in info.value.message


def test_gemini_cli_rate_limit_with_retry_hint(bindir: Path) -> None:
    err = {"error": {"type": "Error", "message": "429 Too Many Requests. Please retry in 17.2s.", "code": 1}}
    fake_cli(bindir, "gemini", f"sys.stderr.write(json.dumps({err!r}))\nsys.exit(1)\n")
    with pytest.raises(UpstreamError) as info:
        provider("gemini_cli").chat(request(model="gemini-2.5-pro"))
    assert info.value.kind == "rate_limit"
    assert info.value.retry_after == pytest.approx(17.2)


# --- codex -------------------------------------------------------------------------

CODEX_OK = [
    {"type": "thread.started", "thread_id": "0199a213-fake"},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "**Greeting**"}},
    {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": "Let me answer."}},
    {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message", "text": "Hello!"}},
    {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}},
]


def _jsonl(lines: list[dict]) -> str:
    return "".join(f"print(json.dumps({line!r}), flush=True)\n" for line in lines)


def test_codex_exec_jsonl(bindir: Path) -> None:
    log = fake_cli(bindir, "codex", _jsonl(CODEX_OK))
    events: list = []
    req = request(model="gpt-5-codex", reasoning_effort="high", json_schema={"type": "object"})
    result = provider("codex_cli").chat(req, events.append)
    assert result.text == "Hello!"  # the last agent message is the answer
    assert result.usage == Usage(input_tokens=24763, output_tokens=122, cache_read_tokens=24448)
    assert result.request_id == "0199a213-fake"
    assert ReasoningDelta("**Greeting**") in events
    (call,) = calls(log)
    argv = call["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-1] == "-"
    assert argv[argv.index("--sandbox") + 1] == "read-only"
    assert "model_reasoning_effort=high" in argv
    assert "--output-schema" in argv
    assert "Say hello." in call["prompt"]


def test_codex_legacy_events(bindir: Path) -> None:
    legacy = [
        {"id": "0", "msg": {"type": "task_started"}},
        {"id": "0", "msg": {"type": "agent_message", "message": "Hi there"}},
        {"id": "0", "msg": {"type": "token_count", "input_tokens": 900, "cached_input_tokens": 800,
                            "output_tokens": 40, "reasoning_output_tokens": 16, "total_tokens": 940}},
        {"id": "0", "msg": {"type": "task_complete", "last_agent_message": "Hi there"}},
    ]
    fake_cli(bindir, "codex", _jsonl(legacy))
    result = provider("codex_cli").chat(request(model="o4-mini"))
    assert result.text == "Hi there"
    assert result.usage == Usage(input_tokens=900, output_tokens=40, cache_read_tokens=800, reasoning_tokens=16)


def test_codex_turn_failed(bindir: Path) -> None:
    lines = CODEX_OK[:2] + [
        {"type": "error", "message": "stream error: exceeded retry limit, last status: 429 Too Many Requests"},
        {"type": "turn.failed", "error": {"message": "exceeded retry limit, last status: 429 Too Many Requests"}},
    ]
    fake_cli(bindir, "codex", _jsonl(lines) + "sys.exit(1)\n")
    with pytest.raises(UpstreamError) as info:
        provider("codex_cli").chat(request(model="gpt-5-codex"))
    assert info.value.kind == "rate_limit"


def test_codex_eof_before_turn_completed_is_stream_broken(bindir: Path) -> None:
    fake_cli(bindir, "codex", _jsonl(CODEX_OK[:4]))
    with pytest.raises(UpstreamError) as info:
        provider("codex_cli").chat(request(model="gpt-5-codex"))
    assert info.value.kind == "stream_broken"


# --- prompt rendering ----------------------------------------------------------------


def test_render_prompt_history_and_schema() -> None:
    req = ChatRequest(
        model="m",
        messages=(
            Message("system", "S"),
            Message("user", "first"),
            Message("assistant", "reply"),
            Message("user", "second"),
        ),
        json_schema={"type": "object", "properties": {"a": {"type": "string"}}},
    )
    text = render_prompt(req, include_system=True)
    assert text.index("<system>\nS") < text.index("[user]\nfirst") < text.index("[assistant]\nreply")
    assert text.index("[user]\nsecond") < text.index("JSON schema")
    assert "S" not in render_prompt(req, include_system=False).split("[user]")[0]


def test_vendor_api_keys_are_hidden_from_subscription_clis(bindir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # with ANTHROPIC_API_KEY visible, `claude` would bill the key instead of the subscription
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-leak")
    payload = dict(CLAUDE_OK)
    fake_cli(
        bindir,
        "claude",
        f"payload = {payload!r}\npayload['result'] = os.environ.get('ANTHROPIC_API_KEY', 'unset')\n"
        "print(json.dumps(payload))\n",
    )
    assert provider("claude_cli").chat(request()).text == "unset"
    assert provider("claude_cli", use_api_key_env=True).chat(request()).text == "sk-ant-should-not-leak"


def test_a_helper_holding_stdout_open_does_not_hang_the_call(bindir: Path) -> None:
    # the CLI prints its result and exits, but leaves a child behind that inherited stdout
    fake_cli(
        bindir,
        "claude",
        f"""
        import subprocess
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        print(json.dumps({CLAUDE_OK!r}), flush=True)
        """,
    )
    started = time.monotonic()
    result = provider("claude_cli").chat(request(timeout=20))
    assert result.text == "Hello!"
    assert time.monotonic() - started < 8  # not the 20 s timeout, not the child's 30 s


def test_claude_api_error_status_decides_when_the_text_does_not(bindir: Path) -> None:
    payload = dict(CLAUDE_OK, is_error=True, result="API Error: Request rejected", api_error_status=429)
    fake_cli(bindir, "claude", f"print(json.dumps({payload!r}))\nsys.exit(1)\n")
    err = pytest.raises(UpstreamError, provider("claude_cli").chat, request()).value
    assert (err.kind, err.status) == ("rate_limit", 429)


def test_claude_huge_system_prompt_goes_on_stdin(bindir: Path) -> None:
    log = fake_cli(bindir, "claude", f"print(json.dumps({CLAUDE_OK!r}))\n")
    big = "rule. " * 40_000  # 240 kB: more than one argv string may hold
    provider("claude_cli").chat(request(messages=(Message("system", big), Message("user", "Say hello."))))
    (call,) = calls(log)
    assert "--system-prompt" not in call["argv"]
    assert call["prompt"].startswith("<system>\nrule.") and call["prompt"].endswith("Say hello.")
