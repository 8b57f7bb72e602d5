"""Retriever: an opened index plus the query-time ranking and packing."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from anvil.retrieval.files import is_boilerplate, named_in, repo_root
from anvil.retrieval.index import IndexStats, SearchIndex, open_index
from anvil.retrieval.pack import MAX_LISTED_FILES, Candidate, ContextPack, RankedFile, pack
from anvil.retrieval.ranking import ChunkReader, Ranker, Ranking, RankWeights

MAX_RANKED_FILES = 50  # files listed in a pack (scores shown by `anvil context`)
OUTLINE_METHODS = 6  # public methods shown per class in the file list
CANDIDATE_FILES = 30  # files whose chunks may enter the pack (at least; more for big budgets)


class Retriever:
    def __init__(self, root: Path, index: SearchIndex, stats: IndexStats, weights: RankWeights | None = None):
        self.root = root
        self.index = index
        self.stats = stats
        self.ranker = Ranker(index, weights)

    @classmethod
    def open(cls, path: Path, *, use_cache: bool = True, weights: RankWeights | None = None) -> Retriever:
        root = repo_root(Path(path))
        index, stats = open_index(root, use_cache=use_cache)
        return cls(root, index, stats, weights)

    def rank(self, request: str) -> tuple[Ranking, ChunkReader]:
        reader = ChunkReader(self.root, self.index)
        return self.ranker.rank(request, reader), reader

    def _outline(self, fi: int) -> tuple[str, ...]:
        """The file's top-level names in file order, a class with its public methods:
        ("load", "Config(from_file, from_mapping)") -- a line of the repository map."""
        idx = self.index
        s, e = int(self.ranker.starts[fi]), int(self.ranker.starts[fi + 1])
        members: dict[str, list[str]] = {}
        for c in range(s, e):
            sym = idx.chunk_symbol[c]
            if not sym or idx.chunk_kind[c] == "namespace":
                continue
            owner, _, member = sym.rpartition(".")
            if not owner:
                members.setdefault(sym, [])
            elif not member.startswith("_"):
                got = members.setdefault(owner, [])
                if member not in got:
                    got.append(member)
        out = []
        for name, methods in members.items():
            shown = methods[:OUTLINE_METHODS]
            more = ", ..." if len(methods) > OUTLINE_METHODS else ""
            out.append(f"{name}({', '.join(shown)}{more})" if shown else name)
        return tuple(out)

    def _best_match(self, fi: int, ranking: Ranking) -> list[str]:
        """"words match <symbol> (lines a-b)" for the file's best-scoring chunk, if any."""
        s, e = int(self.ranker.starts[fi]), int(self.ranker.starts[fi + 1])
        if e <= s:
            return []
        ci = s + int(ranking.chunk_scores[s:e].argmax())
        if ranking.chunk_scores[ci] <= 0:
            return []
        idx = self.index
        what = idx.chunk_symbol[ci] or idx.chunk_kind[ci]
        return [f"words match {what} (lines {idx.chunk_start[ci]}-{idx.chunk_end[ci]})"]

    def query(self, request: str, budget_tokens: int = 8000) -> ContextPack:
        t0 = time.perf_counter()
        idx = self.index
        ranking, reader = self.rank(request)
        starts = self.ranker.starts
        files = [
            RankedFile(idx.paths[i], float(ranking.file_scores[i]),
                       tuple(dict.fromkeys(self._best_match(i, ranking) + ranking.reasons.get(i, []))),
                       self._outline(i) if r < MAX_LISTED_FILES else ())
            for r, i in enumerate(ranking.order[:MAX_RANKED_FILES])
        ]
        top_score = float(ranking.file_scores[ranking.order[0]]) if ranking.order else 1.0
        by_file: list[list[Candidate]] = []
        n_candidates = max(CANDIDATE_FILES, budget_tokens // 400)  # a bigger budget reaches further down
        for r, fi in enumerate(ranking.order[:n_candidates]):
            weight = 0.5 + 0.5 * float(ranking.file_scores[fi]) / (top_score or 1.0)
            if is_boilerplate(idx.paths[fi]) and not named_in(idx.paths[fi], request):
                by_file.append([])  # listed in the map, no code in the pack (leaner context)
                continue
            cands = [
                Candidate(r, idx.paths[fi], int(idx.chunk_start[ci]), int(idx.chunk_end[ci]), idx.chunk_symbol[ci],
                          idx.chunk_kind[ci], float(ranking.chunk_scores[ci]) * weight, idx.languages[fi],
                          int(idx.chunk_tokens[ci]))
                for ci in range(int(starts[fi]), int(starts[fi + 1]))
            ]
            cands.sort(key=lambda c: (-c.score, c.start_line))
            by_file.append(cands)

        def read_text(c: Candidate) -> str:
            fi = ranking.order[c.file_rank]
            return "\n".join(reader.lines(fi)[c.start_line - 1 : c.end_line])

        result = pack(request, budget_tokens, files, by_file, read_text)
        result.stats = {
            "index": {k: v for k, v in asdict(self.stats).items() if k != "warnings"},
            "query_seconds": round(time.perf_counter() - t0, 4),
        }
        return result
