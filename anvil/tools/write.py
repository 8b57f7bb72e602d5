"""Write tools: edit and write_file (permission `write`), over the `Workspace`.

`edit {path, old, new}` replaces text that occurs exactly once (or, failing
that, exactly one place that differs only in whitespace: the rules of
`anvil.workspace.edits`); anything else is refused with the closest lines of
the file, and nothing is written. `write_file {path, content}` creates a new
file; an existing one is changed with `edit`, so a model cannot silently
rewrite a file it has only partly seen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anvil.tools.base import Permission, ToolResult
from anvil.workspace.confine import EditRefused
from anvil.workspace.editblocks import EditBlock
from anvil.workspace.edits import EditReport, atomic_write_text
from anvil.workspace.workspace import Workspace


@dataclass
class EditLog:
    """Every block outcome of the write tools of one stage attempt (for the events)."""

    outcomes: list[dict[str, object]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)

    def add(self, report: EditReport) -> None:
        self.outcomes.extend(report.outcomes())
        self.changed.update(report.changed_files)


def _answer(report: EditReport, path: str) -> ToolResult:
    if report.ok:
        how = report.applied[0].how if report.applied else "exact"
        if not report.changed_files:
            return ToolResult(f"{path}: no change (the new text equals the old)", changed=())
        line = report.applied[0].start_line if report.applied else 1
        note = " (matched ignoring whitespace; re-indented)" if how == "whitespace" else ""
        return ToolResult(f"{path}: edited at line {line}{note}", changed=tuple(report.changed_files))
    return ToolResult(report.feedback().replace("Resend only the failed blocks, with SEARCH copied exactly from "
                                                "the current file.", "Call edit again with `old` copied exactly "
                                                "from the file (read_file shows it)."), ok=False)


@dataclass
class Edit:
    ws: Workspace
    log: EditLog = field(default_factory=EditLog)
    name: str = "edit"
    permission: Permission = "write"
    description: str = ("Replace `old` with `new` in a file. `old` must occur exactly once (copy it from "
                        "read_file, without the line numbers; include enough lines to be unique). "
                        "Refused, with the closest lines, when it does not.")
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
        "required": ["path", "old", "new"]})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        path, old, new = str(args["path"]), str(args["old"]), str(args["new"])
        if not old.strip():
            return ToolResult("edit: `old` is empty; to create a new file use write_file", ok=False)
        if not self.ws.exists(path):
            return ToolResult(f"edit: {path} does not exist; to create it use write_file", ok=False)
        index = len(self.log.outcomes) + 1
        raw = self.ws.read_text(path)
        crlf = "\r\n" in raw and "\r" not in old
        if crlf:
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = raw.count(old)
        if count > 1:
            lines = [raw[:m.start()].count("\n") + 1 for m in re.finditer(re.escape(old), raw)][:5]
            self.log.outcomes.append({"block": index, "path": path, "outcome": "failed",
                                      "reason": f"occurs {count} times"})
            return ToolResult(f"edit: `old` occurs {count} times in {path} (lines {', '.join(map(str, lines))}"
                              f"{', ...' if count > 5 else ''}); include more surrounding text so it occurs once; "
                              "nothing was written", ok=False)
        if count == 1:
            # Exact text, anywhere in a line: the plain string replace the contract promises.
            at = raw.index(old)
            atomic_write_text(self.ws.path(path), raw.replace(old, new, 1))
            self.log.outcomes.append({"block": index, "path": path, "outcome": "exact",
                                      "line": raw[:at].count("\n") + 1})
            if old != new:
                self.log.changed.add(path)
            return ToolResult(f"{path}: edited at line {raw[:at].count(chr(10)) + 1}",
                              changed=(path,) if old != new else ())
        if crlf:
            old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
        # Not found as text: the line rules (whitespace-only differences, or refused with the closest lines).
        report = self.ws.apply([EditBlock(path, old, new, index=index)])
        self.log.add(report)
        return _answer(report, path)


@dataclass
class WriteFile:
    ws: Workspace
    log: EditLog = field(default_factory=EditLog)
    name: str = "write_file"
    permission: Permission = "write"
    description: str = "Create a new file with `content`. An existing file is changed with edit instead."
    parameters: dict[str, Any] = field(default_factory=lambda: {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"]})

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        path, content = str(args["path"]), str(args["content"])
        try:
            self.ws.path(path)
        except EditRefused as exc:
            self.log.outcomes.append({"block": len(self.log.outcomes) + 1, "path": path, "outcome": "refused",
                                      "reason": exc.reason})
            return ToolResult(f"write_file: refused: {exc.reason}", ok=False)
        if self.ws.exists(path) and self.ws.read_text(path).strip():
            return ToolResult(f"write_file: {path} already exists; change it with edit", ok=False)
        if not content.endswith("\n"):
            content += "\n"
        report = self.ws.apply([EditBlock(path, "", content, index=len(self.log.outcomes) + 1)])
        self.log.add(report)
        if not report.ok:
            return ToolResult(report.feedback(), ok=False)
        return ToolResult(f"{path}: created ({content.count(chr(10))} lines)", changed=tuple(report.changed_files))
