"""Per-repository memory: facts a run learned, with provenance, validity and anchors (DESIGN.md section 17)."""
