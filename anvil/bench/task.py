"""The task every format loads into, and `load_tasks`, which picks the format from the path.

    *.jsonl                     SWE-bench (anvil.bench.swebench)
    *.yaml / *.yml              a team's own tasks (anvil.bench.owntasks)
    a folder with .meta/        aider's polyglot layout: one exercise, or a tree of them (anvil.bench.polyglot)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from anvil.errors import UserError

TaskKind = Literal["swebench", "polyglot", "yaml"]


@dataclass
class Task:
    id: str
    kind: TaskKind
    request: str
    source: Path  # a git repository (clone or bare mirror), or a plain folder to commit
    base: str = ""  # commit or ref in `source` ('' for a plain folder)
    repo_name: str = ""  # "owner/name": which environment of the bench config applies
    summary: str = ""  # one line (the oracle's spec goal and commit subject)
    gold_patch: str = ""  # the known fix (oracle, --verify diff)
    test_patch: str = ""  # applied before verifying (SWE-bench)
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    verify_commands: list[str] = field(default_factory=list)  # each must exit 0 (own tasks, polyglot)
    verify_files: dict[str, str] = field(default_factory=dict)  # path -> content, written before verifying
    test_command: str | None = None  # the run's own test command (None: detected)
    script: dict[str, list[str]] | None = None  # scripted answers per stage (--model scripted)
    exclude: tuple[str, ...] = ()  # left out when a plain folder is committed (polyglot: .meta)
    version: str = ""
    env_commit: str = ""  # SWE-bench's environment_setup_commit: the key of the cached environment
    language: str = ""

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.id)[:120]


def load_tasks(path: Path, repos: Path | None = None) -> list[Task]:
    """Every task at `path`, in file order (see the module docstring)."""
    if not path.exists():
        raise UserError(f"no task file or folder at {path}")
    if path.is_dir():
        from anvil.bench.polyglot import load_polyglot

        tasks = load_polyglot(path)
    elif path.suffix == ".jsonl":
        from anvil.bench.swebench import load_swebench

        tasks = load_swebench(path, repos)
    elif path.suffix in (".yaml", ".yml"):
        from anvil.bench.owntasks import load_own_tasks

        tasks = load_own_tasks(path)
    else:
        raise UserError(f"{path}: not a task set anvil knows",
                        hint="give a SWE-bench .jsonl, a tasks .yaml, or a folder of exercism exercises")
    ids = [t.id for t in tasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UserError(f"{path}: task ids must be unique; repeated: {', '.join(dupes[:5])}")
    if not tasks:
        raise UserError(f"{path}: no tasks found")
    return tasks


def select(tasks: list[Task], *, only: list[str] | None = None, limit: int | None = None,
           shard: tuple[int, int] | None = None) -> list[Task]:
    """--only, then --shard (every N-th task from I: deterministic, balanced), then --limit."""
    if only:
        known = {t.id for t in tasks}
        missing = [i for i in only if i not in known]
        if missing:
            raise UserError(f"--only: no task named {', '.join(missing[:5])}")
        tasks = [t for t in tasks if t.id in set(only)]
    if shard is not None:
        index, count = shard
        tasks = [t for i, t in enumerate(tasks) if i % count == index]
    return tasks[:limit] if limit is not None else tasks


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`I/N` (0-based I; `1/4` is the second of four slices)."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text!r}: I must be in 0..N-1")
    return i, n
