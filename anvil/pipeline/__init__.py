"""The stage runner, durable run store, edits and git (DESIGN.md 3, 8)."""
