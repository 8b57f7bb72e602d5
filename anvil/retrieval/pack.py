"""Fit the best chunks into a token budget, and render them for a model.

Packing has two passes. First breadth: the best chunk of each of the top
``first_pass_files`` files, in file order, so that every likely file is at
least seen. Then depth: the remaining chunks by score, as long as they fit.
A chunk that does not fit is skipped (a smaller one may still fit); nothing
is cut mid-chunk. Rendering groups chunks by file (in rank order) and by
line, each under a header naming path, lines and symbol. ``tokens_used`` is
the sum of the estimates of the rendered pieces, which is never less than
the estimate of the whole text and never more than the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from anvil.retrieval.tokens import estimate_tokens

FENCE_LANG = {
    "python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "tsx",
    "go": "go", "rust": "rust", "java": "java", "c": "c", "cpp": "cpp",
}
MAX_LISTED_FILES = 15


@dataclass(frozen=True)
class RankedFile:
    path: str
    score: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackedChunk:
    path: str
    start_line: int  # 1-based, inclusive
    end_line: int
    symbol: str
    kind: str
    text: str
    tokens: int  # estimated tokens of the rendered block (header + fenced text)
    score: float
    language: str | None = None

    def render(self) -> str:
        label = f" ({self.symbol})" if self.symbol else ""
        fence = FENCE_LANG.get(self.language or "", "")
        return f"### {self.path}:{self.start_line}-{self.end_line}{label}\n```{fence}\n{self.text}\n```\n"


@dataclass
class ContextPack:
    """What a stage sees: ranked files, the chunks chosen, tokens used (estimated)."""

    request: str
    budget_tokens: int
    files: list[RankedFile]
    chunks: list[PackedChunk]
    tokens_used: int
    header: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        """The text a model sees: the ranked file list, then the chunks by file."""
        return self.header + "".join(c.render() for c in self.chunks)

    def packed_paths(self) -> list[str]:
        """Files with at least one chunk in the pack, in rank order."""
        seen: dict[str, None] = {}
        for c in self.chunks:
            seen.setdefault(c.path, None)
        return list(seen)

    def to_dict(self, include_text: bool = True) -> dict[str, Any]:
        return {
            "request": self.request,
            "budget_tokens": self.budget_tokens,
            "tokens_used": self.tokens_used,
            "files": [
                {"rank": r, "path": f.path, "score": round(f.score, 4), "reasons": list(f.reasons),
                 "in_pack": f.path in set(self.packed_paths())}
                for r, f in enumerate(self.files, 1)
            ],
            "chunks": [
                {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol,
                 "kind": c.kind, "tokens": c.tokens, "score": round(c.score, 4),
                 **({"text": c.text} if include_text else {})}
                for c in self.chunks
            ],
            "stats": self.stats,
        }


def render_header(files: list[RankedFile]) -> str:
    if not files:
        return ""
    lines = ["## Files ranked by relevance"]
    lines += [f"{i}. {f.path}" for i, f in enumerate(files[:MAX_LISTED_FILES], 1)]
    return "\n".join(lines) + "\n\n## Code\n"


@dataclass(frozen=True)
class Candidate:
    file_rank: int
    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float
    language: str | None
    est_tokens: int  # estimate of the chunk text alone, from the index


def pack(
    request: str,
    budget: int,
    files: list[RankedFile],
    by_file: list[list[Candidate]],
    read_text: Any,
    first_pass_files: int = 12,
) -> ContextPack:
    """Choose chunks: ``by_file[r]`` holds file r's candidates, best first."""
    header = render_header(files)
    used = estimate_tokens(header) if header else 0
    if used > budget:
        header, used = "", 0
    chosen: dict[tuple[str, int], PackedChunk] = {}

    def try_add(c: Candidate) -> bool:
        nonlocal used
        key = (c.path, c.start_line)
        if key in chosen or c.est_tokens + 20 > budget - used:
            return False
        pc = PackedChunk(c.path, c.start_line, c.end_line, c.symbol, c.kind, read_text(c), 0, c.score, c.language)
        cost = estimate_tokens(pc.render())
        if cost > budget - used:
            return False
        chosen[key] = replace(pc, tokens=cost)
        used += cost
        return True

    for cands in by_file[:first_pass_files]:
        for c in cands:
            if try_add(c):
                break
    rest = sorted((c for cands in by_file for c in cands), key=lambda c: (-c.score, c.file_rank, c.start_line))
    for c in rest:
        if budget - used < 40:
            break
        if c.score <= 0 and c.file_rank >= first_pass_files:
            continue
        try_add(c)
    rank_of = {f.path: r for r, f in enumerate(files)}
    ordered = sorted(chosen.values(), key=lambda p: (rank_of.get(p.path, 1 << 30), p.start_line))
    return ContextPack(request, budget, files, ordered, used, header)
