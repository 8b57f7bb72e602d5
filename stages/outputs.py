"""What each stage leaves for the stages after it, typed (read with `ctx.output(Model)`).

A stage's output lives in the run state (`state.json`, under the stage's
`data`), so a resumed run reloads it instead of paying for it again. These
models are the one description of those keys: a stage saves its output with
`ctx.save(output)` and any later stage reads it with `ctx.output(Model)`.
Unknown keys are kept (`extra="allow"`), so a state file written by another
version of anvil still loads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from anvil.stages.names import StageName
from anvil.stages.schemas import Plan, Review, Spec


class StageOutput(BaseModel):
    model_config = ConfigDict(extra="allow")
    STAGE: ClassVar[StageName]


class ClarifyOutput(StageOutput):
    STAGE: ClassVar[StageName] = "clarify"
    spec: Spec | None = None
    asked: list[dict[str, Any]] = Field(default_factory=list)


class PlanOutput(StageOutput):
    STAGE: ClassVar[StageName] = "plan"
    plan: Plan | None = None
    context_files: list[str] = Field(default_factory=list)


class RefusedPath(BaseModel):
    path: str
    reason: str


class ToolLoopRecord(BaseModel):
    model: str
    stop: str
    turns: int
    tool_calls: int


class BuildOutput(StageOutput):
    STAGE: ClassVar[StageName] = "build"
    changed_files: list[str] = Field(default_factory=list)
    refused: list[RefusedPath] = Field(default_factory=list)
    harness_files: list[str] = Field(default_factory=list)  # test-harness files changed; review is told
    views: dict[str, Any] = Field(default_factory=dict)  # what the first message showed (anvil.tools.views)
    loops: list[ToolLoopRecord] = Field(default_factory=list)
    no_changes: str = ""  # the model's reason when it answered NO CHANGES NEEDED
    scope_added: dict[str, str] = Field(default_factory=dict)  # unplanned files kept, with the model's reason
    scope_asked: list[str] = Field(default_factory=list)  # unplanned files the model was asked about (once)
    reverted: list[str] = Field(default_factory=list)  # unplanned files put back
    kept_models: list[str] = Field(default_factory=list)  # the models whose edits were kept (commit trailer)


class TestResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str | None = None
    passed: bool | None = None
    exit_code: int | None = None
    timed_out: bool = False
    duration: float = 0.0
    failing_tests: list[str] = Field(default_factory=list)
    signature: str | None = None
    summary: str = "not run"
    report: str = ""
    verdict: dict[str, Any] | None = None  # anvil.workspace.verdict.Verdict.to_json(): who said it passed


class TestOutput(StageOutput):
    __test__ = False  # not a pytest class
    STAGE: ClassVar[StageName] = "test"
    tests_written: bool = False
    tests_added: int = 0
    test_files: list[str] = Field(default_factory=list)
    tests_paid: str | None = None  # dollars the tests cost (None: unpriced), kept with the checkpoint
    tests_tokens: int = 0
    result: TestResult | None = None
    runs: int = 0
    command_seconds: float = 0.0  # wall time of every command this stage ran (the planned tests' own run too)
    command_cpu_seconds: float = 0.0  # user+sys of those commands' processes
    new_tests_ran: bool | None = None  # the plan's test files showed up in (or passed on) a run

    @property
    def summary(self) -> str:
        return self.result.summary if self.result else "not run"


class CommandCheck(BaseModel):
    kind: str
    command: str
    passed: bool
    summary: str
    report: str = ""
    pre_existing: bool = False  # it fails on the base commit too (anvil.workspace.baseline)
    new_failures: list[str] = Field(default_factory=list)


class CriterionResult(BaseModel):
    criterion: str
    met: bool
    evidence: str
    by: str


class ValidateResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    commands: list[CommandCheck] = Field(default_factory=list)
    changed_files: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    scope_added: dict[str, str] = Field(default_factory=dict)
    criteria: list[CriterionResult] = Field(default_factory=list)


class ValidateOutput(StageOutput):
    STAGE: ClassVar[StageName] = "validate"
    result: ValidateResult | None = None
    command_seconds: float = 0.0
    verdicts: dict[str, list[CriterionResult]] = Field(default_factory=dict)  # by diff + criteria: reused


class ReviewRound(BaseModel):
    model_config = ConfigDict(extra="allow")
    findings: list[dict[str, Any]] = Field(default_factory=list)
    dropped: list[dict[str, Any]] = Field(default_factory=list)
    enforced: list[dict[str, Any]] = Field(default_factory=list)  # about an enforced convention: dropped


class ReviewOutput(StageOutput):
    STAGE: ClassVar[StageName] = "review"
    review: Review | None = None
    rounds: list[ReviewRound] = Field(default_factory=list)


class ShipOutput(StageOutput):
    STAGE: ClassVar[StageName] = "ship"
    sha: str | None = None
    message: str | None = None
    branch: str | None = None
    pr_url: str | None = None
