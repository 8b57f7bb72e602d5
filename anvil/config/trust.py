"""Repository trust: a cloned repo's `.anvil/` is not the user's until the user says so (DESIGN.md 14).

The layers bundled, `$ANVIL_HOME`, env and flags are the user's. The repo
layer came with a `git clone`: it may route stages (which catalogue model, which
tier, how many retries) but, until approved, nothing else it sets is read —
not a command, a base_url, an api_key_env, a price or a URL. That is an
allow-list (`routing_allowed`), so a key added to the schema later is withheld
by default.

Approval is a hash of the layer's files recorded in `$ANVIL_HOME/trust.json`
under the repo's path; any change to those files needs approval again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from anvil.paths import anvil_home

TRUST_FILE = "trust.json"
# Under .anvil/ but written by anvil itself, not part of the layer a clone brings.
_NOT_LAYER = frozenset({"runs", "cache", "demo"})


@dataclass(frozen=True)
class RepoTrust:
    """How the repo layer was read: approved or not, and what was withheld (`file:line key`)."""

    approved: bool = True  # no repo layer at all counts as nothing to approve
    withheld: tuple[str, ...] = ()
    digest: str = ""


def layer_files(repo_root: Path) -> list[Path]:
    """The files of the repo layer: everything under `.anvil/` except what anvil writes there."""
    base = Path(repo_root) / ".anvil"
    if not base.is_dir():
        return []
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        if here == base:
            dirnames[:] = [d for d in dirnames if d not in _NOT_LAYER]
        dirnames.sort()
        # A symlink counts by what it points to (the loader follows it), so changing its target needs approval.
        found += [here / f for f in sorted(filenames) if (here / f).is_file()]
    return found


def layer_digest(repo_root: Path) -> str:
    """sha256 over the layer's file names and contents; "" when the repo has no layer."""
    files = layer_files(repo_root)
    if not files:
        return ""
    h = hashlib.sha256()
    base = Path(repo_root) / ".anvil"
    for path in files:
        rel = path.relative_to(base).as_posix().encode()
        if path.is_symlink():
            rel += b" -> " + os.readlink(path).encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _store_path(home: Path | None, env: Mapping[str, str] | None) -> Path:
    return (Path(home) if home is not None else anvil_home(env)) / TRUST_FILE


def _read_store(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    repos = data.get("repos") if isinstance(data, dict) else None
    return {k: v for k, v in repos.items() if isinstance(v, dict)} if isinstance(repos, dict) else {}


def _write_store(path: Path, repos: dict[str, dict[str, str]]) -> None:
    from anvil.run.store import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps({"repos": repos}, indent=2, sort_keys=True) + "\n")


def _key(repo_root: Path) -> str:
    return str(Path(repo_root).resolve())


def is_own_layer(repo_root: Path, home: Path) -> bool:
    """A repo whose `.anvil/` IS $ANVIL_HOME (a dotfiles repo in ~): that layer is the user's."""
    try:
        return (Path(repo_root) / ".anvil").resolve() == Path(home).resolve()
    except OSError:
        return False


def is_approved(repo_root: Path, *, home: Path | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether the repo layer, as it is now on disk, is the one the user approved."""
    digest = layer_digest(repo_root)
    if not digest:
        return True
    home_dir = Path(home) if home is not None else anvil_home(env)
    if is_own_layer(repo_root, home_dir):
        return True
    entry = _read_store(_store_path(home_dir, None)).get(_key(repo_root)) or {}
    return entry.get("sha256") == digest


def approve(repo_root: Path, home: Path | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """Record the repo layer as it is now as approved; the digest ("" when there is no layer).

    `anvil init`, `anvil demo` and `anvil bench` call this for the files they wrote themselves."""
    digest = layer_digest(repo_root)
    path = _store_path(home, env)
    repos = _read_store(path)
    if digest:
        files = [p.relative_to(Path(repo_root) / ".anvil").as_posix() for p in layer_files(repo_root)]
        repos[_key(repo_root)] = {"sha256": digest, "approved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "files": ", ".join(files)}
    else:
        repos.pop(_key(repo_root), None)
    _write_store(path, repos)
    return digest


def revoke(repo_root: Path, home: Path | None = None, *, env: Mapping[str, str] | None = None) -> bool:
    """Forget the approval; whether there was one."""
    path = _store_path(home, env)
    repos = _read_store(path)
    existed = repos.pop(_key(repo_root), None) is not None
    if existed:
        _write_store(path, repos)
    return existed


def withheld_warning(trust: RepoTrust, limit: int = 40) -> str:
    """The one line printed when an unapproved repo layer set more than routing: every key, by file."""
    by_file: dict[str, list[str]] = {}
    for name in trust.withheld:
        where, _, key = name.partition(" ")
        file = where.rsplit(":", 1)[0] if where.rsplit(":", 1)[-1].isdigit() else where
        by_file.setdefault(file, []).append(key.split(" (", 1)[0])
    parts, shown = [], 0
    for file, keys in by_file.items():
        room = max(0, limit - shown)
        more = f", +{len(keys) - room} more" if len(keys) > room else ""
        parts.append(f"{file} ({', '.join(keys[:room])}{more})")
        shown += len(keys)
    return (f"anvil: warning: this repository's .anvil/ files are not approved, so anvil ignored what they set "
            f"beyond stage routing: {'; '.join(parts)}. Review them with `anvil trust --show`, approve them "
            f"with `anvil trust` (or --trust-repo)")
