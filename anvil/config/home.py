"""`$ANVIL_HOME/config.yaml`: settings that belong to the user, not to a repository.

Today one key: `ledger: {url: postgresql://...}` keeps the cost ledger in a team
PostgreSQL database instead of `$ANVIL_HOME/ledger.db`. It is read only from
the home folder: a repository cannot send a user's spend to another database.
Other top-level keys are left to their own readers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

HOME_CONFIG_FILE = "config.yaml"


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str

    @field_validator("url")
    @classmethod
    def _postgres(cls, v: str) -> str:
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave `ledger` out for the SQLite default)")
        return v


class HomeConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    ledger: LedgerSettings | None = None


def load_home_config(env: Any = None) -> HomeConfig:
    from anvil.config.yamlsrc import YamlSyntaxError, read_yaml
    from anvil.errors import UserError
    from anvil.paths import anvil_home

    path = anvil_home(env) / HOME_CONFIG_FILE
    if not path.is_file():
        return HomeConfig()
    try:
        data = read_yaml(path).data
    except YamlSyntaxError as exc:
        raise UserError(f"{path}: {exc}") from None
    try:
        return HomeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        # the message, never the value: a URL may hold a password
        raise UserError(f"{path}: {where}: {err['msg']}",
                        hint="ledger: {url: postgresql://user@host/db} keeps the ledger in PostgreSQL") from None
