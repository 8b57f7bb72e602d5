"""The real-model lane through the CLI: `anvil ask --model local/smollm2-135m` as a real subprocess.

ANVIL_HOME is a tmp dir holding a catalogue that runs the bundled SmolLM2 on one thread
with a small context. Structure only (text, usage, ledger rows), never wording. Every
test ends with the embedded server gone: no process, port free.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .e2e_helpers import interruptible
from .local_helpers import (
    needs_smollm2,
    patience,
    port_free,
    process_gone,
    servers_in_log,
    wait_until,
    write_local_catalogue,
)

pytestmark = [pytest.mark.realmodel, needs_smollm2]

MODEL = "local/smollm2-135m"


def _anvil() -> list[str]:
    exe = shutil.which("anvil", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "anvil"]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ANVIL_HOME"] = str(home)
    env["NO_COLOR"] = "1"
    return env


def _assert_no_server_left(home: Path) -> None:
    started = servers_in_log(home)
    assert started, "the embedded server never started"
    for pid, port in started:
        assert wait_until(lambda pid=pid: process_gone(pid), timeout=10), f"llama.cpp pid {pid} still running"
        assert wait_until(lambda port=port: port_free(port), timeout=5), f"port {port} still open"


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "anvil-home"
    home.mkdir()
    write_local_catalogue(home, threads=1, ctx_size=1024, max_output_tokens=48)
    return home


def test_ask_answers_with_usage_and_the_ledger_says_free(home, tmp_path):
    proc = subprocess.run(_anvil() + ["ask", "--model", MODEL, "--json", "Name a colour."],
                          env=_env(home), cwd=tmp_path, capture_output=True, text=True, timeout=patience(120))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["text"].strip()
    assert out["model"] == MODEL and out["served_model"] == "smollm2-135m"
    assert out["usage"]["input_tokens"] > 5 and 0 < out["usage"]["output_tokens"] <= 48
    assert out["cost_source"] == "free" and float(out["dollars"]) == 0
    assert out["ttft_s"] is not None and out["latency_s"] > 0

    from anvil.ledger.db import Ledger

    with Ledger(home / "ledger.db") as ledger:
        [row] = ledger.attempts(out["run_id"])
    assert row["outcome"] == "ok" and row["cost_source"] == "free" and row["provider_kind"] == "llamacpp"
    assert row["input_tokens"] == out["usage"]["input_tokens"]
    assert row["output_tokens"] == out["usage"]["output_tokens"]
    _assert_no_server_left(home)


def test_ask_streams_on_a_terminal_and_summarises_on_stderr(home, tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen(_anvil() + ["ask", "--model", MODEL, "Say hello."], env=_env(home), cwd=tmp_path,
                            stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = proc.stderr.read()
    assert proc.wait(timeout=patience(60)) == 0, stderr
    assert b"".join(chunks).strip()
    assert f"model {MODEL}" in stderr and "tokens in" in stderr and "(free)" in stderr
    _assert_no_server_left(home)


def test_sigkill_of_anvil_mid_call_leaves_no_server(tmp_path):
    home = tmp_path / "anvil-home"
    home.mkdir()
    # A long answer, so the kill lands while llama.cpp is generating.
    write_local_catalogue(home, threads=1, ctx_size=1024, max_output_tokens=900)
    proc = subprocess.Popen(_anvil() + ["ask", "--model", MODEL, "Write a very long story about a forge."],
                            env=_env(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: bool(servers_in_log(home)), timeout=60), "no server started"
        time.sleep(0.5)  # well inside the generation (900 tokens take several seconds)
        assert proc.poll() is None, "anvil finished before it could be killed"
        [(pid, port)] = servers_in_log(home)
        assert not process_gone(pid) and not port_free(port)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _assert_no_server_left(home)


def test_ctrl_c_mid_call_stops_the_server_and_exits_130(tmp_path):
    home = tmp_path / "anvil-home"
    home.mkdir()
    write_local_catalogue(home, threads=1, ctx_size=1024, max_output_tokens=900)
    # Its own process group, like a terminal's foreground job: Ctrl-C signals the whole group.
    proc = subprocess.Popen(_anvil() + ["ask", "--model", MODEL, "Write a very long story about a forge."],
                            env=_env(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=interruptible)
    try:
        assert wait_until(lambda: bool(servers_in_log(home)), timeout=60), "no server started"
        time.sleep(0.5)
        assert proc.poll() is None, "anvil finished before Ctrl-C"
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=patience(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    _assert_no_server_left(home)
    assert " stopped" in (home / "logs" / "llamacpp.log").read_text()  # an orderly stop, not just the pipe
