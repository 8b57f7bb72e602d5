"""Test-harness files: the ones that decide what "the tests passed" means (DESIGN.md 14).

A model that cannot make the tests pass can make the runner say they did: a
`conftest.py` that calls `os._exit(0)`, an `addopts` that deselects the new
tests, a `sitecustomize.py`, a CI workflow, a git hook. An edit to one of these
is applied only when the plan named the file (`files_to_change`), and review is
told about every one that changed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import PurePosixPath

# Files whose every line is harness.
HARNESS_NAMES = frozenset({"conftest.py", "pytest.ini", "sitecustomize.py", "usercustomize.py", ".pytest.ini",
                           "noxfile.py", ".coveragerc", "jest.config.js", "vitest.config.ts", ".mocharc.json"})
HARNESS_DIRS = (".github/", ".githooks/", ".husky/", ".git-hooks/", ".circleci/", ".gitlab/")
HARNESS_SUFFIXES = (".pth",)
# Files that are harness only in their test sections.
_INI_SECTION = re.compile(r"^\[([^\]]+)\]\s*$", re.M)
_INI_TEST_SECTIONS = re.compile(r"^(tool:pytest|pytest|testenv.*|tox|coverage:.*|unittest)$")


def _ini_test_sections(text: str) -> str:
    parts: list[str] = []
    current: list[str] = []
    keep = False
    for line in text.splitlines():
        m = _INI_SECTION.match(line)
        if m:
            if keep:
                parts.append("\n".join(current))
            current, keep = [line], bool(_INI_TEST_SECTIONS.match(m.group(1).strip()))
        else:
            current.append(line)
    if keep:
        parts.append("\n".join(current))
    return "\n".join(parts)


def _pyproject_test_sections(text: str) -> str:
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return text  # unparsable: any change may be one
    return repr({k: v for k, v in tool.items() if k.startswith(("pytest", "coverage", "tox", "hatch"))})


def is_harness_path(rel: str, hooks_path: str | None = None) -> bool:
    """Harness by path alone (every change to it counts)."""
    p = PurePosixPath(rel)
    if p.name in HARNESS_NAMES or p.name.endswith(HARNESS_SUFFIXES) or rel.startswith(HARNESS_DIRS):
        return True
    if hooks_path:
        prefix = hooks_path.strip("/").removeprefix("./") + "/"
        return rel.startswith(prefix)
    return False


def harness_change(rel: str, before: str, after: str, hooks_path: str | None = None) -> str | None:
    """Why changing `rel` from `before` to `after` touches the test harness, or None."""
    name = PurePosixPath(rel).name
    if is_harness_path(rel, hooks_path):
        return f"{rel} is a test-harness file"
    if name in ("setup.cfg", "tox.ini") and _ini_test_sections(before) != _ini_test_sections(after):
        return f"{rel}: its test sections change"
    if name == "pyproject.toml" and _pyproject_test_sections(before) != _pyproject_test_sections(after):
        return f"{rel}: its [tool.pytest*] / coverage settings change"
    return None
