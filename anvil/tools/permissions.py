"""Which tool permission classes a stage has (DESIGN.md 13), fail-closed.

`stages.<name>.tools` in stage-policy.yaml names them; a stage that does not
say gets its default below, and a stage not listed here gets none.
"""

from __future__ import annotations

from anvil.tools.base import Permission

DEFAULTS: dict[str, frozenset[Permission]] = {
    "clarify": frozenset({"read"}),
    "plan": frozenset({"read"}),
    "review": frozenset({"read"}),
    "build": frozenset({"read", "write", "exec"}),
    "test": frozenset({"read", "write", "exec"}),
    "validate": frozenset({"read", "exec"}),
    "ship": frozenset(),
}


def stage_permissions(stage: str, configured: tuple[str, ...] | None) -> frozenset[Permission]:
    """The stage's permissions: what its policy says, else its default, else none."""
    if configured is not None:
        return frozenset(p for p in configured if p in ("read", "write", "exec"))  # type: ignore[misc]
    return DEFAULTS.get(stage, frozenset())
