"""What every stage gets (`StageContext`) and returns (`StageOutcome`), and shared helpers.

A stage is a module with `NAME` and `run(ctx) -> StageOutcome`. It reads the
outputs of earlier stages from the run state (so a resumed run reloads them
instead of paying for them again), writes its artifact to the run folder and
its machine-readable output to `ctx.data(NAME)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

MAX_FILE_CHARS = 24_000  # one file's share of a prompt
MAX_LISTED_FILES = 200


@dataclass
class StageOutcome:
    status: str = "done"  # done | skipped | back
    back_to: str | None = None  # "build" when the work must be redone
    reason: str = ""
    signature: str | None = None  # the failure's fingerprint (stuck detection)
    summary: str = ""  # one line for the progress display


@dataclass
class StageContext:
    config: Any
    repo_root: Path
    worktree: Path
    base_ref: str
    run: Any  # anvil.run.store.Run
    llm: Any  # anvil.run.stage_llm.StageLLM
    progress: Any
    request: str
    interactive: bool = False  # a TTY and no --yes: clarify may ask
    prompt_user: Callable[[str], str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def data(self, stage: str) -> dict[str, Any]:
        return self.run.state.stage(stage).data

    def policy(self, stage: str) -> Any:
        return self.config.policy.stage(stage)

    # outputs of earlier stages, reloaded from the run state
    def spec(self) -> Any:
        from anvil.stages.schemas import Spec

        raw = self.data("clarify").get("spec")
        return Spec.model_validate(raw) if raw else Spec(goal=self.request)

    def plan(self) -> Any:
        from anvil.stages.schemas import Plan

        raw = self.data("plan").get("plan")
        return Plan.model_validate(raw) if raw else None

    @property
    def feedback(self) -> str:
        """What the next build attempt must fix (test failures, review findings)."""
        return self.run.state.data.get("build_feedback", "")

    @feedback.setter
    def feedback(self, text: str) -> None:
        self.run.state.data["build_feedback"] = text


def command_guard(ctx: StageContext) -> dict[str, Any]:
    """`run_command` arguments that keep the run's credentials out of a repo command and its output."""
    from anvil.workspace.env import catalogue_key_variables

    return {"drop_env": sorted(catalogue_key_variables(ctx.config.catalogue)),
            "secrets": list(getattr(ctx.run, "secrets", []) or [])}


def load_prompt(name: str) -> str:
    """`stages/prompts/<name>.md`; its first line is the stage marker (`anvil stage: NAME`)."""
    return resources.files("anvil.stages").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")


def tracked_files(root: Path) -> list[str]:
    from anvil.workspace.gitops import git

    out = git(["ls-files", "-z"], root, check=False).stdout
    return sorted(p for p in out.split("\0") if p)


def file_list(root: Path, limit: int = MAX_LISTED_FILES) -> str:
    files = tracked_files(root)
    shown = files[:limit]
    more = f"\n... and {len(files) - limit} more" if len(files) > limit else ""
    return "\n".join(shown) + more


def read_for_prompt(root: Path, rel: str, limit: int = MAX_FILE_CHARS) -> str | None:
    """A repository file as a fenced prompt block, or None when it is missing or outside."""
    from anvil.workspace.confine import EditRefused, confined_path

    try:
        path = confined_path(root, rel)
    except EditRefused:
        return None
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if len(text) > limit:
        text = text[:limit] + f"\n... [truncated: {len(text) - limit} more characters]"
    return f"{rel}\n```\n{text}\n```"


def files_block(root: Path, paths: list[str], limit_total: int = 80_000) -> str:
    out, used, seen = [], 0, set()
    for rel in paths:
        if rel in seen:
            continue
        seen.add(rel)
        block = read_for_prompt(root, rel)
        if block is None or used + len(block) > limit_total:
            continue
        out.append(block)
        used += len(block)
    return "\n\n".join(out)


def mentioned_paths(root: Path, text: str) -> list[str]:
    """Tracked files whose path or file name appears in `text`."""
    found = []
    for rel in tracked_files(root):
        name = rel.rsplit("/", 1)[-1]
        if rel in text or (len(name) > 3 and name in text):
            found.append(rel)
    return found


def section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.strip() or '(none)'}\n"
