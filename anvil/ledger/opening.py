"""Opening the ledger for a command: one clean error, with a hint that fits the cause.

`run`, `ask`, `demo`, `cost report`, `show` and `runs` all open it through
`open_ledger`, so a damaged ledger never shows a traceback: the message says
which file and what is wrong with it, the hint what to do about it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from anvil.errors import UserError
from anvil.ledger.db import Ledger, configured_url, default_path
from anvil.ledger.migrations import NewerSchema


class LedgerUnavailable(UserError):
    """The ledger file cannot be opened (or upgraded)."""

    def __init__(self, path: Path, cause: str, hint: str) -> None:
        super().__init__(f"cannot open the cost ledger at {path}: {cause}", hint=hint)
        self.path = path
        self.cause = cause


def diagnose(path: Path, exc: BaseException) -> LedgerUnavailable:
    """The error for `exc`, raised while opening the ledger at `path`."""
    text = str(exc)
    aside = f"move it aside (`mv {path} {path}.broken`); anvil starts a new ledger at the next call"
    if isinstance(exc, NewerSchema):
        return LedgerUnavailable(path, f"it was written by a newer anvil (schema {exc.found})",
                                 "upgrade anvil (`pip install -U anvil-agent`), or set ANVIL_HOME to another folder")
    if path.is_dir():
        return LedgerUnavailable(path, "it is a directory, not a file", f"remove or rename that directory ({path})")
    if path.exists() and not path.is_file():
        return LedgerUnavailable(path, "it is not a regular file", f"remove it ({path}), or set ANVIL_HOME")
    if not path.parent.is_dir() and isinstance(exc, OSError):
        return LedgerUnavailable(path, f"its folder cannot be created ({exc.strerror or text})",
                                 f"{path.parent} must be a writable directory (or set ANVIL_HOME)")
    low = text.lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in low or "malformed" in low
                                                   or "corrupt" in low):
        return LedgerUnavailable(path, f"the file is damaged ({text})", aside)
    if "readonly" in low or "read-only" in low or isinstance(exc, PermissionError) or "permission" in low:
        return LedgerUnavailable(path, f"it cannot be written ({text})",
                                 "check the permissions of the file and its folder (or set ANVIL_HOME)")
    if "locked" in low or "busy" in low:
        return LedgerUnavailable(path, f"another process holds it ({text})",
                                 "wait for the other anvil to finish, then try again")
    return LedgerUnavailable(path, f"{type(exc).__name__}: {text}",
                             "check that ANVIL_HOME (or ~/.anvil) is writable; if the file is damaged, " + aside)


def open_ledger(path: Path | str | None = None) -> Ledger:
    """A `Ledger`, or `LedgerUnavailable` (a UserError) naming the cause."""
    if path is None and configured_url() is not None:
        return Ledger()  # the team's PostgreSQL ledger: its own errors already say which and why
    where = Path(path) if path is not None else default_path()
    try:
        return Ledger(where)
    except (sqlite3.Error, NewerSchema, OSError) as exc:
        raise diagnose(where, exc) from None
