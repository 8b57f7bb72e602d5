"""Run the repository's test (or lint) command in the run's worktree (DESIGN.md 9).

The command runs through the shell in its own process group; on timeout the
whole group is killed (a test runner's workers included), and any process it
left behind is cleaned up after a normal exit too. Output goes to a file, never
a pipe, so a daemon that keeps a descriptor open cannot hang the run; the full
log stays in the run folder and the model gets a truncated report.

It must test the worktree's code: an editable install of the user's checkout
would otherwise be imported instead, so the worktree's source roots go first
on PYTHONPATH.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvil.run.redact import redact_text
from anvil.workspace.env import clean_env, removed_values
from anvil.workspace.testreport import build_report, failing_tests, signature

KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for the process group
REPORT_CHARS = 8000
MAX_OUTPUT_BYTES = 8 * 1024 * 1024  # kept in memory; the log file always has everything


def _read_capped(fh: Any, limit: int) -> str:
    """The output, or its first and last `limit // 2` bytes when a runaway command printed more."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    if size <= limit:
        return fh.read().decode("utf-8", "replace")
    half = limit // 2
    head = fh.read(half).decode("utf-8", "replace")
    fh.seek(size - half)
    tail = fh.read(half).decode("utf-8", "replace")
    return f"{head}\n... [anvil: {size - 2 * half} bytes of output skipped here; see the log] ...\n{tail}"


@dataclass
class CommandResult:
    command: str
    exit_code: int | None  # None when killed on timeout
    timed_out: bool
    duration: float
    output: str  # everything, stdout and stderr interleaved
    report: str  # truncated for the model
    failing_tests: list[str] = field(default_factory=list)
    signature: str = ""  # same failure twice -> same value ("" when passed)
    log_path: Path | None = None
    cpu_seconds: float = 0.0  # user+sys of the command's processes (this process's reaped children)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def summary(self) -> str:
        """One line: for a PR body, a progress line, a commit message."""
        if self.timed_out:
            return f"`{self.command}` timed out after {self.duration:.0f}s"
        if self.passed:
            return f"`{self.command}` passed in {self.duration:.1f}s"
        n = len(self.failing_tests)
        what = f"{n} failing test(s)" if n else f"exit code {self.exit_code}"
        return f"`{self.command}` failed ({what}) in {self.duration:.1f}s"


def default_source_roots(cwd: Path) -> list[str]:
    """`src/` when the tree has one, else the tree itself."""
    return ["src"] if (Path(cwd) / "src").is_dir() else ["."]


def command_env(cwd: Path, source_roots: Sequence[str] = (), base: Mapping[str, str] | None = None, *,
                drop: Iterable[str] = (), secrets: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a repository command: `base` without credentials (`anvil.workspace.env`),
    the worktree's source roots first on PYTHONPATH, and tools told not to prompt or colour."""
    env = clean_env(base, drop=drop, secrets=secrets)
    roots = list(source_roots) or default_source_roots(cwd)
    paths = []
    for r in roots:
        p = (Path(cwd) / r).resolve()
        if p.is_dir() and str(p) not in paths:
            paths.append(str(p))
    if str(Path(cwd).resolve()) not in paths:
        paths.append(str(Path(cwd).resolve()))  # tests that import from the root still work
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # keep the worktree clean of __pycache__
    env.setdefault("NO_COLOR", "1")
    env["CI"] = env.get("CI", "1")  # tools stop prompting and animating
    env.pop("PYTHONHOME", None)
    return env


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the group.

    `killpg(pgid, 0)` also succeeds for zombies, and in a container whose init
    does not reap them they linger forever; /proc tells them apart on Linux.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return True
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _kill_group(proc: subprocess.Popen, grace: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """SIGTERM the command's process group, SIGKILL whatever is left after `grace` seconds."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or its zombie keeps the group "alive"
            if not _group_alive(pgid):
                return
            sleep(0.05)


def wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    """`proc.wait(timeout)`, woken the moment the process exits.

    Popen.wait with a timeout polls, sleeping up to 50 ms between looks, so every command would end
    up to 50 ms late; a pidfd (Linux 5.3+) is readable as soon as the process exits. Elsewhere,
    Popen's polling. Raises subprocess.TimeoutExpired like Popen.wait."""
    if proc.returncode is not None:
        return proc.returncode
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _start_guarded(cmd: str, cwd: Path, env: Mapping[str, str], out_file: Any) -> subprocess.Popen:
    """Start `cmd` under `anvil.workspace.groupguard`, leader of a new process group that dies
    with anvil: its stdin is a pipe only anvil writes to, kept open until the command ends."""
    import sys
    import threading

    env = {**env, "ANVIL_GUARDED_COMMAND": cmd}  # not argv: `ps` shows the guard, the shell shows the command
    proc = subprocess.Popen([sys.executable, "-m", "anvil.workspace.groupguard"], cwd=cwd, env=env,
                            stdin=subprocess.PIPE, stdout=out_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    assert proc.stdin is not None
    pdeathsig = threading.current_thread() is threading.main_thread()  # it follows the forking thread
    try:
        proc.stdin.write(f"{os.getpid()} {1 if pdeathsig else 0}\n".encode())
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    return proc


def _close_guard(proc: subprocess.Popen) -> None:
    if proc.stdin is not None:
        try:
            proc.stdin.close()
        except OSError:
            pass


def group_members_in(pgid: int, root: Path) -> list[int]:
    """Live processes of group `pgid` whose working directory is inside `root` (a recorded group
    that outlived anvil; the cwd check keeps a reused group id from naming someone else's)."""
    root = Path(root).resolve()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if len(fields) < 3 or fields[2] != str(pgid) or fields[0] in ("Z", "X"):
                continue
            cwd = Path(os.readlink(entry / "cwd")).resolve()
        except (OSError, IndexError):
            continue
        if cwd == root or root in cwd.parents:
            found.append(int(entry.name))
    return found


def kill_survivors(pgid: int | None, root: Path) -> int:
    """SIGKILL a recorded test-command group still running in `root`; returns how many processes."""
    if not pgid:
        return 0
    members = group_members_in(pgid, root)
    if members:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return 0
    return len(members)


def redact_file(path: Path, secrets: Sequence[str]) -> None:
    """Rewrite the log with the secrets (and key-shaped strings) masked, line by line (it may be large)."""
    tmp = path.with_name(path.name + ".redacting")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for line in src:
            dst.write(redact_text(line.decode("utf-8", "replace"), secrets).encode("utf-8"))
    os.replace(tmp, path)


def run_command(cmd: str, cwd: Path, timeout: float, *, source_roots: Sequence[str] = (),
                log_path: Path | None = None, env: Mapping[str, str] | None = None,
                max_report_chars: int = REPORT_CHARS, kill_grace: float = KILL_GRACE,
                max_output_bytes: int = MAX_OUTPUT_BYTES, drop_env: Iterable[str] = (),
                secrets: Iterable[str] = (), on_start: Callable[[int], None] | None = None) -> CommandResult:
    """Run `cmd` (a shell command line) in `cwd` with `timeout` seconds; see the module docstring.

    `drop_env` names more variables to keep from the command (the catalogue's `api_key_env`s);
    `secrets` are the run's keys: removed from its environment wherever they are, and redacted from its
    output (the log, the report, what a model is shown) along with every value that was removed.
    `on_start(pgid)` is told the command's process group as soon as it runs."""
    cwd = Path(cwd)
    drop_env, secrets = list(drop_env), [s for s in secrets if s]
    full_env = command_env(cwd, source_roots, env, drop=drop_env, secrets=secrets)
    hidden = sorted({*secrets, *removed_values(os.environ if env is None else env, drop=drop_env)},
                    key=len, reverse=True)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out_file = open(log_path, "w+b")
    else:
        out_file = tempfile.TemporaryFile()
    start = time.monotonic()
    cpu_start = _children_cpu()
    timed_out = False
    with out_file:
        try:
            proc = _start_guarded(cmd, cwd, full_env, out_file)
        except OSError as exc:
            return CommandResult(cmd, 127, False, 0.0, str(exc), f"$ {cmd}\ncould not start: {exc}",
                                 signature="start-failed", log_path=log_path)
        if on_start is not None:
            on_start(proc.pid)  # the process group id: resume kills a group that outlived anvil
        try:
            code: int | None = wait_exit(proc, timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc, kill_grace)
            proc.wait()
            _close_guard(proc)
            code = None
        except BaseException:  # Ctrl-C: never leave the test run behind
            _kill_group(proc, 0.5)
            proc.wait()
            _close_guard(proc)
            raise
        _kill_group(proc, 0.5)  # stragglers the command left in its group
        _close_guard(proc)
        duration = time.monotonic() - start
        cpu = _children_cpu() - cpu_start
        output = redact_text(_read_capped(out_file, max_output_bytes), hidden)
    if log_path is not None:
        redact_file(log_path, hidden)
    if timed_out:
        output += f"\n[anvil: killed after {timeout:g}s timeout]\n"
    tests = failing_tests(output) if (timed_out or code != 0) else []
    status = "TIMED OUT" if timed_out else ("passed" if code == 0 else f"failed (exit {code})")
    header = f"$ {cmd}\n[{status} in {duration:.1f}s" + (f"; failing: {', '.join(tests[:20])}" if tests else "") + "]"
    report = redact_text(build_report(output, header=header, max_chars=max_report_chars), hidden)
    sig = "" if code == 0 and not timed_out else signature(output, tests, cwd=str(cwd.resolve()), timed_out=timed_out)
    return CommandResult(cmd, code, timed_out, duration, output, report, tests, sig, log_path, cpu)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
