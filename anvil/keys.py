"""API keys: from the environment, or from `$ANVIL_HOME/keys.json` (mode 0600).

Never from YAML, never into logs, run files or the ledger. A key file readable
by others is refused, as ssh refuses a loose private key.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.errors import UserError
from anvil.paths import anvil_home

if TYPE_CHECKING:
    from anvil.config.schema import ProviderEntry

KEY_FILE = "keys.json"


class MissingKeyError(UserError):
    def __init__(self, provider: str, variable: str | None) -> None:
        if variable:
            msg = f"provider {provider!r} needs an API key: set {variable}"
            hint = f"export {variable}=... (or add \"{provider}\": \"...\" to $ANVIL_HOME/{KEY_FILE}, mode 0600)"
        else:
            msg = f"provider {provider!r} needs an API key, and its entry names no api_key_env"
            hint = (f'add `api_key_env: SOME_VARIABLE` to the provider in models.yaml, '
                    f'or a "{provider}" entry to $ANVIL_HOME/{KEY_FILE}')
        super().__init__(msg, hint=hint)
        self.provider = provider
        self.variable = variable


def _key_file(env: Mapping[str, str]) -> Path:
    return anvil_home(env) / KEY_FILE


def read_key_file(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The key file's entries ({provider name or variable name: key}); {} when absent."""
    env = os.environ if env is None else env
    path = _key_file(env)
    if not path.is_file():
        return {}
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UserError(
            f"{path} is readable by other users (mode {mode:o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a JSON object of keys ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a JSON object {{\"provider\": \"key\"}}")
    return {str(k): str(v) for k, v in data.items()}


def resolve_key(provider_name: str, entry: ProviderEntry, env: Mapping[str, str] | None = None) -> str | None:
    """The key for a provider entry, or None when none is set.

    Order: the variable named by `api_key_env`, then the key file under the
    provider's name, then under the variable's name.
    """
    env = os.environ if env is None else env
    variable = getattr(entry, "api_key_env", None)
    if variable and env.get(variable):
        return env[variable]
    stored = read_key_file(env)
    return stored.get(provider_name) or (stored.get(variable) if variable else None)


def save_key(provider_name: str, key: str, env: Mapping[str, str] | None = None) -> Path:
    """Store a key in the key file, created 0600 before anything is written to it."""
    env = os.environ if env is None else env
    path = _key_file(env)
    data = read_key_file(env)
    data[provider_name] = key
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(path, 0o600)
    return path
