"""The tools of one stage: every known tool over the stage's `Workspace`, checked against its permissions."""

from __future__ import annotations

from anvil.tools.base import Permission, Tool, ToolBox, ToolCaps
from anvil.tools.exec import DEFAULT_COMMAND_TIMEOUT, Run, RunTests
from anvil.tools.read import ListDir, Outline, ReadFile, Search
from anvil.tools.write import Edit, EditLog, WriteFile
from anvil.workspace.workspace import Workspace

TOOL_NAMES = ("read_file", "outline", "search", "list_dir", "edit", "write_file", "run_tests", "run")


def all_tools(ws: Workspace, *, test_command: str | None = None, command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
              caps: ToolCaps | None = None, log: EditLog | None = None) -> list[Tool]:
    caps = caps or ToolCaps()
    log = log if log is not None else EditLog()
    return [ReadFile(ws, caps), Outline(ws, caps), Search(ws, caps), ListDir(ws, caps),
            Edit(ws, log), WriteFile(ws, log),
            RunTests(ws, test_command, command_timeout, caps), Run(ws, command_timeout, caps)]


def toolbox(stage: str, ws: Workspace, allowed: frozenset[Permission], *, test_command: str | None = None,
            command_timeout: float = DEFAULT_COMMAND_TIMEOUT, caps: ToolCaps | None = None,
            log: EditLog | None = None) -> ToolBox:
    tools = all_tools(ws, test_command=test_command, command_timeout=command_timeout, caps=caps, log=log)
    return ToolBox(stage, allowed, tools, root=ws.root)
