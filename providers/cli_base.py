"""Shared plumbing for the subscription-CLI adapters (claude, gemini, codex).

These adapters are the second provider family of DESIGN.md 4: instead of an
HTTP exchange they run the vendor's own command-line tool once, feed it the
prompt on stdin and read the JSON it prints. Everything the three have in
common lives here:

- finding the binary (`settings.options["binary"]`, else PATH), with an error
  that names it and says how to install it when it is missing;
- spawning it in its own process group, in a scratch directory by default (the
  CLIs are agents themselves: run inside the user's repo they could edit it
  behind anvil's back), with the prompt written to stdin from a thread so a
  large prompt never deadlocks against a full stdout pipe;
- enforcing `ChatRequest.timeout` by killing the whole process group (the
  CLIs are node / rust programs that spawn helpers);
- turning a non-zero exit into a classified `UpstreamError` carrying the tail
  of the CLI's stderr;
- rendering a `ChatRequest` (system prompt, history, schema) into one prompt.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anvil.providers.cli_output import (  # noqa: F401  (re-exported for the three CLI adapters)
    STDERR_TAIL_CHARS,
    classify_cli_error,
    cli_failure,
    parse_json_object,
    retry_after_from_text,
    stderr_tail,
)
from anvil.providers.types import (
    ChatRequest,
    ProviderSettings,
    UpstreamError,
)

_KILL_GRACE_S = 2.0  # after SIGTERM, how long before SIGKILL
_ORPHAN_GRACE_S = 1.0  # after the CLI exits, how long a child may keep its stdout open


class CliNotFoundError(UpstreamError):
    """The CLI's executable is not installed (or not where the settings say).

    Kind `auth`: the provider is unusable until the user acts, so the walker
    burns every model of it for the run instead of retrying.
    """


@dataclass
class CliOutput:
    """What one run of a CLI produced."""

    stdout: str
    stderr: str
    returncode: int
    latency_s: float
    ttft_s: float | None = None  # time to the first stdout line, when read line by line
    lines: list[str] = field(default_factory=list)


def resolve_binary(
    settings: ProviderSettings, default_name: str, install_hint: str, *, model: str = ""
) -> str:
    """The absolute path of the CLI to run, or a CliNotFoundError saying how to get it."""
    wanted = str(settings.options.get("binary") or default_name)
    if os.sep in wanted:
        if os.path.isfile(wanted) and os.access(wanted, os.X_OK):
            return wanted
        found = None
    else:
        found = shutil.which(wanted)
    if found:
        return found
    raise CliNotFoundError(
        "auth",
        f"the `{wanted}` command was not found"
        + ("" if os.sep in wanted else " on PATH")
        + f"; install it ({install_hint}) and log in once, "
        f"or set options.binary for provider {settings.name!r} to its full path",
        provider=settings.name,
        model=model,
    )


def run_cli(
    argv: Sequence[str],
    stdin_text: str,
    *,
    timeout: float,
    provider: str,
    model: str,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    unset_env: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CliOutput:
    """Run one CLI invocation to completion within `timeout` seconds.

    `on_line` (optional) sees each stdout line as it arrives, for CLIs that
    stream JSONL. On timeout the process group is killed and an
    `UpstreamError("timeout")` raised. The exit status is *not* judged here:
    each adapter knows whether its CLI prints a JSON error on stdout too.
    """
    started = clock()
    scratch: tempfile.TemporaryDirectory[str] | None = None
    if cwd is None:
        scratch = tempfile.TemporaryDirectory(prefix="anvil-cli-")
        cwd = scratch.name
    full_env = dict(os.environ)
    full_env.update({"NO_COLOR": "1", "TERM": "dumb", "CI": "1"})
    for name in unset_env:
        full_env.pop(name, None)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=full_env,
            start_new_session=True,  # own process group: a timeout kills its children too
        )
    except OSError as exc:
        if scratch is not None:
            scratch.cleanup()
        raise UpstreamError(
            "connection", f"could not start {argv[0]}: {exc}", provider=provider, model=model
        ) from exc

    lines_q: queue.Queue[bytes | None] = queue.Queue()
    stderr_chunks: list[bytes] = []

    def feed_stdin() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin_text.encode("utf-8"))
        except (BrokenPipeError, OSError):
            pass  # the CLI exited without reading its input; its exit status says why
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            lines_q.put(raw)
        lines_q.put(None)

    def read_stderr() -> None:
        stderr = proc.stderr
        assert stderr is not None
        for raw in iter(lambda: stderr.read(65536), b""):
            stderr_chunks.append(raw)

    threads = [
        threading.Thread(target=fn, daemon=True) for fn in (feed_stdin, read_stdout, read_stderr)
    ]
    for t in threads:
        t.start()

    out_lines: list[str] = []
    ttft: float | None = None
    deadline = started + timeout
    timed_out = False
    exited_at: float | None = None
    try:
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                timed_out = True
                break
            try:
                raw = lines_q.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                # The CLI has exited but a helper it spawned still holds stdout open:
                # give it a moment, then go on with what was printed.
                if proc.poll() is not None:
                    exited_at = exited_at if exited_at is not None else clock()
                    if clock() - exited_at > _ORPHAN_GRACE_S:
                        break
                continue
            if raw is None:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if ttft is None:
                ttft = clock() - started
            out_lines.append(line)
            if on_line is not None and line.strip():
                on_line(line)
        if not timed_out:
            try:
                proc.wait(timeout=max(0.1, deadline - clock()))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if timed_out or proc.poll() is None:
            _kill_group(proc)
        else:
            # A one-shot run is over: helpers it left behind (still holding our pipes)
            # go too. start_new_session made the CLI's pid its process group id.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for t in threads:
            t.join(timeout=_KILL_GRACE_S)
        for stream, reader in ((proc.stdout, threads[1]), (proc.stderr, threads[2])):
            # closing a pipe another thread is still blocked on would block here too
            if stream is not None and not reader.is_alive():
                stream.close()
        if scratch is not None:
            scratch.cleanup()

    stderr = b"".join(stderr_chunks).decode("utf-8", errors="replace")
    if timed_out:
        raise UpstreamError(
            "timeout",
            f"{os.path.basename(argv[0])} gave no complete answer within {timeout:g}s "
            f"(process group killed){_tail_suffix(stderr)}",
            provider=provider,
            model=model,
        )
    return CliOutput(
        stdout="\n".join(out_lines),
        stderr=stderr,
        returncode=proc.returncode,
        latency_s=clock() - started,
        ttft_s=ttft,
        lines=out_lines,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there."""
    pgid: int | None = proc.pid  # start_new_session: the CLI leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if pgid is not None:
                os.killpg(pgid, sig)
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=_KILL_GRACE_S)
            if sig == signal.SIGTERM and pgid is not None:
                # the leader is gone; make sure no helper it spawned survives
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            return
        except subprocess.TimeoutExpired:
            continue


def _tail_suffix(stderr: str) -> str:
    tail = stderr_tail(stderr, 500)
    return f"; stderr: {tail}" if tail else ""


# --- turning a ChatRequest into one prompt -------------------------------------------


def render_prompt(request: ChatRequest, *, include_system: bool) -> str:
    """The conversation as one prompt for a CLI that takes a single message.

    A lone user message goes through unchanged; a longer history is written as
    labelled turns. `include_system` folds the system prompt in, for CLIs that
    have no flag for it. A JSON schema becomes an explicit instruction.
    """
    parts: list[str] = []
    if include_system and request.system:
        parts.append(f"<system>\n{request.system}\n</system>")
    turns = [m for m in request.messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        parts.append(turns[0].content)
    else:
        for m in turns:
            if m.role == "tool":
                label = f"tool result ({m.name or m.tool_call_id or 'tool'})"
            else:
                label = m.role
            body = m.content
            for call in m.tool_calls:
                body += f"\n[called {call.name}({json.dumps(call.arguments, sort_keys=True)})]"
            parts.append(f"[{label}]\n{body}")
    if request.json_schema is not None:
        parts.append(
            "Answer with only one JSON object (no prose, no code fence) that validates "
            f"against this JSON schema:\n{json.dumps(request.json_schema, sort_keys=True)}"
        )
    return "\n\n".join(parts)


def scratch_cwd(settings: ProviderSettings, request: ChatRequest) -> str | None:
    """Where to run the CLI: request.extra["cwd"], options["cwd"], else a scratch dir (None)."""
    cwd = request.extra.get("cwd") or settings.options.get("cwd")
    return str(cwd) if cwd else None


def api_key_env_to_drop(settings: ProviderSettings, names: Sequence[str]) -> tuple[str, ...]:
    """The vendor API-key variables to hide from a subscription CLI.

    With e.g. ANTHROPIC_API_KEY in its environment `claude` bills the API key
    instead of the user's subscription; anvil has that variable set whenever the
    anthropic provider is configured. `options.use_api_key_env: true` keeps them.
    """
    return () if settings.options.get("use_api_key_env") else tuple(names)


def extra_args(settings: ProviderSettings) -> list[str]:
    """Extra argv the user configured (`options.extra_args`), appended verbatim."""
    value = settings.options.get("extra_args") or []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]
