"""The task record and how it is shown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

PRIORITIES = ("high", "normal", "low")
_MARK = {"high": "!", "normal": " ", "low": "."}


@dataclass
class Task:
    id: int
    title: str
    priority: str = "normal"
    tags: list[str] = field(default_factory=list)
    done: bool = False
    created: str = field(default_factory=lambda: date.today().isoformat())

    def __post_init__(self) -> None:
        self.title = self.title.strip()
        if not self.title:
            raise ValueError("a task needs a title")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {self.priority!r}")
        self.tags = sorted({t.strip().lower().lstrip("#") for t in self.tags if t.strip()})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Task":
        known = {"id", "title", "priority", "tags", "done", "created"}
        return cls(**{k: v for k, v in data.items() if k in known})


def sort_key(task: Task) -> tuple:
    """Open tasks first, then by priority, then oldest first."""
    return (task.done, PRIORITIES.index(task.priority), task.id)


def format_task(task: Task) -> str:
    box = "[x]" if task.done else "[ ]"
    tags = "  " + " ".join(f"#{t}" for t in task.tags) if task.tags else ""
    return f"{task.id:>3} {box} {_MARK[task.priority]} {task.title}{tags}"
