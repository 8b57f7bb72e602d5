"""The stage contract: a typed `StageContext` bound to one stage, `StageOutcome`, and the `Stage` Protocol.

A stage is a module with `NAME` and `run(ctx) -> StageOutcome` (and, when it
can send the run back to build, `feedback_for_build(ctx)`). It talks to models
only through `ctx.ask` / `ctx.retry`, to the repository only through
`ctx.workspace`, reads earlier stages' outputs with `ctx.output(Model)` and
saves its own with `ctx.save(output)`: it never writes the run state itself.
Outputs live in the run state, so a resumed run reloads them instead of paying
for them again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from anvil.run.stage_llm import StageExhausted, StageFailed
from anvil.stages.names import STAGES, StageName
from anvil.stages.outputs import ClarifyOutput, PlanOutput, StageOutput
from anvil.stages.schemas import Plan, Spec
from anvil.workspace.confine import EditRefused, confined_path
from anvil.workspace.gitops import git

if TYPE_CHECKING:
    from pydantic import BaseModel

    from anvil.config.loader import Config
    from anvil.config.schema import StagePolicy
    from anvil.memory.conventions import Convention
    from anvil.providers.types import Message, ToolSpec
    from anvil.routing.resolver import ResolvedModel
    from anvil.run.events import Progress
    from anvil.run.stage_llm import Answer, Escalation, StageLLM
    from anvil.run.store import Run
    from anvil.tools.base import Permission, ToolBox
    from anvil.tools.loop import LoopOutcome
    from anvil.tools.write import EditLog
    from anvil.workspace.workspace import Workspace

MAX_FILE_CHARS = 24_000  # one file's share of a prompt
MAX_LISTED_FILES = 200

__all__ = ["Stage", "StageContext", "StageExhausted", "StageFailed", "StageOutcome", "StageRecord"]

Status = Literal["done", "skipped", "back"]
OutputT = TypeVar("OutputT", bound=StageOutput)
ModelT = TypeVar("ModelT", bound="BaseModel")
READ_TOOLS_NOTE = ("\n\nYou may read the repository with the tools (read_file, outline, search, list_dir) before "
                   "you answer; you cannot change files or run commands. End with the JSON object.")


@dataclass
class StageOutcome:
    status: Status = "done"
    back_to: StageName | None = None  # "build" when the work must be redone
    reason: str = ""
    signature: str | None = None  # the failure's fingerprint (stuck detection)
    summary: str = ""  # one line for the progress display

    def __post_init__(self) -> None:
        if self.status not in ("done", "skipped", "back"):  # a typo must not read as done
            raise ValueError(f"unknown stage status {self.status!r}")


@dataclass(frozen=True)
class StageRecord:
    stage: StageName
    model: str | None  # the model whose output was kept last
    models: list[str]
    tokens: int
    cost: Decimal | None


@dataclass
class StageContext:
    """One stage's view of the run. The runner makes one per stage with `for_stage`."""

    stage: StageName
    config: Config
    workspace: Workspace
    repo_root: Path  # the user's checkout (never edited; its caches and remotes are read)
    run: Run
    llm: StageLLM
    progress: Progress
    request: str
    interactive: bool = False  # a TTY and no --yes: clarify may ask
    prompt_user: Callable[[str], str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # The repository's live remembered facts (anvil.memory), read once at the run's start:
    # one byte-stable block at the front of every user prompt, so it caches with the prompt.
    memory: str = ""
    # the repository's promoted conventions (anvil.memory.conventions): validate runs their checks,
    # review is told they are enforced
    conventions: tuple[Convention, ...] = ()

    def for_stage(self, stage: StageName) -> StageContext:
        return StageContext(stage, self.config, self.workspace, self.repo_root, self.run, self.llm, self.progress,
                            self.request, self.interactive, self.prompt_user, self.options, self.memory,
                            self.conventions)

    # ------------------------------------------------------------ the repository

    @property
    def worktree(self) -> Path:
        return self.workspace.root

    @property
    def base_ref(self) -> str:
        return self.workspace.base

    # ------------------------------------------------------------ models

    def ask(self, system: str, user: str, *, schema: type[BaseModel] | None = None,
            history: list[Message] | None = None, tools: list[ToolSpec] | None = None,
            max_output_tokens: int | None = None) -> Answer:
        """One answer from this stage's chain (validated against `schema` when given)."""
        if self.memory:
            user = f"{self.memory}\n{user}"
        return self.llm.ask(self.stage, system, user, schema=schema, history=history, tools=tools or (),
                            max_output_tokens=max_output_tokens)

    def ask_with_tools(self, system: str, user: str, box: ToolBox, *, history: list[Message] | None = None,
                       max_output_tokens: int | None = None) -> LoopOutcome:
        """One attempt as a bounded tool loop on this stage's tool-capable models (anvil.tools.loop)."""
        if self.memory:  # the same remembered-facts block at the front as `ask` gives
            user = f"{self.memory}\n{user}"
        return self.llm.ask_with_tools(self.stage, system, user, box, history=history or (),
                                       max_output_tokens=max_output_tokens)

    def ask_reading(self, system: str, user: str, schema: type[ModelT], *, note: str = READ_TOOLS_NOTE
                    ) -> tuple[str, ModelT]:
        """A structured answer; when the stage may read and its model speaks tools, from a read-only tool
        loop (the model may look things up first), else from one call. An invalid final answer is asked
        again once through `ask` (which validates and retries as usual). Returns (text, parsed)."""
        from anvil.stages.schemas import AnswerInvalid, parse_answer

        if not self.can_use_tools():
            answer = self.ask(system, user, schema=schema)
            return answer.text, answer.parsed
        loop = self.ask_with_tools(system + note, user, self.toolbox())
        try:
            return loop.text, parse_answer(loop.text, schema)
        except AnswerInvalid as exc:
            self.event("stage.invalid_answer", model=loop.model, error=str(exc)[:500])
            from anvil.providers.types import Message

            fix = f"That answer was not valid: {exc}\n\nAnswer again with the complete JSON object only."
            answer = self.ask(system, fix, schema=schema,
                              history=[Message("user", user), Message("assistant", loop.text or "(no answer)")])
            return answer.text, answer.parsed

    def can_use_tools(self) -> bool:
        """The stage has tool permissions and its first usable model speaks native tool calls."""
        return bool(self.permissions()) and self.llm.can_use_tools(self.stage)

    def permissions(self) -> frozenset[Permission]:
        from anvil.tools.permissions import stage_permissions

        return stage_permissions(self.stage, self.policy.tools)

    def toolbox(self, *, log: EditLog | None = None) -> ToolBox:
        """The tools this stage may use over its workspace (exec tools bounded by what is left of its time)."""
        from anvil.tools.registry import toolbox

        left = self.llm.remaining(self.stage)
        timeout = min(float(self.policy.call_timeout or 120.0), left) if left is not None else 120.0
        return toolbox(self.stage, self.workspace, self.permissions(), test_command=self.config.repo.test_command,
                       command_timeout=max(1.0, timeout), log=log)

    def retry(self, reason: str, *, signature: str | None = None) -> Escalation:
        """Spend one of this stage's retries (applying its on_retry); raises StageExhausted when none is left."""
        return self.llm.retry(self.stage, reason, signature=signature)

    def chain(self) -> list[ResolvedModel]:
        return self.llm.chain(self.stage)

    @property
    def policy(self) -> StagePolicy:
        return self.config.policy.stage(self.stage)

    # ------------------------------------------------------------ outputs

    def output(self, model: type[OutputT]) -> OutputT:
        """The typed output a stage (this one or an earlier one) saved, or the model's defaults."""
        return model.model_validate(self.run.state.stage(model.STAGE).data)

    def save(self, output: StageOutput) -> None:
        """Save this stage's output into the run state (and to disk: a kill after this keeps it)."""
        if output.STAGE != self.stage:
            raise ValueError(f"stage {self.stage} cannot save the output of {output.STAGE}")
        self.run.state.stage(self.stage).data.update(output.model_dump(mode="json", exclude_unset=False))
        self.run.save()

    def spec(self) -> Spec:
        return self.output(ClarifyOutput).spec or Spec(goal=self.request)

    def plan(self) -> Plan | None:
        return self.output(PlanOutput).plan

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def branch(self) -> str:
        assert self.run.state.branch, "the runner names the branch before the first stage"
        return self.run.state.branch

    def run_file(self, name: str) -> Path:
        """A file in the run's folder (logs, reports) for this stage to write."""
        return self.run.dir / name

    def stage_records(self) -> list[StageRecord]:
        """Model, tokens and cost of every stage so far (read-only: for commit trailers and PR bodies)."""
        out = []
        for name in STAGES:
            st = self.run.state.stage(name)
            out.append(StageRecord(name, st.model, list(st.models), st.tokens, st.cost))
        return out

    def artifact(self, name: str, text: str) -> Path:
        return self.run.write_artifact(name, text)

    def event(self, kind: str, **fields: Any) -> None:
        self.run.event(kind, stage=self.stage, **fields)

    def note(self, text: str) -> None:
        self.progress.note(self.stage, text)

    @property
    def feedback(self) -> str:
        """What the next build attempt must fix (test failures, review findings)."""
        return self.run.state.build_feedback

    @feedback.setter
    def feedback(self, text: str) -> None:
        self.run.state.build_feedback = text


class Stage(Protocol):
    """What the runner calls. The seven modules of `anvil.stages` satisfy it."""

    NAME: StageName

    def run(self, ctx: StageContext) -> StageOutcome: ...


def feedback_for_build(stage: object, ctx: StageContext, outcome: StageOutcome) -> str:
    """A stage's own `feedback_for_build(ctx)`, or its outcome's reason (a new stage that goes back needs none)."""
    own = getattr(stage, "feedback_for_build", None)
    if callable(own):
        return str(own(ctx))
    return f"The {ctx.stage} stage sent the work back: {outcome.reason}"


def command_guard(ctx: StageContext) -> dict[str, Any]:
    """`run_command` arguments that keep the run's credentials out of a repo command and its output."""
    return {"drop_env": ctx.workspace.drop_env, "secrets": ctx.workspace.secrets}


def load_prompt(name: str) -> str:
    """`stages/prompts/<name>.md`; its first line is the stage marker (`anvil stage: NAME`)."""
    return resources.files("anvil.stages").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")


def tracked_files(root: Path) -> list[str]:
    out = git(["ls-files", "-z"], root, check=False).stdout
    return sorted(p for p in out.split("\0") if p)


def file_list(root: Path, limit: int = MAX_LISTED_FILES) -> str:
    files = tracked_files(root)
    shown = files[:limit]
    more = f"\n... and {len(files) - limit} more" if len(files) > limit else ""
    return "\n".join(shown) + more


def read_for_prompt(root: Path, rel: str, limit: int = MAX_FILE_CHARS) -> str | None:
    """A repository file as a fenced prompt block, or None when it is missing or outside."""
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
    """Files as prompt blocks within `limit_total`; the ones that did not fit are listed, never dropped silently."""
    out, used, seen, left_out = [], 0, set(), []
    for rel in paths:
        if rel in seen:
            continue
        seen.add(rel)
        block = read_for_prompt(root, rel)
        if block is None:
            continue
        if used + len(block) > limit_total:
            left_out.append(rel)
            continue
        out.append(block)
        used += len(block)
    if left_out:
        out.append("Not shown (no room in this message): " + ", ".join(left_out))
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
