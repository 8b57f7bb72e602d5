"""Repository retrieval: tree-sitter chunks, BM25 and a repository map (DESIGN.md 10)."""
