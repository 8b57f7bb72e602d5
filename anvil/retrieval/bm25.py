"""BM25 over documents given as term-frequency maps, as a sparse numpy matrix.

The scoring is bm25s's Lucene variant (idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
tf part = tf / (tf + k1 * (1 - b + b * len / avg_len))), and like bm25s every
(term, document) score is computed once at build time into a CSC matrix
(one column per term), so a query sums a few column slices: about a
millisecond for a long bug report over ~6k chunks, where rank-bm25 loops over
every document in Python for every query term. The build is vectorised here
rather than done by ``bm25s.BM25.index``, whose per-document Python loops
alone took longer (0.35 s on pytest) than the whole cold-index target allows;
``tests/test_retrieval_bm25.py`` checks the scores against bm25s when it is
installed, and ``benchmarks/retrieval.py`` prints the timings.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

K1 = 1.2
B = 0.75

# A document as (distinct words, their counts): what the index cache stores per chunk.
WordBag = tuple[list[str], np.ndarray]


class Bm25:
    """Okapi BM25 (Lucene variant) over documents given as {term: count} maps."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, vocab: dict[str, int], n_docs: int):
        self.data = data  # float32 scores, grouped by term
        self.indices = indices  # int32 document of each score
        self.indptr = indptr  # int64, term t's scores are data[indptr[t]:indptr[t+1]]
        self.vocab = vocab
        self.n_docs = n_docs

    @classmethod
    def build(cls, docs: Sequence[Mapping[str, int] | WordBag], k1: float = K1, b: float = B,
              extra: Sequence[Mapping[str, int]] | None = None,
              expand: Callable[[str], tuple[str, ...]] | None = None,
              words_out: list[str] | None = None) -> Bm25:
        """Index ``docs``; ``extra[i]`` (optional) adds counts to document i.

        A document is a {word: count} map or a ``WordBag`` (words, counts):
        the compact form the index cache stores.

        ``expand`` maps a word to its terms (default: the word is the term).
        Expanding each distinct word once and the (document, word) counts in
        numpy is what keeps indexing a repository fast: the Python work is
        one dict lookup per distinct word per document, the rest is vectorised.
        ``extra`` lets many documents share one map (e.g. the words of their
        file's path) without copying it into each.
        """
        n_docs = len(docs)
        bags = [d if isinstance(d, tuple) else (list(d), np.fromiter(d.values(), dtype=np.int32, count=len(d)))
                for d in docs]
        word_lists = [ws for ws, _ in bags]
        if extra is not None:
            word_lists += [list(m) for m in {id(m): m for m in extra}.values()]
        words = sorted(set().union(*word_lists)) if word_lists else []
        if words_out is not None:
            words_out.extend(words)  # the distinct words, for callers that cache their expansions
        wid = {w: i for i, w in enumerate(words)}
        # Word -> terms, as CSR over term ids.
        vocab: dict[str, int] = {}
        w_terms: list[int] = []
        w_len = np.zeros(len(words), dtype=np.int64)
        for i, w in enumerate(words):
            terms = expand(w) if expand is not None else (w,)
            w_len[i] = len(terms)
            for t in terms:
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(vocab)
                w_terms.append(tid)
        w_ptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(w_len, out=w_ptr[1:])
        w_terms_arr = np.asarray(w_terms, dtype=np.int64)
        # (document, word, count) entries.
        get = wid.__getitem__
        cols_list: list[int] = []
        cnt_parts: list[np.ndarray] = []
        lens = np.zeros(n_docs, dtype=np.int64)
        extra_cache: dict[int, tuple[list[str], np.ndarray]] = {}
        for d, (ws, cs) in enumerate(bags):
            cols_list.extend(map(get, ws))
            cnt_parts.append(cs)
            lens[d] = len(ws)
            if extra is not None and extra[d]:
                e = extra[d]
                ew = extra_cache.get(id(e))
                if ew is None:
                    ew = extra_cache[id(e)] = (list(e), np.fromiter(e.values(), dtype=np.int32, count=len(e)))
                cols_list.extend(map(get, ew[0]))
                cnt_parts.append(ew[1])
                lens[d] += len(ew[0])
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), lens)
        wcols = np.asarray(cols_list, dtype=np.int64)
        cnts = np.concatenate(cnt_parts).astype(np.float64) if cnt_parts else np.zeros(0, np.float64)
        # Expand every entry into its word's terms.
        per = w_len[wcols] if len(wcols) else np.zeros(0, dtype=np.int64)
        total = int(per.sum())
        offsets = np.repeat(np.cumsum(per) - per, per)
        tcols = (
            w_terms_arr[np.repeat(w_ptr[wcols], per) + (np.arange(total) - offsets)] if total else np.zeros(0, np.int64)
        )
        rows = np.repeat(rows, per)
        cnts = np.repeat(cnts, per)
        n = max(n_docs, 1)
        uniq, inverse = np.unique(tcols * n + rows, return_inverse=True)
        tfs = np.bincount(inverse, weights=cnts).astype(np.float32) if total else np.zeros(0, np.float32)
        cols, rows = np.divmod(uniq, n)
        n_vocab = len(vocab)
        doc_len = np.bincount(rows, weights=tfs, minlength=n_docs).astype(np.float32)
        avg_len = float(doc_len.mean()) if n_docs else 1.0
        df = np.bincount(cols, minlength=n_vocab).astype(np.float64)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * doc_len / (avg_len or 1.0))
        data = (idf[cols] * tfs / (tfs + norm[rows])).astype(np.float32)
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_vocab), out=indptr[1:])
        return cls(data, rows.astype(np.int32), indptr, vocab, n_docs)

    def term_ids(self, terms: Iterable[str]) -> list[int]:
        vocab = self.vocab
        return [vocab[t] for t in terms if t and t in vocab]

    def scores(self, terms: Iterable[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """BM25 score of every document for a query; a term listed twice counts twice.

        ``weights`` (parallel to ``terms``) scale each term's contribution.
        """
        vocab, indptr = self.vocab, self.indptr
        terms = list(terms)
        tids: list[int] = []
        wts: list[float] = []
        for i, term in enumerate(terms):
            tid = vocab.get(term) if term else None
            if tid is not None:
                tids.append(tid)
                wts.append(1.0 if weights is None else float(weights[i]))
        if not tids or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        # One gather and one bincount for all the terms' posting slices.
        t = np.asarray(tids, dtype=np.int64)
        starts, ends = indptr[t], indptr[t + 1]
        lens = ends - starts
        total = int(lens.sum())
        if total == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        w = np.repeat(np.asarray(wts, dtype=np.float32), lens)
        return np.bincount(self.indices[pos], weights=self.data[pos] * w, minlength=self.n_docs).astype(np.float32)

    def docs_with(self, term: str) -> np.ndarray:
        """Indices of the documents that contain ``term``."""
        tid = self.vocab.get(term)
        if tid is None:
            return np.zeros(0, dtype=np.int32)
        return self.indices[self.indptr[tid] : self.indptr[tid + 1]]

    def doc_freq(self, term: str) -> int:
        tid = self.vocab.get(term)
        return 0 if tid is None else int(self.indptr[tid + 1] - self.indptr[tid])


class Postings(Protocol):
    """One segment's postings as ``SegmentedBm25`` reads them (``segments.Segment`` is one)."""

    vocab: list[str]  # sorted
    indptr: np.ndarray
    docs: np.ndarray
    tf: np.ndarray


class SegmentedBm25:
    """The same BM25 as ``Bm25``, over postings kept as raw term counts in several segments.

    ``parts`` pairs each segment's postings with ``to_doc``, the index-wide
    document number of each of its chunks (-1: masked out, e.g. an old copy
    of a changed file). Scores are computed per query from the counts and the
    statistics of the live documents only, so an index updated by adding
    segments scores exactly like one rebuilt from scratch.
    """

    def __init__(self, parts: Sequence[tuple[Postings, np.ndarray]], doc_len: np.ndarray,
                 k1: float = K1, b: float = B):
        self.parts = list(parts)
        self.n_docs = len(doc_len)
        avg_len = float(doc_len.sum(dtype=np.float64)) / self.n_docs if self.n_docs else 1.0
        self.norm = (k1 * (1 - b + b * doc_len.astype(np.float64) / (avg_len or 1.0))).astype(np.float32)
        self._memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(documents ascending, term counts) of ``term`` over the live documents."""
        got = self._memo.get(term)
        if got is not None:
            return got
        docs: list[np.ndarray] = []
        tfs: list[np.ndarray] = []
        for part, to_doc in self.parts:
            vocab = part.vocab
            i = bisect_left(vocab, term)
            if i == len(vocab) or vocab[i] != term:
                continue
            s, e = int(part.indptr[i]), int(part.indptr[i + 1])
            d = to_doc[part.docs[s:e]]
            keep = d >= 0
            docs.append(d[keep])
            tfs.append(np.asarray(part.tf[s:e])[keep])
        if not docs:
            got = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        else:
            d, t = (docs[0], tfs[0]) if len(docs) == 1 else (np.concatenate(docs), np.concatenate(tfs))
            if len(d) > 1 and not bool(np.all(d[1:] > d[:-1])):  # segments hold files out of index order
                order = np.argsort(d, kind="stable")
                d, t = d[order], t[order]
            got = (d, t)
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[term] = got
        return got

    def term_scores(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        docs, tf = self._postings(term)
        df = len(docs)
        idf = np.float32(np.log1p((self.n_docs - df + 0.5) / (df + 0.5)))
        return docs, (idf * tf / (tf + self.norm[docs])).astype(np.float32)

    def scores(self, terms: Iterable[str], weights: Sequence[float] | None = None) -> np.ndarray:
        """BM25 score of every document for a query; a term listed twice counts twice."""
        doc_parts: list[np.ndarray] = []
        score_parts: list[np.ndarray] = []
        for i, term in enumerate(terms):
            if not term:
                continue
            docs, sc = self.term_scores(term)
            if not len(docs):
                continue
            doc_parts.append(docs)
            score_parts.append(sc * np.float32(1.0 if weights is None else weights[i]))
        if not doc_parts or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.bincount(np.concatenate(doc_parts), weights=np.concatenate(score_parts),
                           minlength=self.n_docs).astype(np.float32)

    def docs_with(self, term: str) -> np.ndarray:
        return self._postings(term)[0]

    def doc_freq(self, term: str) -> int:
        return len(self._postings(term)[0])
