"""The seven stages, in order: the only place the order is written."""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

StageName = Literal["clarify", "plan", "build", "test", "validate", "review", "ship"]
STAGES: tuple[StageName, ...] = get_args(StageName)
SKIPPABLE: frozenset[StageName] = frozenset({"clarify", "test", "validate", "review"})


def is_stage(name: str) -> TypeGuard[StageName]:
    return name in STAGES
