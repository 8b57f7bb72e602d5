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
    symbols: tuple[str, ...] = ()  # what the file defines (an outline for the repository map)


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
    truncated: bool = False  # cut to its first lines to fit the budget (end_line is the last line shown)

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
        packed = set(self.packed_paths())
        return {
            "request": self.request,
            "budget_tokens": self.budget_tokens,
            "tokens_used": self.tokens_used,
            "files": [
                {"rank": r, "path": f.path, "score": round(f.score, 4), "reasons": list(f.reasons),
                 "symbols": list(f.symbols), "in_pack": f.path in packed}
                for r, f in enumerate(self.files, 1)
            ],
            "chunks": [
                {"path": c.path, "start_line": c.start_line, "end_line": c.end_line, "symbol": c.symbol,
                 "kind": c.kind, "tokens": c.tokens, "score": round(c.score, 4), "truncated": c.truncated,
                 **({"text": c.text} if include_text else {})}
                for c in self.chunks
            ],
            "stats": self.stats,
        }


MAX_OUTLINE_SYMBOLS = 8
OUTLINE_MIN_BUDGET = 4000  # below this, the file list carries paths only


def render_header(files: list[RankedFile], outline: bool = False) -> str:
    """The ranked file list; with ``outline``, each with the names it defines (the repository map)."""
    if not files:
        return ""
    lines = ["## Files ranked by relevance" + (" (with what each defines)" if outline else "")]
    for i, f in enumerate(files[:MAX_LISTED_FILES], 1):
        names = f.symbols[:MAX_OUTLINE_SYMBOLS] if outline else ()
        more = ", ..." if outline and len(f.symbols) > MAX_OUTLINE_SYMBOLS else ""
        lines.append(f"{i}. {f.path}" + (f": {', '.join(names)}{more}" if names else ""))
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


def _truncate(pc: PackedChunk, cap: int) -> PackedChunk | None:
    """The chunk cut to its first lines so that its rendered block costs at most ``cap``."""
    lines = pc.text.split("\n")
    lo, hi, best = 1, len(lines) - 1, None
    while lo <= hi:  # the most lines that fit, by bisection
        mid = (lo + hi) // 2
        more = len(lines) - mid
        cut = replace(pc, text="\n".join(lines[:mid]) + f"\n... ({more} more lines)", end_line=pc.start_line + mid - 1,
                      truncated=True)
        if estimate_tokens(cut.render()) <= cap:
            best, lo = cut, mid + 1
        else:
            hi = mid - 1
    return best


def pack(
    request: str,
    budget: int,
    files: list[RankedFile],
    by_file: list[list[Candidate]],
    read_text: Any,
    first_pass_files: int | None = None,
) -> ContextPack:
    """Choose chunks: ``by_file[r]`` holds file r's candidates, best first.

    Breadth first: each of the top ``first_pass_files`` files (by default one
    per 400 tokens of budget, at least 8) gets its best chunk, cut to its
    first lines if it is longer than its share. Then depth: whole chunks by
    score, a cut chunk replaced by its whole self when that fits.
    """
    header = render_header(files, outline=budget >= OUTLINE_MIN_BUDGET)
    used = estimate_tokens(header) if header else 0
    if used > budget:
        header, used = "", 0
    if first_pass_files is None:
        first_pass_files = max(8, budget // 400)
    first_pass_files = min(first_pass_files, len(by_file))
    share = max(120, budget // (2 * max(first_pass_files, 1)))
    chosen: dict[tuple[str, int], PackedChunk] = {}

    def make(c: Candidate) -> PackedChunk:
        pc = PackedChunk(c.path, c.start_line, c.end_line, c.symbol, c.kind, read_text(c), 0, c.score, c.language)
        return replace(pc, tokens=estimate_tokens(pc.render()))

    def try_add(c: Candidate, cap: int | None = None) -> bool:
        nonlocal used
        key = (c.path, c.start_line)
        old = chosen.get(key)
        if old is not None and not old.truncated:
            return False
        room = budget - used + (old.tokens if old is not None else 0)
        if c.est_tokens + 8 > room and cap is None:
            return False
        pc = make(c)
        if cap is not None and pc.tokens > min(cap, room):
            cut = _truncate(pc, min(cap, room))
            if cut is None:
                return False
            pc = cut
            pc = replace(pc, tokens=estimate_tokens(pc.render()))
        if pc.tokens > room:
            return False
        chosen[key] = pc
        used += pc.tokens - (old.tokens if old is not None else 0)
        return True

    for cands in by_file[:first_pass_files]:
        if cands and budget - used >= 40:
            try_add(cands[0], cap=share)
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
