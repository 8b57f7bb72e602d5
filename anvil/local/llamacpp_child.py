"""The embedded llama.cpp server's process: `python -m anvil.local.llamacpp_child`.

llama.cpp runs in this small child rather than inside anvil, so that nothing anvil
suffers (SIGKILL included) can leave a server behind:

- the child blocks reading its stdin, a pipe whose only writer is anvil; when anvil
  closes it or dies for any reason, the kernel closes it, the read returns EOF and
  the child exits at once;
- when started from anvil's main thread it also asks the kernel for SIGKILL when its
  parent dies (PR_SET_PDEATHSIG), a second line of defence. (Not from other threads:
  the signal follows the *thread* that forked, so a finished worker thread would kill
  a server still in use.)

Protocol: anvil writes one JSON line on stdin, the spec (over the pipe, not argv, so the
server's API key never shows in `ps`), and keeps the pipe open. The child answers on stdout
with one JSON line: {"address": "http://127.0.0.1:PORT", "pid": N} once
the model is loaded and the server listens, or {"error": "..."} before exiting 1.
llama.cpp's own log goes to stderr (anvil points it at a log file).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the stdin pipe alone keeps us honest
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _params(spec: dict[str, Any]) -> Any:
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = spec["gguf"]
    p.hostnames = ["127.0.0.1"]  # loopback only, never a public interface
    p.port = 0  # the kernel picks a free port: no race between choosing and binding
    p.n_ctx = int(spec["ctx_size"])
    p.n_parallel = int(spec.get("parallel", 1))
    p.cpuparams.n_threads = int(spec["threads"])
    p.cpuparams_batch.n_threads = int(spec["threads"])
    p.n_threads_http = int(spec.get("http_threads", 2))
    p.model_alias = {spec["alias"]}
    if spec.get("api_key"):
        # Without a key any local process, or any web page through the browser (llama.cpp
        # allows every CORS origin), could use the server. /health stays open.
        p.api_keys = [spec["api_key"]]
    p.verbosity = int(spec.get("verbosity", 1))
    p.warmup = bool(spec.get("warmup", False))
    return p


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        return 0  # anvil went away before saying anything
    spec = json.loads(line)
    # Ctrl-C in the terminal is anvil's to handle; it then closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.get("pdeathsig"):
        _die_with_parent(int(spec["parent_pid"]))
    try:
        import xllamacpp

        server = xllamacpp.Server(_params(spec))
        address = str(server.listening_address)
    except Exception as exc:  # bad GGUF, no memory, ...: report, don't trace
        _say({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _say({"address": address, "pid": os.getpid()})
    # Nobody reads stdout after the ready line: anything llama.cpp prints there from now on
    # goes to the log instead, so a full pipe can never block the server.
    os.dup2(2, 1)
    try:
        while sys.stdin.buffer.read(4096):
            pass  # anvil never writes; any byte is ignored, EOF means "stop"
    finally:
        # No destructor dance: the kernel closes the socket and frees the model.
        os._exit(0)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
