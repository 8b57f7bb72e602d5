"""The model's tools: the `Tool` Protocol, the capped `ToolResult`, and a stage's `ToolBox` (DESIGN.md 13).

A tool has a name, a permission class (`read` / `write` / `exec`), a JSON
schema of its arguments and `run(args) -> ToolResult`. The names and arguments
are a contract shared with the bench oracle (notes/tools-contract.md): change
them only together.

Every result is capped (`ToolCaps`: about 16K characters or 400 lines) and,
when cut, says what was cut and how to read the rest, so a model never
mistakes a cut view for the whole file. A `ToolBox` is the set of tools one
stage may use: a call to a tool outside the stage's permissions is answered
with a refusal the model can read, never run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from anvil.providers.types import ToolSpec

Permission = Literal["read", "write", "exec"]
PERMISSIONS: tuple[Permission, ...] = ("read", "write", "exec")

DEFAULT_MAX_CHARS = 16_000
DEFAULT_MAX_LINES = 400


@dataclass(frozen=True)
class ToolCaps:
    """How much one tool result may carry."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_lines: int = DEFAULT_MAX_LINES


@dataclass(frozen=True)
class ToolResult:
    """What a tool answers. `ok` is False for a refusal or an error (the text says why)."""

    text: str
    ok: bool = True
    cut: str = ""  # what the cap left out ("" when nothing)
    changed: tuple[str, ...] = ()  # files a write tool changed


def cap(text: str, caps: ToolCaps, *, more: str) -> tuple[str, str]:
    """`text` within the caps, and a note of what was cut ("" when it fits).

    `more` tells the model how to read the rest (e.g. "read_file with start=401").
    """
    lines = text.split("\n")
    cut = ""
    if len(lines) > caps.max_lines:
        cut = f"{len(lines) - caps.max_lines} more line(s) not shown"
        lines = lines[:caps.max_lines]
    out = "\n".join(lines)
    if len(out) > caps.max_chars:
        keep = out[:caps.max_chars]
        keep = keep[:keep.rfind("\n")] if "\n" in keep else keep
        hidden = len(text) - len(keep)
        cut = f"{hidden} more character(s) not shown"
        out = keep
    if cut:
        out += f"\n[cut: {cut}; {more}]"
    return out, cut


class Tool(Protocol):
    """One tool the model may call."""

    name: str
    permission: Permission
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object

    def run(self, args: Mapping[str, Any]) -> ToolResult: ...


class ArgumentError(ValueError):
    """Arguments that do not fit a tool's schema; the message is for the model."""


def check_args(tool: Tool, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments, checked against the tool's schema (required keys, basic types, no unknown keys)."""
    props: dict[str, Any] = tool.parameters.get("properties", {})
    missing = [k for k in tool.parameters.get("required", []) if k not in args]
    if missing:
        raise ArgumentError(f"{tool.name}: missing argument(s) {', '.join(missing)}")
    unknown = [k for k in args if k not in props]
    if unknown:
        raise ArgumentError(f"{tool.name}: unknown argument(s) {', '.join(unknown)} "
                            f"(it takes {', '.join(props) or 'none'})")
    out: dict[str, Any] = {}
    for key, value in args.items():
        want = props[key].get("type")
        if value is None:
            continue  # an optional argument sent as null: the default
        if want == "integer":
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ArgumentError(f"{tool.name}: {key} must be an integer")
        elif want == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise ArgumentError(f"{tool.name}: {key} must be true or false")
        elif want == "string" and not isinstance(value, str):
            raise ArgumentError(f"{tool.name}: {key} must be a string")
        out[key] = value
    return out


@dataclass
class ToolCallRecord:
    """One call as the run records it (events, exchanges, `anvil show`)."""

    tool: str
    arguments: dict[str, Any]
    ok: bool
    result_chars: int
    cut: str = ""
    refused: str = ""  # why it was not run (permission, unknown tool, bad arguments)


@dataclass
class ToolBox:
    """The tools a stage may use, by permission; every call is checked, run and recorded."""

    stage: str
    allowed: frozenset[Permission]
    tools: Sequence[Tool]  # every known tool: the ones outside `allowed` are refused by name
    calls: list[ToolCallRecord] = field(default_factory=list)
    # What each file a write tool touched held before (None: it did not exist), so a loop that
    # restarts on another model can put the tree back first. Keyed by the path as given.
    originals: dict[str, bytes | None] = field(default_factory=dict)
    root: Path | None = None  # the work tree, for `restore`

    def usable(self) -> list[Tool]:
        return [t for t in self.tools if t.permission in self.allowed]

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(t.name, t.description, t.parameters) for t in self.usable())

    def names(self) -> list[str]:
        return [t.name for t in self.usable()]

    def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        tool = next((t for t in self.tools if t.name == name), None)
        if tool is None:
            return self._refuse(name, args, f"there is no tool {name!r}; the tools are: "
                                            f"{', '.join(self.names()) or 'none'}")
        if tool.permission not in self.allowed:
            have = ", ".join(sorted(self.allowed)) or "none"
            return self._refuse(name, args, f"the {self.stage} stage may not use {name} (it needs permission "
                                            f"{tool.permission}; this stage has: {have})")
        try:
            checked = check_args(tool, args)
        except ArgumentError as exc:
            return self._refuse(name, args, str(exc))
        if tool.permission == "write" and self.root is not None and isinstance(checked.get("path"), str):
            self._snapshot(str(checked["path"]))
        result = tool.run(checked)
        self.calls.append(ToolCallRecord(name, dict(args), result.ok, len(result.text), result.cut))
        return result

    def _snapshot(self, rel: str) -> None:
        from anvil.workspace.confine import EditRefused, confined_path

        if rel in self.originals or self.root is None:
            return
        try:
            path = confined_path(self.root, rel)
        except EditRefused:
            return  # the tool refuses it too: nothing will be written
        self.originals[rel] = path.read_bytes() if path.is_file() else None

    def restore(self) -> list[str]:
        """Put every file a write tool touched back as it was before the first write; returns them."""
        from anvil.workspace.confine import confined_path

        if self.root is None:
            return []
        for rel, data in self.originals.items():
            path = confined_path(self.root, rel)
            if data is None:
                if path.is_file():
                    path.unlink()
            else:
                path.write_bytes(data)
        done = sorted(self.originals)
        self.originals.clear()
        return done

    def _refuse(self, name: str, args: Mapping[str, Any], why: str) -> ToolResult:
        self.calls.append(ToolCallRecord(name, dict(args), False, len(why), refused=why))
        return ToolResult(f"refused: {why}", ok=False)

