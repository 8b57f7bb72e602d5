"""The demo's repository: a copy of a bundled example, one commit, `anvil init`, the demo's policy.

Everything the demo writes lives in this folder: the repository itself, its
`.anvil/` (config, the scripted catalogue and policy, runs, cache) and
`.anvil/demo/` (an empty user layer, so the user's own `$ANVIL_HOME` policy
files never change the demo, and the temp folder of the test command).
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.commands.init import ensure_gitignore, render_config
from anvil.config.detect import detect
from anvil.config.loader import load_config
from anvil.errors import UserError
from anvil.workspace.gitops import git

if TYPE_CHECKING:
    from anvil.config.loader import Config

SKIP = frozenset({"__pycache__", ".pytest_cache", ".venv", "build", "node_modules"})
IDENTITY = {"user.name": "anvil demo", "user.email": "demo@anvil.invalid", "commit.gpgsign": "false"}


@dataclass(frozen=True)
class DemoRepo:
    root: Path
    private: Path  # .anvil/demo: the empty user layer and the test command's temp folder
    created: bool  # the folder was made by the demo (a default temp folder)

    @property
    def empty_home(self) -> Path:
        return self.private / "no-user-policy"

    @property
    def tmp(self) -> Path:
        return self.private / "tmp"


def choose_folder(directory: str | None) -> tuple[Path, bool]:
    """`--dir` (new or empty), else a fresh temporary folder."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="anvil-demo-")).resolve(), True
    path = Path(directory).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"--dir {directory}: not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"--dir {directory}: the folder is not empty",
                        hint="give a new or empty folder; the demo never writes into existing work")
    path.mkdir(parents=True, exist_ok=True)
    return path, False


def copy_tree(src: Any, dest: Path) -> None:
    """Copy a package-data folder (a Traversable: works from a wheel or a zip too)."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        name = item.name
        if name in SKIP or name.endswith((".egg-info", ".pyc")):
            continue
        if item.is_dir():
            copy_tree(item, dest / name)
        else:
            (dest / name).write_bytes(item.read_bytes())


def _git(args: list[str], cwd: Path) -> str:
    return git(args, cwd).stdout


def test_command(no_tests: bool) -> str:
    """The example's real test command, run by this Python (which has pytest when anvil's tests do).

    Without pytest (anvil installed with pipx), or with `--no-tests`, the demo's own
    stdlib runner runs the same test functions (see anvil.demo.testrunner).
    """
    import importlib.util

    py = shlex.quote(sys.executable)
    if not no_tests and importlib.util.find_spec("pytest") is not None:
        return f"{py} -m pytest -q -p no:cacheprovider"
    return f"{py} -m anvil.demo.testrunner tests"


def prepare(directory: str | None, example: str, *, no_tests: bool = False) -> DemoRepo:
    """Copy the example, commit it on `main`, run init's detection, write `.anvil/config.yaml`."""
    root, created = choose_folder(directory)
    src = resources.files("anvil.examples").joinpath(example)
    if not src.is_dir():
        raise UserError(f"the bundled example {example!r} is missing from this installation of anvil")
    copy_tree(src, root)
    _git(["init", "-q", "-b", "main"], root)
    for key, value in IDENTITY.items():  # this repo only: the user's git config is not touched
        _git(["config", key, value], root)
    with open(root / ".git" / "info" / "exclude", "a", encoding="utf-8") as fh:
        fh.write(".anvil/\n")  # the demo's scripted catalogue and policy stay out of `git status`

    # `anvil init`: the same detection, config file and .gitignore lines, without its printing and probing.
    found = detect(root)
    found.test_command = test_command(no_tests)
    anvil_dir = root / ".anvil"
    anvil_dir.mkdir(exist_ok=True)
    (anvil_dir / "config.yaml").write_text(render_config(found), encoding="utf-8")
    ensure_gitignore(root)
    _git(["add", "-A"], root)
    _git(["commit", "-q", "--no-verify", "-m", "tasklist: a small to-do list CLI"], root)

    repo = DemoRepo(root, anvil_dir / "demo", created)
    repo.empty_home.mkdir(parents=True, exist_ok=True)
    repo.tmp.mkdir(parents=True, exist_ok=True)
    return repo


def write_policy(repo: DemoRepo, server_url: str) -> None:
    from anvil.demo import story as demo_story

    (repo.root / ".anvil" / "models.yaml").write_text(demo_story.models_yaml(server_url), encoding="utf-8")
    (repo.root / ".anvil" / "stage-policy.yaml").write_text(demo_story.stage_policy_yaml(), encoding="utf-8")


def config_env(repo: DemoRepo) -> dict[str, str]:
    """The environment the demo's configuration is read with: no user layer, no ANVIL_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVIL_")}
    env["ANVIL_HOME"] = str(repo.empty_home)
    return env


def load_demo_config(repo: DemoRepo) -> Config:
    return load_config(repo.root, env=config_env(repo))
