"""The seven pipeline stages, one module each (DESIGN.md 9)."""
