"""The SQLite cost ledger (DESIGN.md 7)."""

from anvil.ledger.db import AttemptRow, Ledger, Spend, default_path, utc_now_iso
from anvil.ledger.report import run_summary

__all__ = ["AttemptRow", "Ledger", "Spend", "default_path", "utc_now_iso", "run_summary"]
