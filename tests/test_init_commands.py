"""`anvil init` reads the commands a repository already runs (Makefile, tox, nox, pyproject scripts), finds
unittest projects and `pytest -n auto`, and runs each detected command once on the base commit: one that
fails there is marked pre-existing-failing. Through the real `anvil` binary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.e2e_helpers import ANVIL
from tests.foundation_helpers import git_repo


def init(repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANVIL, "init", "--yes", "--json", *extra], cwd=repo, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "ANVIL_HOME": str(repo.parent / "home")})


def test_makefile_tox_nox_and_pyproject_scripts_name_the_commands(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", {
        "Makefile": "lint:\n\t$(PYTHON) -m ruff check src tests\ntypes:\n\tmypy src\ntest:\n\tpytest -n auto tests\n",
        "noxfile.py": "import nox\n@nox.session\ndef types(session):\n    session.run('pyright', 'src')\n",
        "pyproject.toml": "[tool.poe.tasks]\ncheck = \"ty check src\"\n",
        "src/pkg/__init__.py": "", "tests/test_a.py": "def test_a():\n    pass\n"})
    p = init(repo, "--offline")
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["test_command"] == "python -m pytest -q -n auto"
    assert found["lint_commands"] == ["ruff check src tests"]
    assert found["typecheck_commands"] == ["mypy src", "pyright src", "ty check src"]
    config = yaml.safe_load((repo / ".anvil" / "config.yaml").read_text())
    assert config["typecheck_commands"] == ["mypy src", "pyright src", "ty check src"]


def test_tox_commands_and_a_unittest_project(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", {
        "tox.ini": "[testenv:lint]\ncommands =\n    flake8 src\n    pylint src\n",
        "tests/__init__.py": "",
        "tests/test_b.py": "import unittest\n\nclass T(unittest.TestCase):\n    def test_b(self):\n        pass\n"})
    found = json.loads(init(repo, "--offline").stdout)
    assert found["test_command"] == "python -m unittest discover -s tests -t ."
    assert found["lint_commands"] == ["flake8 src", "pylint src"]


def test_a_command_failing_on_the_base_commit_is_marked_pre_existing(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "r", {
        "Makefile": "test:\n\tpython -m unittest discover -s tests -t .\n",
        "tests/__init__.py": "",
        "tests/test_ok.py": "import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        pass\n",
        "tests/test_broken.py": "import unittest\n\nclass B(unittest.TestCase):\n"
                                "    def test_broken(self):\n        self.fail('broken before anvil')\n"})
    p = init(repo)
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["test_command"] == "python -m unittest discover -s tests -t ."
    assert found["pre_existing_failures"] == [found["test_command"]]
    assert any("already fails on main" in n and "pre-existing-failing" in n for n in found["notes"])
    config = yaml.safe_load((repo / ".anvil" / "config.yaml").read_text())
    assert config["pre_existing_failures"] == [found["test_command"]]
    # the throwaway worktree is gone, the user's tree untouched
    assert subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout.count(
        "\n") == 1

    (repo / "tests" / "test_broken.py").unlink()
    subprocess.run(["git", "commit", "-qam", "fix"], cwd=repo, check=True)
    again = json.loads(init(repo, "--force").stdout)
    assert again["pre_existing_failures"] == []
