"""End-to-end fixtures: a committed copy of examples/python-cli, a scripted vendor server behind
every stage, and the real `anvil` console script run as a subprocess with ANVIL_HOME in tmp."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvil.demo.scripted_run import KEY_ENV, REQUEST, ScriptedPipeline, scripted_models_yaml
from anvil.providers.scripted.server import ScriptedServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ANVIL = str(Path(sys.executable).with_name("anvil"))


def interruptible() -> None:
    """preexec_fn for a child a test sends Ctrl-C: a job started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def example_repo(dest: Path, *, extra: dict[str, str] | None = None, symlinks: dict[str, str] | None = None) -> Path:
    shutil.copytree(EXAMPLES / "python-cli", dest, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", ".pytest_cache", "build", ".venv"))
    for rel, text in (extra or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    for rel, target in (symlinks or {}).items():
        os.symlink(target, dest / rel)
    git(["init", "-q", "-b", "main"], dest)
    git(["-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A"], dest)
    git(["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init"], dest)
    return dest


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class E2E:
    repo: Path
    home: Path
    server: ScriptedServer
    pipeline: ScriptedPipeline
    env: dict[str, str] = field(default_factory=dict)

    def anvil(self, *args: str, timeout: float = 120) -> Result:
        p = subprocess.run([ANVIL, *args], cwd=self.repo, env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([ANVIL, *args], cwd=self.repo, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def init(self) -> None:
        r = self.anvil("init", "--yes", "--offline")
        assert r.code == 0, r.stderr

    def run_ok(self, *extra: str) -> dict[str, Any]:
        r = self.anvil("run", REQUEST, "--yes", "--json", *extra)
        assert r.code == 0, f"exit {r.code}\n{r.stderr}\n{r.stdout}"
        return r.json()

    def ledger_rows(self, run_id: str) -> list[dict[str, Any]]:
        con = sqlite3.connect(self.home / "ledger.db")
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))]
        finally:
            con.close()

    def state(self, run_id: str) -> dict[str, Any]:
        return json.loads((self.repo / ".anvil" / "runs" / run_id / "state.json").read_text())

    def run_dir(self, run_id: str) -> Path:
        return self.repo / ".anvil" / "runs" / run_id


def make_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_TOKEN")) and not k.startswith("ANVIL_")}
    env.update({"ANVIL_HOME": str(home), KEY_ENV: "scripted-test-key", "NO_COLOR": "1",
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
                "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    env.pop("PYTHONPATH", None)
    return env


def start(tmp_path: Path, pipeline: ScriptedPipeline, **repo_kw: Any) -> E2E:
    server = ScriptedServer().start()
    server.add_responder(pipeline)
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.yaml").write_text(scripted_models_yaml(server.url))
    repo = example_repo(tmp_path / "repo", **repo_kw)
    return E2E(repo, home, server, pipeline, make_env(home))


class InProcess:
    """The runner in-process on a committed example repo, the scripted server behind every stage.

    For the stage-loop tests: real adapters, git and test command, no CLI subprocess."""

    def __init__(self, tmp_path: Path, monkeypatch: Any, *, repo_config: str = "") -> None:
        self.home = tmp_path / "home"
        self.home.mkdir()
        monkeypatch.setenv("ANVIL_HOME", str(self.home))
        monkeypatch.setenv(KEY_ENV, "k")
        self.repo = example_repo(tmp_path / "repo")
        (self.repo / ".anvil").mkdir()
        (self.repo / ".anvil" / "config.yaml").write_text(
            f'test_command: "{sys.executable} -m pytest -q -p no:cacheprovider"\nsource_roots: [src]\n'
            "default_branch: main\n" + repo_config)
        self.servers: list[ScriptedServer] = []

    def runner(self, pipeline: ScriptedPipeline, policy: str = "") -> Any:
        from anvil.config.loader import load_config
        from anvil.ledger import Ledger
        from anvil.routing.availability import check_providers
        from anvil.run.runner import Runner, RunOptions
        from anvil.run.store import RunStore
        from anvil.ui.progress import NullProgress

        srv = ScriptedServer().start()
        self.servers.append(srv)
        srv.add_responder(pipeline)
        (self.home / "models.yaml").write_text(scripted_models_yaml(srv.url))
        if policy:
            (self.home / "stage-policy.yaml").write_text(policy)
        config = load_config(self.repo, trusted=True)  # the test wrote .anvil/config.yaml: approved
        run = RunStore(self.repo).create(REQUEST)
        run.state.base_ref = "main"
        return Runner(config, self.repo, run, options=RunOptions(yes=True), progress=NullProgress(),
                      ledger=Ledger(self.home / "ledger.db"), availability=check_providers(config, probe=False))

    def requests(self, stage: str) -> list[str]:
        return [r.body.decode() for s in self.servers for r in s.requests if f"anvil stage: {stage}" in r.body.decode()]

    def close(self) -> None:
        for s in self.servers:
            s.stop()
