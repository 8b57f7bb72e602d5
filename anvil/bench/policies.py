"""The policies a bench compares: `--policy FILE_OR_DIR`, repeatable.

A file is a stage-policy.yaml; a folder holds a stage-policy.yaml and optionally a models.yaml
(like examples/policies/*). The name is the file's stem or the folder's name. Without any
`--policy`, one policy named `default`: whatever anvil would use (the bundled policy and the
user's own layers). Each task's copy of the repository gets the policy's files in `.anvil/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anvil.errors import UserError

POLICY_FILES = ("stage-policy.yaml", "models.yaml")


@dataclass(frozen=True)
class Policy:
    name: str
    files: dict[str, Path] = field(default_factory=dict)  # name in .anvil/ -> source


def load_policies(args: list[str]) -> list[Policy]:
    if not args:
        return [Policy("default")]
    out: list[Policy] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            files = {n: path / n for n in POLICY_FILES if (path / n).is_file()}
            if "stage-policy.yaml" not in files:
                raise UserError(f"--policy {arg}: the folder has no stage-policy.yaml")
            name = path.resolve().name
        elif path.is_file():
            files = {"stage-policy.yaml": path}
            name = path.resolve().parent.name if path.stem == "stage-policy" else path.stem
        else:
            raise UserError(f"--policy {arg}: no such file or folder")
        if name in {p.name for p in out}:
            name = f"{name}-{len(out) + 1}"
        out.append(Policy(name, files))
    return out
