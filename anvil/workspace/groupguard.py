"""The test command's keeper: `python -m anvil.workspace.groupguard` (the command on stdin's first line).

A test command runs in its own process group (a timeout kills its workers too), which
also means a SIGKILL of anvil did not reach it: 6 of 6 kills left pytest running in the
worktree that resume then reset. This small process leads that group:

- it runs the command (through the shell) as its child, in the same group, and exits
  with the command's status;
- it blocks reading its stdin, a pipe whose only writer is anvil; when anvil closes it
  or dies for any reason, the kernel closes it, the read returns EOF and the guard kills
  the whole group, itself included (as the llama.cpp child does);
- from anvil's main thread it also asks the kernel for a signal when its parent dies
  (PR_SET_PDEATHSIG: SIGUSR1, whose handler kills the group), a second line of defence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)  # anvil is gone: so is everything it started here


def _die_with_parent(parent_pid: int) -> None:
    # SIGUSR1, caught, not SIGKILL: a SIGKILL would end the guard alone and leave the command running
    signal.signal(signal.SIGUSR1, _kill_group)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        _kill_group()


def _watch_parent() -> None:
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    _kill_group()


def main() -> int:
    header = b""
    while not header.endswith(b"\n"):  # unbuffered: the rest of stdin is the watcher's
        byte = os.read(0, 1)
        if not byte:
            break
        header += byte
    parent, _, pdeathsig = header.decode("utf-8", "replace").strip().partition(" ")
    if pdeathsig == "1" and parent.isdigit():
        _die_with_parent(int(parent))
    cmd = os.environ.pop("ANVIL_GUARDED_COMMAND", "")
    threading.Thread(target=_watch_parent, daemon=True).start()
    child = subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL)
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())  # not sys.exit: the watcher thread is still blocked in read()
