"""The SQLite cost ledger (DESIGN.md 7)."""
