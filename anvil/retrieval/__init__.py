"""Repository retrieval: tree-sitter chunks, BM25 and a repository map (DESIGN.md 10).

Public API (stable; the plan and build stages use only this):

    from anvil.retrieval import retrieve, Retriever, ContextPack

    pack = retrieve(repo_root, "the request text", budget_tokens=8000)
    pack.files        # list[RankedFile]: .path (repo-relative, POSIX), .score, .reasons (why it ranks),
                      #   .symbols (what it defines: "func", "Class(method, ...)"; top 15 files only)
    pack.chunks       # list[PackedChunk]: .path, .start_line, .end_line (1-based, inclusive),
                      #   .symbol ("Class.method", "" for module code / line windows), .kind,
                      #   .text, .tokens (estimated, of the rendered block), .score,
                      #   .truncated (cut to its first lines to fit; end_line is the last shown)
    pack.tokens_used  # estimated tokens of pack.render(); always <= budget_tokens
    pack.render()     # the text a model sees: ranked file list, then chunks grouped by file
    pack.to_dict()    # JSON-ready (what `anvil context --json` prints)
    pack.packed_paths()  # files with at least one chunk in the pack, in rank order

Packing: breadth first (the best chunk of each top file, cut to a share of
the budget), then depth (whole chunks by score). Chunks are rendered grouped
by file under a "### path:start-end (symbol)" header, after a ranked list of
the top files.

    # Several queries against one work tree: open the index once.
    r = Retriever.open(repo_root)
    r.query("request", budget_tokens=8000)

Token counts are an estimate, ceil(characters / 4) (``tokens.estimate_tokens``):
cheap, deterministic, no vocabulary file. ``repo_root`` must be inside a git
work tree (``NotAGitRepo`` otherwise); the index lives in the repository's
git directory (``<git-common-dir>/anvil/``: one cache shared by every
worktree and every run, never in a diff) and is updated incrementally
(``index.py``).
"""

from __future__ import annotations

from pathlib import Path

from anvil.retrieval.files import NotAGitRepo, repo_root
from anvil.retrieval.pack import ContextPack, PackedChunk, RankedFile
from anvil.retrieval.tokens import estimate_tokens

__all__ = [
    "ContextPack", "NotAGitRepo", "PackedChunk", "RankedFile", "Retriever", "estimate_tokens", "repo_root", "retrieve",
]

DEFAULT_BUDGET = 8000


def retrieve(
    repo_root_path: Path, request: str, budget_tokens: int = DEFAULT_BUDGET, *, use_cache: bool = True
) -> ContextPack:
    """Rank the repository's files and chunks for ``request``; pack them into ``budget_tokens``."""
    from anvil.retrieval.retriever import Retriever

    return Retriever.open(repo_root_path, use_cache=use_cache).query(request, budget_tokens)


def __getattr__(name: str):  # Retriever imports numpy and tree-sitter: load it on first use
    if name == "Retriever":
        from anvil.retrieval.retriever import Retriever

        return Retriever
    raise AttributeError(name)
