"""`anvil init` on small generated repos of several languages, and outside a git repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.foundation_helpers import git_repo

ANVIL = [sys.executable, "-m", "anvil"]


def anvil(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANVIL, *args], cwd=cwd, capture_output=True, text=True, input=stdin, timeout=60)


CASES = {
    "python": ({"pyproject.toml": "[tool.pytest.ini_options]\n[tool.ruff]\n[tool.mypy]\n", "src/pkg/__init__.py": "",
                "tests/test_x.py": "def test_x():\n    pass\n"},
               "python", "python -m pytest -q", ["ruff check ."], ["src"]),
    "javascript": ({"package.json": json.dumps({"scripts": {"test": "node --test"}}), "index.js": "",
                    "lib/a.js": "", "eslint.config.js": ""},
                   "javascript", "npm test", ["npx eslint ."], []),
    "go": ({"go.mod": "module x\n", "main.go": "package main\n", ".golangci.yml": ""},
           "go", "go test ./...", ["golangci-lint run"], []),
    "rust": ({"Cargo.toml": "[package]\nname='x'\n", "src/main.rs": "fn main(){}\n"},
             "rust", "cargo test", [], ["src"]),
    "make": ({"Makefile": "build:\n\tcc x.c\ntest:\n\t./run-tests\n", "x.c": "int main(){}\n"},
             "c", "make test", [], []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_detects(tmp_path: Path, name: str) -> None:
    files, lang, test_cmd, lint, roots = CASES[name]
    repo = git_repo(tmp_path / name, files)
    res = anvil(repo, "init", "--yes", "--offline", "--json")
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    assert found["languages"][0] == lang
    assert found["test_command"] == test_cmd
    assert found["lint_commands"] == lint
    assert found["source_roots"] == roots
    assert found["default_branch"] == "main"
    written = yaml.safe_load((repo / ".anvil/config.yaml").read_text())
    assert written["test_command"] == test_cmd
    gitignore = (repo / ".gitignore").read_text()
    assert ".anvil/runs/" in gitignore and ".anvil/cache/" in gitignore


def test_init_config_is_commented_and_valid(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", CASES["python"][0])
    assert anvil(repo, "init", "--yes", "--offline").returncode == 0
    text = (repo / ".anvil/config.yaml").read_text()
    assert text.count("#") > 5
    assert anvil(repo, "policy", "check").returncode == 0


def test_init_twice_keeps_user_edits_unless_forced(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", CASES["python"][0])
    assert anvil(repo, "init", "--yes", "--offline").returncode == 0
    cfg = repo / ".anvil/config.yaml"
    cfg.write_text(cfg.read_text().replace('test_command: "python -m pytest -q"', 'test_command: "make check"'))
    res = anvil(repo, "init", "--yes", "--offline")
    assert res.returncode == 0
    assert "make check" in cfg.read_text()
    assert "kept existing" in res.stderr
    assert (repo / ".gitignore").read_text().count(".anvil/runs/") == 1
    assert anvil(repo, "init", "--yes", "--offline", "--force").returncode == 0
    assert "make check" not in cfg.read_text()


def test_init_policies_writes_editable_copies(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", CASES["python"][0])
    assert anvil(repo, "init", "--yes", "--offline", "--policies").returncode == 0
    assert (repo / ".anvil/stage-policy.yaml").is_file() and (repo / ".anvil/models.yaml").is_file()
    assert anvil(repo, "policy", "check").returncode == 0


def test_init_outside_a_git_repo_is_a_clear_error(tmp_path: Path) -> None:
    res = anvil(tmp_path, "init", "--yes")
    assert res.returncode == 2
    assert "must be run inside a git work tree" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".anvil").exists()
