"""A team's own tasks, in YAML (paths are relative to the file):

    tasks:
      - id: search-command
        repo: ../python-cli                 # a git repository, or a plain folder (committed as it is)
        ref: main                           # git only; default HEAD
        request: add a search command that lists tasks whose title contains a word
        test_command: python -m pytest -q   # the run's own test command (default: detected)
        verify: PYTHONPATH=src python -m pytest -q tests   # a command or a list; each must exit 0
        verify_files: {tests/test_hidden.py: hidden/test_search.py}   # added before verifying
        gold_patch: gold/search.patch       # the known fix (--model oracle, --verify diff)
        script: scripts/search.json         # answers per stage for --model scripted
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anvil.bench.task import Task
from anvil.errors import UserError


class _OwnTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    repo: str
    ref: str = ""
    request: str = Field(min_length=1)
    summary: str = ""
    test_command: str | None = None
    verify: str | list[str] = Field(default_factory=list)
    verify_files: dict[str, str] = Field(default_factory=dict)
    gold_patch: str | None = None
    script: str | None = None


class _OwnFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[_OwnTask]


def _read(base: Path, rel: str, what: str) -> str:
    path = (base / rel).resolve()
    if not path.is_file():
        raise UserError(f"{what}: no file at {path}")
    return path.read_text(encoding="utf-8")


def load_own_tasks(path: Path) -> list[Task]:
    import yaml

    try:
        doc = _OwnFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"{path}: {where}: {err['msg']}") from None
    base = path.parent
    tasks = []
    for t in doc.tasks:
        source = (base / t.repo).resolve()
        if not source.is_dir():
            raise UserError(f"{path}: task {t.id}: no repository folder at {source}")
        script = None
        if t.script:
            raw = json.loads(_read(base, t.script, f"task {t.id} script"))
            script = {stage: [a if isinstance(a, str) else json.dumps(a) for a in (v if isinstance(v, list) else [v])]
                      for stage, v in raw.items()}
        tasks.append(Task(
            id=t.id, kind="yaml", request=t.request, source=source, base=t.ref, summary=t.summary or t.request[:90],
            gold_patch=_read(base, t.gold_patch, f"task {t.id} gold_patch") if t.gold_patch else "",
            verify_commands=[t.verify] if isinstance(t.verify, str) else list(t.verify),
            verify_files={dest: _read(base, src, f"task {t.id} verify_files") for dest, src in t.verify_files.items()},
            test_command=t.test_command, script=script))
    return tasks
