"""Check a plan against the repository before any code is written (DESIGN.md 9, plan).

Deterministic and cheap: each problem is one sentence the plan model can act
on when it is asked to try again. Works on the pydantic models of
`anvil.stages.schemas` (Plan, Spec) and on plain dicts of the same shape.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.workspace.confine import EditRefused, confined_path, normalize_rel

if TYPE_CHECKING:
    from anvil.stages.schemas import Plan, Spec

_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]+\.py$|_test\.(py|go)$|\.(test|spec)\.[cm]?[jt]sx?$|Test\.java$"
)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _items(obj: Any, name: str) -> list[Any]:
    value = _get(obj, name)
    return list(value) if value else []


def _path_of(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    for key in ("path", "file", "name"):
        value = _get(item, key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path.replace("\\", "/")))


def _check_path(root: Path, path: str, where: str, problems: list[str]) -> str | None:
    """The normalised path, or None after recording why it is not acceptable."""
    try:
        clean = normalize_rel(path)
        confined_path(root, clean)
    except EditRefused as exc:
        problems.append(f"{where}: {exc.reason}; plans may only touch files inside the repository, never .git/")
        return None
    return clean


def validate_plan(plan: Plan, spec: Spec, root: Path) -> list[str]:
    """Problems with `plan` (empty when it is fine to build)."""
    root = Path(root)
    problems: list[str] = []

    changes = _items(plan, "files_to_change")
    if not changes:
        problems.append("files_to_change is empty: the plan must name at least one file to change or create")
    planned: set[str] = set()
    for i, item in enumerate(changes):
        raw = _path_of(item)
        where = f"files_to_change[{i}]"
        if not raw:
            problems.append(f"{where} has no path")
            continue
        path = _check_path(root, raw, f"{where} ({raw})", problems)
        if path is None:
            continue
        if path in planned:
            problems.append(f"{where}: {path} is listed twice")
        planned.add(path)
        exists = (root / path).is_file()
        new = bool(_get(item, "new", False))
        if new and exists:
            problems.append(f"{where}: {path} is marked new but already exists (set new: false to edit it)")
        elif not new and not exists:
            if (root / path).is_dir():
                problems.append(f"{where}: {path} is a directory; name the files in it")
            else:
                problems.append(f"{where}: {path} does not exist (set new: true to create it, or fix the path)")

    readable: set[str] = set()
    for i, item in enumerate(_items(plan, "files_to_read")):
        raw = _path_of(item)
        if not raw:
            continue
        path = _check_path(root, raw, f"files_to_read[{i}] ({raw})", problems)
        if path is None:
            continue
        if not (root / path).exists():
            problems.append(f"files_to_read[{i}]: {path} does not exist")
        readable.add(path)

    test_paths: set[str] = set()
    tests = _items(plan, "tests_to_add")
    for i, item in enumerate(tests):
        raw = (_path_of(item) or "").split("::")[0].strip()  # "tests/test_x.py::test_y"
        if raw and ("/" in raw or "." in raw) and " " not in raw:
            path = _check_path(root, raw, f"tests_to_add[{i}] ({raw})", problems)
            if path:
                test_paths.add(path)

    known = planned | readable | test_paths
    for i, step in enumerate(_items(plan, "steps")):
        files = [f for f in (_path_of(x) for x in _items(step, "files")) if f]
        desc = str(_get(step, "description", "") or "").strip()
        label = f"steps[{i}]" + (f" ({desc[:60]})" if desc else "")
        if not desc:
            problems.append(f"{label} has no description")
        if not files:
            problems.append(f"{label} names no file: every step must say which files it changes")
            continue
        for raw in files:
            path = _check_path(root, raw, f"{label} file {raw!r}", problems)
            if path and path not in known and not (root / path).exists():
                problems.append(f"{label} uses {path}, which is not in files_to_change and does not exist")

    criteria = _items(spec, "acceptance_criteria") if spec is not None else []
    if criteria and not tests and not any(is_test_path(p) for p in planned):
        problems.append(f"the spec has {len(criteria)} acceptance criteria but the plan adds no tests: "
                        "list them in tests_to_add and put the test files in files_to_change")
    return problems
