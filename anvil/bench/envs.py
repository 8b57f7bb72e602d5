"""The bench config file and the per-repository environments it describes.

    # bench.yaml (anvil bench --config bench.yaml)
    cache: ~/.cache/anvil/bench-envs            # where environments are kept (this is the default)
    environments:
      pytest-dev/pytest:                        # SWE-bench's `repo` (`repo@version` wins over it)
        python: /usr/bin/python3.9              # the interpreter of the venv (default: python3)
        setup: pip install -e . hypothesis xmlschema   # once per environment commit, in a new venv,
                                                # run in a checkout of that commit
        install: pip install -q --no-deps --no-build-isolation -e .   # in each checkout before its tests
        env: {SETUPTOOLS_SCM_PRETEND_VERSION: "{version}.0"}          # {version}: the task's version
        test: python -m pytest -rA                # FAIL_TO_PASS / PASS_TO_PASS appended
        run_test_command: null                  # the run's own test command, if it should have one

An environment is a venv keyed by (repo, environment commit, python, setup): built once, kept
with a `ready` marker, reused by every task of that key and every later bench. Its `bin/` is
first on PATH for the commands. Verification installs the checkout into the venv, so tasks of
one environment are verified one at a time (a lock per environment, across processes too).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anvil.bench.repos import checkout
from anvil.bench.task import Task
from anvil.errors import AnvilError, UserError

SETUP_TIMEOUT = 1800.0
DEFAULT_CACHE = "~/.cache/anvil/bench-envs"


class EnvironmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    python: str = "python3"
    setup: str = "pip install -e ."
    install: str = ""
    env: dict[str, str] = Field(default_factory=dict)
    test: str = "python -m pytest -rA"
    run_test_command: str | None = None


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache: str = DEFAULT_CACHE
    environments: dict[str, EnvironmentSpec] = Field(default_factory=dict)


def load_config(path: Path | None) -> BenchConfig:
    if path is None:
        return BenchConfig()
    import yaml

    if not path.is_file():
        raise UserError(f"--config: no bench config at {path}")
    try:
        return BenchConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


class EnvironmentError_(AnvilError):  # noqa: N801 - `EnvironmentError` is a builtin alias of OSError
    """An environment could not be built (its log says why)."""


@dataclass(frozen=True)
class Environment:
    key: str
    venv: Path
    spec: EnvironmentSpec
    variables: dict[str, str]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        out = {**base, **self.variables, "VIRTUAL_ENV": str(self.venv)}
        out["PATH"] = f"{self.venv / 'bin'}:{base.get('PATH', '/usr/bin:/bin')}"
        out.pop("PYTHONPATH", None)
        out.pop("PYTHONHOME", None)
        return out

    def run(self, command: str, cwd: Path, base_env: dict[str, str], log: Path, timeout: float) -> int:
        return run_logged(command, cwd, self.env(base_env), log, timeout)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with _THREAD_LOCKS.setdefault(self.key, threading.Lock()), open(self.venv.parent / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def run_logged(command: str, cwd: Path, env: dict[str, str], log: Path, timeout: float) -> int:
    """`sh -c command` in `cwd`, its output appended to `log`; the exit code (124: timed out)."""
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {command}\n")
        f.flush()
        try:
            return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout, stdin=subprocess.DEVNULL).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[timed out after {timeout:.0f} s]\n")
            return 124


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_BUILD_LOCK = threading.Lock()


class Environments:
    def __init__(self, config: BenchConfig, base_env: dict[str, str]) -> None:
        self.config = config
        self.cache = Path(os.path.expanduser(config.cache))
        self.base_env = base_env

    def spec_for(self, task: Task) -> EnvironmentSpec | None:
        if not task.repo_name:
            return None
        envs = self.config.environments
        return envs.get(f"{task.repo_name}@{task.version}") or envs.get(task.repo_name)

    def get(self, task: Task) -> Environment | None:
        """The task's environment, built on first use; None when the config has none for its repo."""
        spec = self.spec_for(task)
        if spec is None:
            return None
        commit = task.env_commit or task.base
        digest = hashlib.sha256(f"{task.repo_name}\0{commit}\0{spec.python}\0{spec.setup}".encode()).hexdigest()[:16]
        key = f"{task.repo_name.replace('/', '+')}-{digest}"
        home = self.cache / key
        variables = {k: v.format(version=task.version) for k, v in spec.env.items()}
        env = Environment(key, home / "venv", spec, variables)
        with _BUILD_LOCK:
            lock = _THREAD_LOCKS.setdefault(key + ":build", threading.Lock())
        self.cache.mkdir(parents=True, exist_ok=True)
        with lock, open(self.cache / f"{key}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # another bench (a shard on this machine) may be building it
            try:
                if not (home / "ready").is_file():
                    self._build(task, commit, env, home)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return env

    def _build(self, task: Task, commit: str, env: Environment, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        log = home / "setup.log"
        log.write_text(f"environment {env.key}: {task.repo_name} at {commit}\n", encoding="utf-8")
        src = home / "src"
        checkout(task.source, commit, src)
        py = env.spec.python
        code = env.run(f"{shlex.quote(py)} -m venv {shlex.quote(str(env.venv))}", home, self.base_env, log, 300)
        if code == 0:
            code = env.run(env.spec.setup, src, self.base_env, log, SETUP_TIMEOUT)
        if code != 0:
            raise EnvironmentError_(f"the environment for {task.repo_name} ({commit[:10]}) did not build",
                                    hint=f"see {log}")
        (home / "ready").write_text(commit + "\n", encoding="utf-8")
