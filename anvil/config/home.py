"""`$ANVIL_HOME/config.yaml`: settings that belong to the user, not to a repository.

Today one key: `ledger: {url: postgresql://...}` keeps the cost ledger in a team
PostgreSQL database instead of `$ANVIL_HOME/ledger.db`. It is read only from
the home folder: a repository cannot send a user's spend to another database.
Other top-level keys are left to their own readers.

Checked by hand, not by pydantic: every command that opens the ledger reads
this file, and importing pydantic and building its validators would cost
`anvil cost report` more than the rest of the command (issue 16, start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from anvil.config.yamlsrc import YamlSyntaxError, read_yaml
from anvil.errors import UserError
from anvil.paths import anvil_home

HOME_CONFIG_FILE = "config.yaml"
_LEDGER_HINT = "ledger: {url: postgresql://user@host/db} keeps the ledger in PostgreSQL"


@dataclass(frozen=True)
class LedgerSettings:
    url: str


@dataclass(frozen=True)
class HomeConfig:
    ledger: LedgerSettings | None = None


def _ledger(value: object, path: object) -> LedgerSettings | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise UserError(f"{path}: ledger: must be a mapping with one key, url", hint=_LEDGER_HINT)
    unknown = sorted(str(k) for k in value if k != "url")
    if unknown:
        raise UserError(f"{path}: ledger.{unknown[0]}: unknown key (ledger takes only url)", hint=_LEDGER_HINT)
    url = value.get("url")
    if url is None:
        raise UserError(f"{path}: ledger.url: required", hint=_LEDGER_HINT)
    # the message, never the value: a URL may hold a password
    if not isinstance(url, str):
        raise UserError(f"{path}: ledger.url: must be a string", hint=_LEDGER_HINT)
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserError(f"{path}: ledger.url: must be a postgresql:// URL (leave `ledger` out for the SQLite default)",
                        hint=_LEDGER_HINT)
    return LedgerSettings(url=url)


def load_home_config(env: Mapping[str, str] | None = None) -> HomeConfig:
    path = anvil_home(env) / HOME_CONFIG_FILE
    if not path.is_file():
        return HomeConfig()
    try:
        data = read_yaml(path).data
    except YamlSyntaxError as exc:
        raise UserError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    if data is None:
        return HomeConfig()
    if not isinstance(data, Mapping):
        raise UserError(f"{path}: must be a mapping of settings, e.g. {_LEDGER_HINT}")
    return HomeConfig(ledger=_ledger(data.get("ledger"), path))
