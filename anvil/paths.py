"""Where anvil keeps things: `$ANVIL_HOME` (default ~/.anvil) and the repo's `.anvil/`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


def anvil_home(env: Mapping[str, str] | None = None) -> Path:
    """The user-level folder: keys, the ledger, user policy files. Created 0700."""
    env = os.environ if env is None else env
    home = Path(env.get("ANVIL_HOME") or Path.home() / ".anvil").expanduser()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def find_repo_root(start: Path | None = None) -> Path | None:
    """The top of the git work tree containing `start` (default: cwd), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return Path(out.stdout.strip())


def repo_anvil_dir(repo_root: Path) -> Path:
    return repo_root / ".anvil"
