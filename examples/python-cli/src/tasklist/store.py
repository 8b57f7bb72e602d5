"""Tasks kept in a JSON file (default ~/.tasks.json, or $TASKS_FILE)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tasklist.model import Task, sort_key


class TaskNotFound(KeyError):
    def __init__(self, task_id: int) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"no task with id {self.task_id}"


def default_path() -> Path:
    return Path(os.environ.get("TASKS_FILE") or Path.home() / ".tasks.json")


class TaskStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.tasks: list[Task] = []
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8") or "[]")
            self.tasks = [Task.from_dict(d) for d in data]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([t.to_dict() for t in self.tasks], indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def _next_id(self) -> int:
        return max((t.id for t in self.tasks), default=0) + 1

    def add(self, title: str, priority: str = "normal", tags: list[str] | None = None) -> Task:
        task = Task(id=self._next_id(), title=title, priority=priority, tags=list(tags or []))
        self.tasks.append(task)
        return task

    def get(self, task_id: int) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise TaskNotFound(task_id)

    def complete(self, task_id: int) -> Task:
        task = self.get(task_id)
        task.done = True
        return task

    def remove(self, task_id: int) -> Task:
        task = self.get(task_id)
        self.tasks.remove(task)
        return task

    def clear_done(self) -> int:
        before = len(self.tasks)
        self.tasks = [t for t in self.tasks if not t.done]
        return before - len(self.tasks)

    def query(self, *, include_done: bool = False, tag: str | None = None) -> list[Task]:
        found = [t for t in self.tasks if include_done or not t.done]
        if tag:
            found = [t for t in found if tag.lower().lstrip("#") in t.tags]
        return sorted(found, key=sort_key)
