"""Writing a convention's check at promotion: one model call, tested against the recorded cases.

The model sees the complaint, the flagged lines and their fixed versions, and
answers with a regex or a tree-sitter query. The answer is untrusted: it is
accepted only if it flags every original case and no fixed version
(anvil.memory.checks.accept); a refused answer is sent back once with the
reason. The caller supplies `ask` (system, user) -> text, which goes through
the chain-walker and the ledger like any other call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from anvil.memory.checks import MAX_PATTERN, Check, accept
from anvil.memory.conventions import Convention, Conventions

if TYPE_CHECKING:
    from anvil.config.schema import StagePolicy
    from anvil.routing.resolver import ResolvedModel
    from anvil.routing.walker import CallSite, Walker

Ask = Callable[[str, str], tuple[str, str]]  # (system, user) -> (answer text, the model that gave it)
MAX_CASES = 8  # cases of each side shown to the model (the check is still tested on all of them)
TRIES = 2


class CheckAnswer(BaseModel):
    kind: Literal["regex", "query"] = "regex"
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN)
    explanation: str = ""


@dataclass(frozen=True)
class Written:
    check: Check | None
    refused: str  # '' when `check` was accepted; else why the last answer was refused
    calls: int
    model: str  # the model whose check was accepted


def _prompt(c: Convention, originals: list[str], fixed: list[str]) -> str:
    from anvil.stages.base import section

    def fence(items: list[str]) -> str:
        return "\n".join(f"```\n{x.strip()}\n```" for x in items[:MAX_CASES]) or "(none recorded)"

    return "\n".join([section("The complaint", f"{c.message}\n\nrule key: {c.key} (language {c.language})"),
                      section("Original cases (must be flagged)", fence(originals)),
                      section("Fixed versions (must not be flagged)", fence(fixed))])


def write_check(c: Convention, originals: list[str], fixed: list[str], ask: Ask,
                accept: Callable[[Check], str]) -> Written:
    """Ask for a check, test it with `accept` (returns '' or why not), retry once with the reason."""
    from anvil.stages.base import load_prompt
    from anvil.stages.schemas import AnswerInvalid, parse_answer

    system = load_prompt("conventions")
    user = _prompt(c, originals, fixed)
    why = ""
    for n in range(1, TRIES + 1):
        text, model = ask(system, user if not why else f"{user}\n{why}\n\nAnswer again with a corrected check.")
        try:
            answer = parse_answer(text, CheckAnswer)
        except AnswerInvalid as exc:
            why = f"Your previous answer was not valid: {exc}"
            continue
        check = Check(answer.kind, answer.pattern, c.language)
        refused = accept(check)
        if not refused:
            return Written(check, "", n, model)
        why = f"Your previous check ({answer.kind} {answer.pattern!r}) was refused: {refused}"
    return Written(None, why, TRIES, "")


def promote_by_model(conventions: Conventions, c: Convention, ask: Ask) -> Written:
    """Write `c`'s check with the model and promote it when accepted (nothing changes when refused)."""
    originals, fixed = conventions.cases(c.key)
    written = write_check(c, originals, fixed, ask, lambda check: accept(check, originals, fixed))
    if written.check is not None:
        refused = conventions.promote(c.key, written.check, written_by=written.model)
        if refused:  # accept() passed a moment ago on the same cases: only a concurrent change gets here
            return Written(None, refused, written.calls, written.model)
    return written


def walker_ask(walker: Walker, chain: Sequence[ResolvedModel], policy: StagePolicy, site: CallSite) -> Ask:
    """An `Ask` through the chain-walker: every call is a ledger row stamped with `site`."""
    from anvil.providers.types import Message
    from anvil.routing.request import stage_request

    def ask(system: str, user: str) -> tuple[str, str]:
        request = stage_request(policy, [Message("system", system), Message("user", user)],
                                json_schema=CheckAnswer.model_json_schema(), schema_name="CheckAnswer")
        walk = walker.call(chain, request, site)
        return walk.result.text, walk.model.id

    return ask
