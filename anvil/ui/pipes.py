"""A closed pipe on stdout or stderr stops the output, never the work.

`anvil run ... 2>&1 | head -3` closes the pipe after three lines; every later
write raises BrokenPipeError. The display code catches it and goes quiet
(`guard`), and at exit the half-written stream is pointed at /dev/null so the
interpreter's final flush does not print "Exception ignored ... BrokenPipeError".
"""

from __future__ import annotations

import os
import sys
from typing import IO


def quiet_broken_pipe() -> None:
    """Flush stdout/stderr at exit; a closed one is replaced by /dev/null instead of failing."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            _to_devnull(name)


def _to_devnull(name: str) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    stream: IO[str] = getattr(sys, name)
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class SafeStream:
    """A text stream wrapper whose writes stop (silently) once the reader has gone away."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        if self.closed_by_reader:
            return len(text)
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ValueError):
            self._gone()
            return len(text)

    def flush(self) -> None:
        if self.closed_by_reader:
            return
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            self._gone()

    def _gone(self) -> None:
        self.closed_by_reader = True
        name = "stderr" if self._stream is sys.__stderr__ else "stdout" if self._stream is sys.__stdout__ else None
        if name:
            _to_devnull(name)

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except ValueError:
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
