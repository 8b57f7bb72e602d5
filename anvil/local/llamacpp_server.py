"""One embedded llama.cpp server process: its spec, start (spawn, ready line, /health), stop.

The process itself is `llamacpp_child.py`; `llamacpp.py` shares servers across a run.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvil.local.bundled import embedded_server_available
from anvil.paths import anvil_home

DEFAULT_CTX = 4096
DEFAULT_START_TIMEOUT = 120.0
STOP_GRACE = 5.0  # seconds between closing the pipe and SIGKILL


def default_threads() -> int:
    """All cores this process may use but one (the rest of the machine keeps breathing)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(frozen=True)
class ServerSpec:
    """What one embedded server runs. Servers are shared by (gguf, threads); see `fits`."""

    gguf: Path
    ctx_size: int
    threads: int
    alias: str  # the model id the server reports (the wire name)
    start_timeout: float = DEFAULT_START_TIMEOUT
    verbosity: int = 1

    def fits(self, wanted: ServerSpec) -> bool:
        return self.gguf == wanted.gguf and self.threads == wanted.threads and self.ctx_size >= wanted.ctx_size


def spec_for(options: dict[str, Any], *, model_name: str, context_window: int | None = None) -> ServerSpec:
    """A `ServerSpec` from provider options and the model entry (options: see anvil.local.llamacpp)."""
    raw = options.get("gguf")
    if not raw:
        raise ValueError("no gguf option: this llamacpp provider needs a base_url or options.gguf")
    # An explicit ctx_size wins (a big model's full window can be more KV cache than RAM).
    ctx = options.get("ctx_size") or context_window or DEFAULT_CTX
    return ServerSpec(
        gguf=Path(str(raw)).expanduser().resolve(),
        ctx_size=int(ctx),
        threads=int(options.get("threads") or default_threads()),
        alias=model_name,
        start_timeout=float(options.get("start_timeout") or DEFAULT_START_TIMEOUT),
        verbosity=int(options.get("verbosity", 1)),
    )


class LocalServerError(Exception):
    """The embedded server could not start (message says why and where the log is)."""


LOG_ROTATE_BYTES = 5_000_000  # the log is appended to by every start; keep one old copy


def _log_path() -> Path:
    logs = anvil_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = logs / "llamacpp.log"
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_suffix(".log.1"))
    except OSError:
        pass  # no log yet
    return path


def _first_error(path: Path, offset: int) -> str | None:
    """The first error line llama.cpp logged since `offset`, without its timestamp."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read(200_000).decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(" E ", 1)
        if len(parts) == 2 and parts[1].strip():
            return parts[1].strip()[:300]
    return None


_SECRET_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


def _child_env() -> dict[str, str]:
    """anvil's environment minus anything that looks like a secret: the server needs none."""
    return {k: v for k, v in os.environ.items() if not any(p in k.upper() for p in _SECRET_PARTS)}


class EmbeddedServer:
    """One llama.cpp server child process."""

    def __init__(self, spec: ServerSpec, *, python: str = sys.executable) -> None:
        self.spec = spec
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.address: str | None = None  # http://127.0.0.1:PORT
        self.started_in: float | None = None  # seconds from spawn to healthy
        self.log_path: Path | None = None
        self.api_key: str | None = None  # a fresh key per server; /health needs none
        self._log_offset = 0

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base (what the adapter appends /chat/completions to)."""
        if not self.address:
            raise LocalServerError("embedded llama.cpp server is not running")
        return self.address + "/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def port(self) -> int | None:
        return int(self.address.rsplit(":", 1)[1]) if self.address else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> EmbeddedServer:
        spec = self.spec
        if not spec.gguf.is_file():
            raise LocalServerError(f"GGUF model file not found: {spec.gguf}")

        if not embedded_server_available():
            raise LocalServerError("the embedded llama.cpp server needs the xllamacpp wheel: "
                                   "pip install 'anvil-agent[local]'")
        import secrets

        self.api_key = secrets.token_urlsafe(24)
        payload = json.dumps({
            "gguf": str(spec.gguf), "ctx_size": spec.ctx_size, "threads": spec.threads,
            "alias": spec.alias, "verbosity": spec.verbosity, "parent_pid": os.getpid(),
            "api_key": self.api_key,
            # PDEATHSIG follows the forking *thread*: only safe from the main thread.
            "pdeathsig": threading.current_thread() is threading.main_thread(),
        })
        self.log_path = _log_path()
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- anvil: starting llama.cpp for {spec.gguf.name} "
                      f"(ctx {spec.ctx_size}, {spec.threads} threads)\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                [self.python, "-m", "anvil.local.llamacpp_child"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                close_fds=True,
                start_new_session=True,  # terminal Ctrl-C goes to anvil, which then stops us
                env=_child_env(),
            )
        try:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(payload.encode() + b"\n")
                self.proc.stdin.flush()  # and keep it open: its closing is the stop signal
            except BrokenPipeError:
                pass  # it died at once: _read_ready reports how
            ready = self._read_ready(deadline=t0 + spec.start_timeout)
            self.address = str(ready["address"]).rstrip("/")
            self._wait_healthy(deadline=t0 + spec.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        self._log(f"--- anvil: llama.cpp pid {self.pid} listening on {self.address} "
                  f"(ready in {self.started_in:.2f}s, anvil pid {os.getpid()})")
        return self

    def _log(self, line: str) -> None:
        if self.log_path is None:
            return
        try:
            with open(self.log_path, "ab") as log:
                log.write(line.encode() + b"\n")
        except OSError:
            pass  # the log is for people; never fail a run over it

    def _read_ready(self, deadline: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LocalServerError(f"llama.cpp did not start within {self.spec.start_timeout:g}s "
                                       f"(log: {self.log_path})")
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
        line = buf.split(b"\n", 1)[0].strip()
        try:
            msg = json.loads(line) if line else {}
        except ValueError:
            msg = {"error": line.decode(errors="replace")[:300]}
        if "address" not in msg:
            try:
                code: int | None = self.proc.wait(timeout=2)  # it closed stdout: it is exiting
            except subprocess.TimeoutExpired:
                code = None
            why = self._first_log_error() or msg.get("error") or (
                f"the server process exited (code {code})" if code is not None else "no ready line")
            raise LocalServerError(f"llama.cpp could not load {self.spec.gguf.name}: {why} "
                                   f"(log: {self.log_path})")
        return msg

    def _first_log_error(self) -> str | None:
        return _first_error(self.log_path, self._log_offset) if self.log_path else None

    def _wait_healthy(self, deadline: float) -> None:
        import httpx

        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise LocalServerError(f"llama.cpp exited while starting (log: {self.log_path})")
            try:
                r = httpx.get(f"{self.address}/health", timeout=2.0, trust_env=False)  # loopback: no proxy
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"  # 503 while the model loads
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.05)
        raise LocalServerError(f"llama.cpp /health not ok within {self.spec.start_timeout:g}s ({last})")

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Close the pipe (the child exits), then make sure: SIGKILL after `grace`."""
        proc, self.proc = self.proc, None
        address, self.address = self.address, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if address:
            self._log(f"--- anvil: llama.cpp pid {proc.pid} on {address} stopped")
