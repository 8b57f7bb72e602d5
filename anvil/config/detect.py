"""What `anvil init` finds out about a repository: languages, commands, default branch.

Everything here reads files and asks git; nothing runs the project's code.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_EXT_LANG = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".rb": "ruby", ".kt": "kotlin",
    ".cs": "csharp", ".php": "php", ".swift": "swift", ".scala": "scala",
}


@dataclass
class Detection:
    languages: list[str] = field(default_factory=list)
    test_command: str | None = None
    lint_commands: list[str] = field(default_factory=list)
    typecheck_commands: list[str] = field(default_factory=list)
    format_commands: list[str] = field(default_factory=list)
    default_branch: str | None = None
    source_roots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _files(root: Path) -> list[str]:
    listed = _git(root, "ls-files", "--cached", "--others", "--exclude-standard")
    if listed is None:
        return []
    return [line for line in listed.splitlines() if line]


def detect_languages(files: list[str]) -> list[str]:
    counts = Counter(_EXT_LANG[Path(f).suffix] for f in files if Path(f).suffix in _EXT_LANG)
    if not counts:
        return []
    top = counts.most_common()
    # Keep the main language and any other with at least a fifth of its files.
    return [lang for lang, n in top if n * 5 >= top[0][1]]


def _read(root: Path, name: str) -> str:
    try:
        return (root / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def detect_test_command(root: Path, files: list[str]) -> str | None:
    pkg = _read(root, "package.json")
    if pkg:
        try:
            scripts = json.loads(pkg).get("scripts", {})
        except (json.JSONDecodeError, AttributeError):
            scripts = {}
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if test and "no test specified" not in test:
            return "npm test"
    pyproject, setup_cfg, tox = _read(root, "pyproject.toml"), _read(root, "setup.cfg"), _read(root, "tox.ini")
    has_py_tests = any(re.search(r"(^|/)(test_[^/]*|[^/]*_test)\.py$", f) for f in files)
    if ("[tool.pytest" in pyproject or "[tool:pytest]" in setup_cfg or "[pytest]" in tox
            or (root / "pytest.ini").is_file() or (root / "conftest.py").is_file() or has_py_tests):
        return "python -m pytest -q"
    if (root / "go.mod").is_file():
        return "go test ./..."
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    makefile = _read(root, "Makefile") or _read(root, "makefile")
    if re.search(r"^test\s*:", makefile, re.MULTILINE):
        return "make test"
    return None


def detect_lint(root: Path, files: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(lint, typecheck, format) commands, only where the repo configures the tool."""
    lint: list[str] = []
    types: list[str] = []
    fmt: list[str] = []
    pyproject, setup_cfg, tox = _read(root, "pyproject.toml"), _read(root, "setup.cfg"), _read(root, "tox.ini")
    if "[tool.ruff" in pyproject or (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file():
        lint.append("ruff check .")
        if "[tool.ruff.format" in pyproject:
            fmt.append("ruff format --check .")
    if (root / ".flake8").is_file() or "[flake8]" in setup_cfg or "[flake8]" in tox:
        lint.append("flake8")
    if "[tool.black" in pyproject:
        fmt.append("black --check .")
    if "[tool.mypy" in pyproject or (root / "mypy.ini").is_file() or "[mypy]" in setup_cfg:
        types.append("mypy .")
    eslint_files = [f for f in files if re.match(r"^(\.eslintrc(\.\w+)?|eslint\.config\.\w+)$", f)]
    if eslint_files or '"eslintConfig"' in _read(root, "package.json"):
        lint.append("npx eslint .")
    if any(f in (".golangci.yml", ".golangci.yaml", ".golangci.toml") for f in files):
        lint.append("golangci-lint run")
    if (root / "clippy.toml").is_file() or (root / ".clippy.toml").is_file():
        lint.append("cargo clippy -- -D warnings")
    if (root / "tsconfig.json").is_file():
        types.append("npx tsc --noEmit")
    return lint, types, fmt


def detect_default_branch(root: Path) -> str | None:
    head = _git(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if head:
        return head.split("/", 1)[-1]
    for name in ("main", "master", "trunk", "develop"):
        if _git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}") is not None:
            return name
    return _git(root, "symbolic-ref", "--quiet", "--short", "HEAD") or _git(root, "config", "init.defaultBranch")


def detect(root: Path) -> Detection:
    files = _files(root)
    found = Detection()
    found.languages = detect_languages(files)
    found.test_command = detect_test_command(root, files)
    found.lint_commands, found.typecheck_commands, found.format_commands = detect_lint(root, files)
    found.default_branch = detect_default_branch(root)
    if (root / "src").is_dir():
        found.source_roots = ["src"]
    if found.test_command is None:
        found.notes.append("no test command found: set test_command in .anvil/config.yaml")
    return found
