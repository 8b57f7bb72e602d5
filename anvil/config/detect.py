"""What `anvil init` finds out about a repository: languages, commands, default branch.

The commands come from what the repository already runs: its Makefile
targets, tox / nox sessions and pyproject scripts (poe, pdm, hatch) are read
for test, lint and type-check invocations (ruff, flake8, pylint, mypy,
pyright, ty), keeping their arguments (`mypy src`, `pytest -n auto`); a
`unittest` project gets `python -m unittest`. Detection reads files and asks
git; `baseline_failures` is the one place that runs the project's commands
(once, on the base commit, in a throwaway worktree) to tell a failure the run
caused from one that was already there.
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
    pre_existing_failures: list[str] = field(default_factory=list)


# A tool invocation inside a recipe line: `$(PYTHON) -m mypy src`, `uv run pyright`, `session.run("ty", "check")`.
_TOOL = re.compile(r"(?:^|[\s\"'(@-])(?:python3? -m |uv run |poetry run |pdm run )?"
                   r"\b(pytest|mypy|pyright|ty check|ruff check|ruff format --check|flake8|pylint|black --check)\b"
                   r"([^\n;&|#\"')]*)")
_TYPECHECKERS = ("mypy", "pyright", "ty check")
_LINTERS = ("ruff check", "flake8", "pylint")


def _recipes(root: Path) -> list[str]:
    """The lines where the repo runs its own tools: Makefile recipes, tox commands, nox sessions, pyproject
    scripts (nox's `session.run("mypy", "src")` is turned into `mypy src`)."""
    texts = [_read(root, "Makefile") or _read(root, "makefile") or _read(root, "GNUmakefile"), _read(root, "tox.ini")]
    nox = _read(root, "noxfile.py")
    for call in re.findall(r"session\.run\(([^)]*)\)", nox):
        texts.append(" ".join(re.findall(r"[\"']([^\"']+)[\"']", call)))
    pyproject = _read(root, "pyproject.toml")
    if pyproject:
        import tomllib

        try:
            tool = tomllib.loads(pyproject).get("tool", {})
        except tomllib.TOMLDecodeError:
            tool = {}
        tables = [tool.get("poe", {}).get("tasks", {}), tool.get("pdm", {}).get("scripts", {})]
        tables += [env.get("scripts", {}) for env in tool.get("hatch", {}).get("envs", {}).values()
                   if isinstance(env, dict)]
        for table in tables:
            for value in (table.values() if isinstance(table, dict) else ()):
                if isinstance(value, dict):
                    value = value.get("cmd") or value.get("shell") or ""
                texts.append(" ".join(value) if isinstance(value, list) else str(value))
    return [line.strip() for text in texts for line in text.splitlines() if line.strip()]


def recipe_commands(root: Path) -> dict[str, str]:
    """{tool: the command as the repo runs it} for each tool its recipes invoke (first use wins)."""
    found: dict[str, str] = {}
    for line in _recipes(root):
        for m in _TOOL.finditer(line):
            tool, args = m.group(1), " ".join(m.group(2).split())
            if "$" in args or "{" in args:  # make/tox variables: the bare tool, not a half-expanded line
                args = ""
            found.setdefault(tool, f"{tool} {args}".strip())
    return found


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


def _unittest_project(root: Path, files: list[str]) -> bool:
    tests = [f for f in files if re.search(r"(^|/)test_[^/]*\.py$", f)][:20]
    texts = [_read(root, f) for f in tests]
    return bool(texts) and any("import unittest" in t or "from unittest" in t for t in texts) \
        and not any("import pytest" in t or "from pytest" in t for t in texts)


def _pytest_extra(root: Path) -> str:
    """The parallelism flags the repo's own pytest runs use (`-n auto` with pytest-xdist)."""
    invoked = recipe_commands(root).get("pytest", "")
    m = re.search(r"(?:^|\s)(-n\s*\S+|--numprocesses[= ]\S+)", invoked)
    return f" {m.group(1)}" if m else ""


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
    pytest_configured = ("[tool.pytest" in pyproject or "[tool:pytest]" in setup_cfg or "[pytest]" in tox
                         or (root / "pytest.ini").is_file() or (root / "conftest.py").is_file())
    if not pytest_configured and "pytest" not in recipe_commands(root) and _unittest_project(root, files):
        start = " -s tests" if (root / "tests").is_dir() else ""
        return f"python -m unittest discover{start} -t ."
    if pytest_configured or has_py_tests or "pytest" in recipe_commands(root):
        return "python -m pytest -q" + _pytest_extra(root)
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
    ran = recipe_commands(root)  # what the Makefile / tox / nox / pyproject scripts already run
    if "[tool.ruff" in pyproject or (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file() \
            or "ruff check" in ran:
        lint.append(ran.get("ruff check", "ruff check ."))
        if "[tool.ruff.format" in pyproject or "ruff format --check" in ran:
            fmt.append(ran.get("ruff format --check", "ruff format --check ."))
    if (root / ".flake8").is_file() or "[flake8]" in setup_cfg or "[flake8]" in tox or "flake8" in ran:
        lint.append(ran.get("flake8", "flake8"))
    if "pylint" in ran:
        lint.append(ran["pylint"])
    if "[tool.black" in pyproject or "black --check" in ran:
        fmt.append(ran.get("black --check", "black --check ."))
    if "[tool.mypy" in pyproject or (root / "mypy.ini").is_file() or "[mypy]" in setup_cfg or "mypy" in ran:
        types.append(ran.get("mypy", "mypy ."))
    if "[tool.pyright" in pyproject or (root / "pyrightconfig.json").is_file() or "pyright" in ran:
        types.append(ran.get("pyright", "pyright"))
    if "[tool.ty" in pyproject or (root / "ty.toml").is_file() or "ty check" in ran:
        types.append(ran.get("ty check", "ty check"))
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


def baseline_failures(root: Path, base: str, commands: list[str], *, timeout: float = 300) -> dict[str, str]:
    """Run each command once on `base` in a throwaway worktree: {command: why it failed} for those that fail.

    A run is then not sent back to build for a failure it did not cause (the validate stage reads the
    list from `pre_existing_failures`). The worktree is removed whatever happens."""
    import shutil
    import tempfile

    from anvil.workspace.testrun import default_source_roots, run_command

    failed: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="anvil-init-"))
    tree = tmp / "base"
    try:
        if _git(root, "worktree", "add", "--detach", "--quiet", str(tree), base) is None:
            return {}
        roots = default_source_roots(tree)
        for cmd in commands:
            r = run_command(cmd, tree, timeout, source_roots=roots)
            if not r.passed:
                failed[cmd] = r.summary()
    finally:
        _git(root, "worktree", "remove", "--force", str(tree))
        _git(root, "worktree", "prune")
        shutil.rmtree(tmp, ignore_errors=True)
    return failed
