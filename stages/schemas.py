"""The structured outputs of the stages, validated at the edge (DESIGN.md 9).

A model answers in JSON; `parse_answer` pulls the JSON object out of the text
(a ```json fence or bare braces) and validates it with the stage's model. The
error text of a failed validation goes back to the model on the retry, so the
messages are kept short and concrete. Unknown keys are ignored (models add
them freely), missing optional lists default to empty.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from anvil.providers.jsonbounds import loads as bounded_loads


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _text_items(v: Any) -> Any:
    """A list of strings as models send it: one string, or items that are objects."""
    if isinstance(v, str):
        return [v] if v.strip() else []
    if isinstance(v, list):
        out = []
        for x in v:
            if isinstance(x, dict):
                path = x.get("path") or x.get("file") or x.get("name")
                rest = " - ".join(str(x[k]) for k in ("test", "description", "text", "criterion") if x.get(k))
                x = "::".join(p for p in (str(path) if path else "", rest) if p) if path else rest or str(x)
            out.append(x)
        return out
    return v


# ---------------------------------------------------------------- clarify


class Spec(_Loose):
    goal: str = Field(min_length=1)
    acceptance_criteria: list[str] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)

    @field_validator("acceptance_criteria", "assumptions", "open_questions", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _text_items(v)

    def markdown(self) -> str:
        out = [f"# Spec\n\n**Goal:** {self.goal}\n", "## Acceptance criteria"]
        out += [f"- {c}" for c in self.acceptance_criteria] or ["- (none)"]
        out += ["", "## Assumptions"] + ([f"- {a}" for a in self.assumptions] or ["- (none)"])
        out += ["", "## Open questions"] + ([f"- {q}" for q in self.open_questions] or ["- (none)"])
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- plan


class FileChange(_Loose):
    path: str = Field(min_length=1)
    reason: str = ""
    new: bool = False
    # Where the change lands, so a file too big to show whole is shown around them (anvil.tools.views).
    symbols: list[str] = Field(default_factory=list)  # "Class.method", "function"
    lines: list[str] = Field(default_factory=list)  # "120-140", "88"

    @field_validator("symbols", "lines", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        if isinstance(v, (str, int)):
            v = [v]
        return [str(x) for x in v] if isinstance(v, list) else v


class Step(_Loose):
    description: str
    files: list[str] = Field(default_factory=list)

    @field_validator("files", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        return [x.get("path", "") if isinstance(x, dict) else x for x in v] if isinstance(v, list) else v


class ScopeKeep(_Loose):
    path: str
    reason: str = Field(min_length=3)


class Plan(_Loose):
    files_to_read: list[str] = Field(default_factory=list)
    files_to_change: list[FileChange] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    tests_to_add: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)
    rollback: str = ""

    @field_validator("files_to_read", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        # Models often give [{"path": ...}] where a list of paths is asked for.
        if isinstance(v, list):
            return [x.get("path", "") if isinstance(x, dict) else x for x in v]
        return v

    @field_validator("files_to_change", mode="before")
    @classmethod
    def _changes(cls, v: Any) -> Any:
        return [{"path": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @field_validator("tests_to_add", "risks", mode="before")
    @classmethod
    def _texts(cls, v: Any) -> Any:
        return _text_items(v)

    @field_validator("rollback", mode="before")
    @classmethod
    def _rollback(cls, v: Any) -> Any:
        return "; ".join(map(str, v)) if isinstance(v, list) else v

    def planned_paths(self) -> list[str]:
        return [f.path for f in self.files_to_change]


class ScopeAnswer(_Loose):
    """The builder's answer about files it changed that the plan did not list."""

    keep: list[ScopeKeep] = Field(default_factory=list)


# ---------------------------------------------------------------- validate


class CriterionCheck(_Loose):
    criterion: str
    met: bool
    evidence: str = ""


class CriteriaVerdict(_Loose):
    criteria: list[CriterionCheck] = Field(default_factory=list)


# ---------------------------------------------------------------- review

Severity = Literal["blocking", "major", "minor", "nit"]


class Finding(_Loose):
    severity: Severity
    file: str = ""
    line: int | None = None
    evidence: str = ""  # quoted from the diff
    message: str
    rule: str = ""  # a short name of the rule broken, the same each time (conventions count it: anvil.memory.rulekey)

    @field_validator("severity", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("line", mode="before")
    @classmethod
    def _first_number(cls, v: Any) -> Any:
        # "12-14", "L12", "line 12": the first number is the line; no number is no line.
        if isinstance(v, str):
            m = re.search(r"\d+", v)
            return int(m.group()) if m else None
        return v


class Review(_Loose):
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "blocking"]


# ---------------------------------------------------------------- ship


class CommitText(_Loose):
    subject: str = Field(min_length=1)
    body: str = ""


# ---------------------------------------------------------------- parsing

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n\s*```", re.S)


class AnswerInvalid(ValueError):
    """The answer is not valid JSON for the schema; `str(self)` is what the model is told."""


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer: a fenced block, the whole text, or the outermost braces."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    candidates.append(text.strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    last: Exception | None = None
    for c in candidates:
        try:
            return bounded_loads(c)
        except ValueError as exc:  # malformed, or nested too deep
            last = exc
    raise AnswerInvalid(f"the answer is not a JSON object ({last}); answer with one JSON object only")


def parse_answer(text: str, model: type[M]) -> M:
    data = extract_json(text)
    if not isinstance(data, dict):
        raise AnswerInvalid("the answer must be one JSON object, not a " + type(data).__name__)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors()[:8]:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"- {where}: {err['msg']}")
        raise AnswerInvalid(f"the JSON does not match the {model.__name__} schema:\n" + "\n".join(lines)) from None


def schema_for(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
