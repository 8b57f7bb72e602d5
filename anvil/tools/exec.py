"""Exec tools: run_tests and run (permission `exec`), through `Workspace.run`.

Confined to the work tree (the command's cwd, a process group killed after
the timeout, the clean environment of `anvil.workspace.testrun`), output
truncated the way the test stage truncates it, then capped like every tool
result. The full output of a tool run is not kept: a model that needs more
runs a narrower command.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anvil.tools.base import Permission, ToolCaps, ToolResult, cap
from anvil.workspace.workspace import Workspace

DEFAULT_COMMAND_TIMEOUT = 120.0


def _result(res: Any, caps: ToolCaps) -> ToolResult:
    body, cut = cap(res.report, caps, more="run a narrower command (a selection, | tail)")
    return ToolResult(body, ok=res.passed, cut=cut)


@dataclass
class RunTests:
    ws: Workspace
    test_command: str | None
    timeout: float = DEFAULT_COMMAND_TIMEOUT
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "run_tests"
    permission: Permission = "exec"
    description: str = ("Run the repository's test command, optionally on a selection (test files or ids, "
                        "e.g. tests/test_x.py::test_y), and see the result.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"selection": {"type": "string"}}})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        if not self.test_command:
            return ToolResult("run_tests: this repository has no test_command (.anvil/config.yaml)", ok=False)
        selection = str(args.get("selection") or "").strip()
        try:
            words = shlex.split(selection)
        except ValueError as exc:
            return ToolResult(f"run_tests: cannot read the selection: {exc}", ok=False)
        if any(w.startswith("-") for w in words) and not all(w.startswith(("-k", "-m")) for w in words
                                                               if w.startswith("-")):
            return ToolResult("run_tests: a selection names tests, not options", ok=False)
        command = " ".join([self.test_command, *(shlex.quote(w) for w in words)])
        return _result(self.ws.run(command, timeout=self.timeout), self.caps)


@dataclass
class Run:
    ws: Workspace
    timeout: float = DEFAULT_COMMAND_TIMEOUT
    caps: ToolCaps = field(default_factory=ToolCaps)
    name: str = "run"
    permission: Permission = "exec"
    description: str = ("Run a shell command in the repository's work tree (confined, with a timeout) and see "
                        "its exit status and output.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        command = str(args["command"]).strip()
        if not command:
            return ToolResult("run: empty command", ok=False)
        return _result(self.ws.run(command, timeout=self.timeout), self.caps)
