"""Rank files and chunks for a request: BM25 plus generic signals.

1. BM25 over chunks; the query is the cleaned request (``query.py``: template
   noise dropped, long pasted blocks discounted, terms weighted by a damped
   count).
2. File score from its chunks: the best chunk plus half of the next three,
   so a file with several relevant pieces beats one lucky match; plus a
   coverage term, the idf-weighted share of the request's 15 rarest prose
   terms that occur anywhere in the file (a report names several aspects of
   one place).
3. A path prior: tests, docs, config, examples and bundled third-party code
   are rarely what a change is about; they still rank when the text says so.
4. Mentions (``mentions.py``): paths, traceback frames (the deepest in-repo
   frame most), dotted modules, command-line flags and code identifiers the
   request names lift the files that hold or define them; a line of code
   quoted in the request (`return s.replace(".[", "[")`) lifts the file that
   contains it verbatim.
5. The repository map: the best chunks' identifiers are looked up among the
   names each file defines, and those files get a share of the chunk's
   score (a bug shows in the caller; the fix is often in what it calls).

All weights live in ``RankWeights`` (settings, not buried constants). They
were chosen on half of the development set (``benchmarks/retrieval.py
--split A``) and checked on the other half; each is a generic signal, none
names a repository or a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from anvil.retrieval.index import SearchIndex
from anvil.retrieval.mentions import _SPACES, Mentions, PathMatcher, find_mentions, quoted_code
from anvil.retrieval.query import query_terms
from anvil.retrieval.tokens import identifiers, term_counts, tokenize


@dataclass(frozen=True)
class RankWeights:
    second_chunks: float = 0.5  # share of the next-best chunk scores added to the best
    top_chunks: int = 4  # how many chunks of a file count towards its score
    query_tf: float = 0.5  # query term weight = 1 + query_tf * ln(count in the request)
    title_boost: float = 0.0  # extra weight of terms on the request's first line (an issue title)
    fenced_weight: float = 0.5  # terms inside ``` blocks (pasted code, logs) count this much
    fenced_mention: float = 0.15  # and identifiers named only there (short snippets count as prose)
    short_snippet: int = 12  # fenced blocks up to this many lines count as prose for BM25 terms
    test_prior: float = 0.3
    doc_prior: float = 0.4
    example_prior: float = 0.75
    config_prior: float = 0.3
    vendored_prior: float = 0.3
    path_mention: float = 0.6
    traceback: float = 0.3
    deepest_frame: float = 0.3
    module_mention: float = 0.0
    identifier: float = 0.45
    graph: float = 0.05
    quoted_code: float = 0.6  # a `line of code` from the request found verbatim in a file
    coverage: float = 0.2  # weight of the share of the request's rarer terms a file contains
    coverage_terms: int = 15
    graph_top_chunks: int = 6
    graph_max_definers: int = 3
    chunk_symbol_boost: float = 0.5
    bm25_seat: int = 1  # plain chunk BM25's best source files kept within the top `seat_within` (the floor)
    seat_within: int = 5


_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "test_utils", "testdata"})
_DOC_DIRS = frozenset({"doc", "docs", "documentation", "changelog", "changes", "changelog.d", "news"})
_EXAMPLE_DIRS = frozenset(
    {"example", "examples", "sample", "samples", "demo", "demos", "bench", "benchmarks", "benchmark", "scripts"}
)
_DOC_EXTS = frozenset({".md", ".rst", ".txt", ".adoc", ".rdoc", ".markdown", ".html", ".po", ".pot", ".csv", ".tsv"})
_CONFIG_EXTS = frozenset({".ini", ".cfg", ".toml", ".yaml", ".yml", ".json", ".lock", ".xml", ".properties"})
_CONFIG_NAMES = frozenset({"setup.py", "noxfile.py", "tasks.py", "fabfile.py", "conf.py", "Makefile", "Dockerfile"})
_VENDOR_DIRS = frozenset({"_vendor", "vendored", "extern", "externals", "external", "third_party", "thirdparty"})
_TEST_NAME = re.compile(
    r"(^test_.*|.*_test\.[a-z]+$|.*\.(test|spec)\.[jt]sx?$|.*Tests?\.(java|kt|cs)$|^conftest\.py$|.*_spec\.rb$)"
)


def path_prior(path: str, weights: RankWeights, all_paths: frozenset[str] = frozenset()) -> float:
    """How likely a change is to be about this file, from its path alone."""
    p = PurePosixPath(path)
    dirs = {d.lower() for d in p.parts[:-1]}
    if dirs & _VENDOR_DIRS or _bundled(p, all_paths):
        return weights.vendored_prior
    if dirs & _TEST_DIRS or _TEST_NAME.match(p.name):
        return weights.test_prior
    if dirs & _DOC_DIRS or p.suffix.lower() in _DOC_EXTS or not p.suffix:
        return weights.doc_prior
    if p.suffix.lower() in _CONFIG_EXTS or p.name in _CONFIG_NAMES or (p.parts and p.parts[0].startswith(".")):
        return weights.config_prior
    if dirs & _EXAMPLE_DIRS:
        return weights.example_prior
    return 1.0


def _bundled(p: PurePosixPath, all_paths: frozenset[str]) -> bool:
    # A Python package literally named "packages" (requests/packages/urllib3, ...) holds
    # bundled copies of other projects; a top-level JS "packages/" folder is not one.
    parts = p.parts[:-1]
    for k, d in enumerate(parts):
        if d == "packages" and k > 0 and "/".join(parts[: k + 1]) + "/__init__.py" in all_paths:
            return True
    return False


@dataclass
class Ranking:
    file_scores: np.ndarray  # per file of the index
    chunk_scores: np.ndarray  # per chunk of the index
    order: list[int]  # file indices, best first (score > 0 only)
    reasons: dict[int, list[str]] = field(default_factory=dict)
    mentions: Mentions | None = None


class Ranker:
    """Query-time state built once per index: priors, path matcher, chunk ranges."""

    def __init__(self, index: SearchIndex, weights: RankWeights | None = None):
        self.index = index
        self.weights = weights or RankWeights()
        all_paths = frozenset(index.paths)
        self.priors = np.asarray([path_prior(p, self.weights, all_paths) for p in index.paths], dtype=np.float32)
        self.matcher = PathMatcher(index.paths)
        self.n_files = len(index.paths)
        # Chunks of a file are contiguous in the index: file i owns [starts[i], starts[i+1]).
        self.starts = np.searchsorted(index.chunk_file, np.arange(self.n_files + 1)).astype(np.int64)

    def file_aggregate(self, chunk_scores: np.ndarray) -> np.ndarray:
        """Best chunk score per file plus a share of the next three."""
        idx = self.index
        n = self.n_files
        best = np.zeros(n, dtype=np.float32)
        if not len(chunk_scores):
            return best
        np.maximum.at(best, idx.chunk_file, chunk_scores)
        if self.weights.second_chunks <= 0:
            return best
        total = np.zeros(n, dtype=np.float32)
        # Sum of top-4 per file, cheaply: sort chunks by (file, -score) and keep ranks < 4.
        order = np.lexsort((-chunk_scores, idx.chunk_file))
        files_sorted = idx.chunk_file[order]
        rank_in_file = np.arange(len(order)) - self.starts[files_sorted]
        keep = (rank_in_file > 0) & (rank_in_file < self.weights.top_chunks)
        np.add.at(total, files_sorted[keep], chunk_scores[order][keep])
        return best + self.weights.second_chunks * total

    def rank(self, request: str, read_chunk: ChunkReader | None = None) -> Ranking:
        idx, w = self.index, self.weights
        n = self.n_files
        reasons: dict[int, list[str]] = {}

        def why(i: int, text: str) -> None:
            reasons.setdefault(i, []).append(text)

        q = query_terms(request, w.query_tf, w.fenced_weight, w.title_boost, w.short_snippet)
        terms = list(q)
        qweights = list(q.values())
        raw = idx.bm25.scores(terms, qweights)
        top_raw = float(raw.max()) if len(raw) else 0.0
        chunk = raw / top_raw if top_raw > 0 else raw
        chunk = chunk * self.priors[idx.chunk_file]
        files = self.file_aggregate(chunk)
        top_file = float(files.max()) if n else 0.0
        if top_file > 0:
            files = files / top_file
        if w.coverage > 0:
            files = files + w.coverage * self._coverage(q) * self.priors

        m = find_mentions(request, self.matcher, idx.defines, w.fenced_mention)
        boost = np.zeros(n, dtype=np.float32)
        for i, s in m.paths.items():
            boost[i] += w.path_mention * s * (0.5 + 0.5 * float(self.priors[i]))
            why(i, "path named in the request")
        for i in m.traceback_files:
            boost[i] += w.traceback
            why(i, "in a traceback")
        for i in m.deepest_frames:
            boost[i] += w.deepest_frame
            why(i, "where a traceback ends")
        for i, s in m.modules.items() if w.module_mention > 0 else ():
            boost[i] += w.module_mention * s
            why(i, "module named in the request")
        sym_boost: dict[str, float] = {}
        for name, strength in m.identifiers.items():
            definers = idx.defines.get(name, [])
            if not definers or len(definers) > 5:
                continue
            share = strength / len(definers)
            sym_boost[name] = share
            for i in definers:
                boost[i] += w.identifier * share * float(self.priors[i])
                why(i, f"defines {name}")
        for term in terms:
            if not term.startswith("--"):
                continue  # a command-line flag: the files that spell it out define or handle it
            found = np.unique(idx.chunk_file[idx.bm25.docs_with(term)])
            holders = [int(i) for i in found if self.priors[i] >= 1.0] or [int(i) for i in found]
            if 0 < len(holders) <= 5:
                for i in holders:
                    boost[i] += w.identifier * float(self.priors[i]) / len(holders)
                    why(i, f"handles {term}")
        files = files + boost

        # Chunk scores for picking what goes in the pack: BM25 plus mention boosts.
        if sym_boost:
            for ci, sym in enumerate(idx.chunk_symbol):
                if sym:
                    last = sym.rsplit(".", 1)[-1]
                    if last in sym_boost:
                        chunk[ci] += w.chunk_symbol_boost * sym_boost[last]

        if w.quoted_code > 0 and read_chunk is not None:
            self._quoted_code(request, files, chunk, read_chunk, why)

        if w.graph > 0 and read_chunk is not None:
            self._propagate(files, chunk, read_chunk, why)

        if w.bm25_seat > 0:
            self._bm25_seat(request, files, why)

        order = [int(i) for i in np.argsort(-files, kind="stable") if files[i] > 0]
        return Ranking(files, chunk, order, reasons, m)

    def _bm25_seat(self, request: str, files: np.ndarray, why) -> None:
        """Plain chunk BM25 is the floor: its best source files keep a place in the top ``seat_within``.

        Plain BM25 (the raw request's terms, each file scored by its best chunk) knows nothing of
        this repository's conventions, so it cannot be over-fitted to them; every other signal may
        re-order the list, but not push plain BM25's best source file (one the path prior leaves
        at 1.0: not a test, doc, config or bundled file) out of the top ``seat_within``.
        """
        idx, w = self.index, self.weights
        raw = idx.bm25.scores(list(term_counts(request)))
        if not len(raw):
            return
        best = np.zeros(self.n_files, dtype=np.float32)
        np.maximum.at(best, idx.chunk_file, raw)
        best[self.priors < 1.0] = 0.0
        seats = [int(i) for i in np.argsort(-best, kind="stable")[: w.bm25_seat] if best[i] > 0]
        order = np.argsort(-files, kind="stable")
        k = min(w.seat_within, len(order))
        if not seats or k == 0:
            return
        rank = {int(fi): r for r, fi in enumerate(order)}
        out = [i for i in seats if rank[i] >= k]
        if not out:
            return
        # The seats go just above the k-th file (which moves down) and keep plain BM25's order.
        floor = max(float(files[order[k - 1]]), 0.0)
        for n, i in enumerate(out):
            files[i] = floor * (1 + 1e-4 * (len(out) - n)) + 1e-6 * (len(out) - n)
            why(i, "best plain BM25 match (kept in the top files)")

    def _coverage(self, q: dict[str, float]) -> np.ndarray:
        """Share of the request's rarer terms (idf-weighted) that a file contains anywhere."""
        idx = self.index
        n_docs = max(idx.n_chunks, 1)
        scored = []
        for term, weight in q.items():
            df = idx.bm25.doc_freq(term)
            if 0 < df and weight >= 1.0:
                scored.append((np.log1p(n_docs / df), term))
        scored.sort(reverse=True)
        cov = np.zeros(self.n_files, dtype=np.float32)
        total = 0.0
        for idf, term in scored[: self.weights.coverage_terms]:
            holders = np.unique(idx.chunk_file[idx.bm25.docs_with(term)])
            cov[holders] += idf
            total += idf
        return cov / total if total > 0 else cov

    def _quoted_code(self, request: str, files: np.ndarray, chunk: np.ndarray, read_chunk: ChunkReader,
                     why) -> None:
        """A line of code quoted in the request that occurs verbatim in a chunk points at it."""
        idx, w = self.index, self.weights
        for span in quoted_code(request)[:5]:
            terms = sorted(set(tokenize(span)), key=idx.bm25.doc_freq)
            if not terms or idx.bm25.doc_freq(terms[0]) == 0:
                continue
            cands = idx.bm25.docs_with(terms[0])
            for t in terms[1:3]:  # intersect the rarest terms' postings
                cands = np.intersect1d(cands, idx.bm25.docs_with(t), assume_unique=True)
            if len(cands) > 40:
                continue  # too common to be a pointer
            hits = [int(c) for c in cands if span in _SPACES.sub(" ", read_chunk(int(c)))]
            hit_files = {int(idx.chunk_file[c]) for c in hits}
            if not hits or len(hit_files) > 3:
                continue
            for fi in hit_files:
                files[fi] += w.quoted_code / len(hit_files)
                why(fi, "contains code quoted in the request")
            for c in hits:
                chunk[c] += w.quoted_code

    def _propagate(self, files: np.ndarray, chunk: np.ndarray, read_chunk: ChunkReader, why) -> None:
        """Give files that define what the best chunks use a share of those chunks' scores."""
        idx, w = self.index, self.weights
        k = min(w.graph_top_chunks, len(chunk))
        if k == 0:
            return
        top = np.argpartition(-chunk, k - 1)[:k]
        gain = np.zeros(len(files), dtype=np.float32)
        for ci in top:
            score = float(chunk[ci])
            if score <= 0:
                continue
            own = int(idx.chunk_file[ci])
            own_defs = set(idx.file_defines[own])
            for name in identifiers(read_chunk(int(ci))):
                if name in own_defs or len(name) < 3:
                    continue
                definers = idx.defines.get(name)
                if not definers or len(definers) > w.graph_max_definers:
                    continue
                for fi in definers:
                    if fi != own:
                        gain[fi] = max(gain[fi], score / len(definers) * float(self.priors[fi]))
        for gi in np.nonzero(gain)[0]:
            target = int(gi)
            files[target] += w.graph * gain[target]
            if w.graph * gain[target] >= 0.03:  # name it only where it moves the rank
                why(target, "defines what the best chunks use")


class ChunkReader:
    """Reads chunk text from the work tree, one file read per file."""

    def __init__(self, root, index: SearchIndex):
        self.root = root
        self.index = index
        self._lines: dict[int, list[str]] = {}

    def lines(self, fi: int) -> list[str]:
        got = self._lines.get(fi)
        if got is None:
            try:
                data = (self.root / self.index.paths[fi]).read_bytes()
                got = data.decode("utf-8", errors="replace").split("\n")
            except OSError:
                got = []
            self._lines[fi] = got
        return got

    def __call__(self, ci: int) -> str:
        idx = self.index
        lines = self.lines(int(idx.chunk_file[ci]))
        return "\n".join(lines[int(idx.chunk_start[ci]) - 1 : int(idx.chunk_end[ci])])
