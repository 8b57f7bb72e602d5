"""Index segments: immutable on-disk pieces of the search index.

A segment holds, for a set of files each named by (path, content key), their
chunks, the names they define and the BM25 postings of their chunks as raw
term frequencies (per term: which chunks, how often; per chunk: its length).
Scores are computed at query time from those counts and the statistics of
the whole index (``bm25.SegmentedBm25``), so a segment never goes stale when
other files change: a changed file is written into a new small segment and
its old copy is only masked out. Small segments are merged into one when
they add up (``merge``).

On disk a segment is a directory of ``.npy`` arrays (loaded with
``allow_pickle=False``, big ones memory-mapped), newline-joined UTF-8 string
blobs and one ``meta.json``: data only, nothing that runs code when read.

Building is streamed: a file is read, chunked and reduced to integer word
ids one at a time; its bytes and text are dropped before the next one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from array import array
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import numpy as np

from anvil.retrieval.chunking import chunk_text
from anvil.retrieval.languages import language_for
from anvil.retrieval.query import FLAG
from anvil.retrieval.tokens import WORD, estimate_tokens, expand_word

SEGMENT_VERSION = 2
_ARRAYS = ("file_ptr", "rows", "define_ptr", "define_sorted_file", "indptr", "docs", "tf", "doclen")
_MMAPPED = frozenset({"docs", "tf"})  # the postings: only a query's terms are ever paged in


class BadSegment(Exception):
    """A segment directory that is missing, damaged or of another version."""


def path_words(path: str) -> list[str]:
    """The words every chunk of a file gets from its path (extension left out)."""
    name = path.rsplit("/", 1)[-1]
    stem = path.rsplit(".", 1)[0] if "." in name.lstrip(".") else path
    return WORD.findall(stem)


@dataclass
class Segment:
    """A loaded segment. ``rows`` columns: start line, end line, estimated tokens, kind id."""

    name: str
    paths: list[str]
    keys: list[str]
    languages: list[str | None]
    kinds: list[str]
    file_ptr: np.ndarray  # int64 [n_files + 1]: file i owns chunks file_ptr[i]:file_ptr[i+1]
    rows: np.ndarray  # int32 [n_chunks, 4]
    symbols: list[str]
    defines: list[str]
    define_ptr: np.ndarray  # int64 [n_files + 1]
    vocab: list[str]  # sorted terms
    indptr: np.ndarray  # int64 [n_terms + 1]
    docs: np.ndarray  # int32 chunk (of this segment) of each posting, ascending within a term
    tf: np.ndarray  # float32 term frequency of each posting
    doclen: np.ndarray  # float32 [n_chunks]: terms in the chunk
    # The defined names again, sorted, with the file defining each: looked up by bisection, so
    # opening an index never builds a name -> files dict over the whole repository.
    define_sorted: list[str] = field(default_factory=list)
    define_sorted_file: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __post_init__(self) -> None:
        if len(self.define_sorted) != len(self.defines):
            fids = np.repeat(np.arange(len(self.paths), dtype=np.int32), np.diff(self.define_ptr))
            order = sorted(range(len(self.defines)), key=self.defines.__getitem__)
            self.define_sorted = [self.defines[i] for i in order]
            self.define_sorted_file = fids[np.asarray(order, dtype=np.int64)] if order else np.zeros(0, np.int32)

    @property
    def n_files(self) -> int:
        return len(self.paths)

    @property
    def n_chunks(self) -> int:
        return len(self.symbols)

    def chunk_file(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_files, dtype=np.int64), np.diff(self.file_ptr))


def _blob(items: Sequence[str]) -> bytes:
    return "\n".join(s.replace("\n", " ") for s in items).encode("utf-8", "surrogateescape")


def _unblob(data: bytes, n: int) -> list[str]:
    if n == 0:
        return []
    out = data.decode("utf-8", "surrogateescape").split("\n")
    if len(out) != n:
        raise BadSegment(f"string table has {len(out)} items, expected {n}")
    return out


def write_segment(seg: Segment, segments_dir: Path) -> None:
    """Write ``seg`` as ``segments_dir/<seg.name>/``, atomically (a temp dir renamed into place)."""
    tmp = segments_dir / f".tmp-{seg.name}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        meta = {"version": SEGMENT_VERSION, "paths": seg.paths, "keys": seg.keys, "languages": seg.languages,
                "kinds": seg.kinds, "n_chunks": seg.n_chunks, "n_terms": len(seg.vocab), "n_defines": len(seg.defines)}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8", errors="surrogateescape")
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(seg, name), allow_pickle=False)
        (tmp / "symbols.bin").write_bytes(_blob(seg.symbols))
        (tmp / "defines.bin").write_bytes(_blob(seg.defines))
        (tmp / "defines_sorted.bin").write_bytes(_blob(seg.define_sorted))
        (tmp / "vocab.bin").write_bytes(_blob(seg.vocab))
        os.rename(tmp, segments_dir / seg.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, ValueError) as exc:
        raise BadSegment(f"{path.name}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("version") != SEGMENT_VERSION:
        raise BadSegment(f"{path.name}: another version")
    return meta


def load_segment(path: Path) -> Segment:
    """Load and sanity-check a segment; ``BadSegment`` for anything off (the caller rebuilds)."""
    meta = read_meta(path)
    try:
        arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r" if name in _MMAPPED else None, allow_pickle=False)
                  for name in _ARRAYS}
        n_chunks, n_terms = int(meta["n_chunks"]), int(meta["n_terms"])
        paths, keys, languages, kinds = meta["paths"], meta["keys"], meta["languages"], meta["kinds"]
        seg = Segment(path.name, list(paths), list(keys), list(languages), list(kinds),
                      symbols=_unblob((path / "symbols.bin").read_bytes(), n_chunks),
                      defines=_unblob((path / "defines.bin").read_bytes(), int(meta["n_defines"])),
                      define_sorted=_unblob((path / "defines_sorted.bin").read_bytes(), int(meta["n_defines"])),
                      vocab=_unblob((path / "vocab.bin").read_bytes(), n_terms), **arrays)
    except (OSError, ValueError, KeyError, TypeError, BadSegment) as exc:
        raise BadSegment(f"{path.name}: {exc}") from exc
    n_files = seg.n_files
    ok = (
        len(keys) == n_files and len(languages) == n_files
        and seg.file_ptr.shape == (n_files + 1,) and seg.define_ptr.shape == (n_files + 1,)
        and seg.rows.shape == (n_chunks, 4) and seg.doclen.shape == (n_chunks,)
        and seg.indptr.shape == (n_terms + 1,) and seg.docs.shape == seg.tf.shape
        and seg.docs.ndim == 1 and seg.docs.dtype == np.int32 and seg.tf.dtype == np.float32
        and seg.file_ptr.dtype == np.int64 and seg.indptr.dtype == np.int64 and seg.define_ptr.dtype == np.int64
        and int(seg.file_ptr[0]) == 0 and int(seg.file_ptr[-1]) == n_chunks and bool(np.all(np.diff(seg.file_ptr) >= 0))
        and int(seg.define_ptr[0]) == 0 and int(seg.define_ptr[-1]) == len(seg.defines)
        and bool(np.all(np.diff(seg.define_ptr) >= 0)) and seg.define_sorted_file.shape == (len(seg.defines),)
        and seg.define_sorted_file.dtype == np.int32
        and (not len(seg.defines)
             or 0 <= int(seg.define_sorted_file.min()) <= int(seg.define_sorted_file.max()) < n_files)
        and int(seg.indptr[0]) == 0 and int(seg.indptr[-1]) == len(seg.docs) and bool(np.all(np.diff(seg.indptr) >= 0))
        and (n_chunks == 0 or (int(seg.rows[:, 3].min()) >= 0 and int(seg.rows[:, 3].max()) < len(kinds)))
    )
    if not ok:
        raise BadSegment(f"{path.name}: inconsistent arrays")
    return seg


# Word characters kept, every other byte a space: `split()` then cuts a chunk's runs of [A-Za-z0-9_] in C,
# several times faster than WORD.findall. A run is a word once its leading digits go ("2D" -> "D",
# "0x1F" -> "x1F", "42" -> nothing), exactly what WORD finds; that is done once per distinct run (finish).
_KEEP = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_RUNS = bytes(b if b in _KEEP else 32 for b in range(256))


class SegmentBuilder:
    """Turns files into one segment, one file at a time."""

    def __init__(self, expand: Callable[[str], tuple[str, ...]] = expand_word):
        self.expand = expand
        # word -> id, assigned on first sighting by a C-level lookup (no Python call per word)
        self.word_ids: defaultdict[str | bytes, int] = defaultdict()
        self.word_ids.default_factory = self.word_ids.__len__
        self.occ = array("i")  # word id of every word occurrence, chunk after chunk
        self.n_occ = array("i")  # occurrences per chunk
        self.rows = array("i")
        self.symbols: list[str] = []
        self.kinds: dict[str, int] = {}
        self.paths: list[str] = []
        self.keys: list[str] = []
        self.languages: list[str | None] = []
        self.file_ptr = [0]
        self.defines: list[str] = []
        self.define_ptr = [0]
        # (key, language) -> what chunking gave, for contents listed more than once (kept only for those)
        self.kept: dict[tuple[str, str | None], tuple[list[str], list[tuple[tuple[int, ...], str, array[int]]]]] = {}

    @property
    def n_files(self) -> int:
        return len(self.paths)

    def add(self, path: str, key: str, data: bytes, keep: bool = False) -> bool:
        """Add one file; False when its chunks were copied from an identical file added before
        with ``keep`` (same content and language: chunked once)."""
        get = self.word_ids.__getitem__
        pwords = list(map(get, path_words(path)))
        language = language_for(path)
        kept = self.kept.get((key, language))
        parsed = kept is None
        if kept is None:
            kept = self._chunk(path, data)
            if keep:
                self.kept[(key, language)] = kept
        defines, chunks = kept
        for row, symbol, words in chunks:
            self.occ.extend(words)
            self.occ.extend(pwords)
            self.n_occ.append(len(words) + len(pwords))
            self.rows.extend(row)
            self.symbols.append(symbol)
        self.paths.append(path)
        self.keys.append(key)
        self.languages.append(language)
        self.file_ptr.append(len(self.symbols))
        self.defines.extend(defines)
        self.define_ptr.append(len(self.defines))
        return parsed

    def _chunk(self, path: str, data: bytes) -> tuple[list[str], list[tuple[tuple[int, ...], str, array[int]]]]:
        text = data.decode("utf-8", errors="replace")
        fc = chunk_text(path, text)
        # chars[i]: characters in lines 1..i, newlines left out, so line i+1 starts at chars[i] + i
        chars = list(accumulate(map(len, text.split("\n")), initial=0))
        get = self.word_ids.__getitem__
        kinds = self.kinds
        chunks: list[tuple[tuple[int, ...], str, array[int]]] = []
        for c in fc.chunks:
            first, last = c.start_line - 1, c.end_line
            body = text[chars[first] + first : chars[last] + last - 1]
            # ASCII text encodes as a copy; a word is ASCII, so the other bytes of a character never join one
            words = array("i", map(get, body.encode("utf-8", "surrogatepass").translate(_RUNS).split()))
            if "--" in body:
                words.extend(map(get, FLAG.findall(body)))
            kind = kinds.setdefault(c.kind, len(kinds))
            chunks.append(((c.start_line, c.end_line, estimate_tokens(body), kind), c.symbol, words))
        return fc.defines, chunks

    def _terms(self, word: str | bytes) -> tuple[str, ...]:
        """A word's terms; a run of word bytes (from `_chunk`) is a word without its leading digits."""
        if isinstance(word, bytes):
            word = word.lstrip(b"0123456789").decode("ascii")
            if not word:
                return ()
        return self.expand(word)

    def finish(self, name: str | None = None) -> Segment:
        n_chunks = len(self.symbols)
        words = list(self.word_ids)
        # Word -> terms as CSR over term ids; terms numbered in sorted order (the vocab is searched by bisection).
        expansions = [self._terms(w) for w in words]
        vocab = sorted(set().union(*expansions)) if expansions else []
        tid = {t: i for i, t in enumerate(vocab)}
        w_len = np.fromiter(map(len, expansions), dtype=np.int64, count=len(words))
        w_ptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(w_len, out=w_ptr[1:])
        w_terms = np.fromiter((tid[t] for ts in expansions for t in ts), dtype=np.int64, count=int(w_ptr[-1]))
        occ = np.frombuffer(self.occ, dtype=np.int32) if len(self.occ) else np.zeros(0, np.int32)
        n_occ = np.frombuffer(self.n_occ, dtype=np.int32) if n_chunks else np.zeros(0, np.int32)
        # Every occurrence becomes its word's terms: (term, chunk) pairs, chunk after chunk.
        per = w_len[occ]
        total = int(per.sum())
        before = np.zeros(len(per) + 1, dtype=np.int64)
        np.cumsum(per, out=before[1:])
        occ_end = np.zeros(n_chunks + 1, dtype=np.int64)
        np.cumsum(n_occ, out=occ_end[1:])
        chunks = np.repeat(np.arange(n_chunks, dtype=np.int64), before[occ_end[1:]] - before[occ_end[:-1]])
        terms = w_terms[np.repeat(w_ptr[occ] - before[:-1], per) + np.arange(total)]
        del per, before
        # Sorted (term, chunk) keys; 32-bit when they fit, which sorts about twice as fast.
        width = max(n_chunks, 1)
        pairs: np.ndarray
        if len(vocab) * width < 2**32:
            pairs = terms.astype(np.uint32) * np.uint32(width) + chunks.astype(np.uint32)
        else:
            pairs = terms * width + chunks
        keys, tfs = np.unique(pairs, return_counts=True)
        doclen = np.bincount(chunks, minlength=n_chunks).astype(np.float32)
        del terms, chunks, pairs
        term_of, docs = np.divmod(keys, width)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(term_of, minlength=len(vocab)), out=indptr[1:])
        kinds = sorted(self.kinds, key=self.kinds.__getitem__)
        rows = (np.frombuffer(self.rows, dtype=np.int32).reshape(-1, 4) if n_chunks
                else np.zeros((0, 4), dtype=np.int32))
        return Segment(
            name or new_name(), self.paths, self.keys, self.languages, kinds,
            np.asarray(self.file_ptr, dtype=np.int64), rows.copy(), self.symbols, self.defines,
            np.asarray(self.define_ptr, dtype=np.int64), vocab, indptr, docs.astype(np.int32),
            tfs.astype(np.float32), doclen,
        )


def new_name() -> str:
    return secrets.token_hex(8)


def merge(parts: Sequence[tuple[Segment, np.ndarray]]) -> Segment:
    """One segment holding the files of ``parts`` whose mask is True (in that order)."""
    paths: list[str] = []
    keys: list[str] = []
    languages: list[str | None] = []
    kinds: dict[str, int] = {}
    symbols: list[str] = []
    defines: list[str] = []
    file_counts: list[np.ndarray] = []
    define_counts: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    doclens: list[np.ndarray] = []
    vocab = sorted(set().union(*(seg.vocab for seg, _ in parts))) if parts else []
    tid = {t: i for i, t in enumerate(vocab)}
    post_terms: list[np.ndarray] = []
    post_docs: list[np.ndarray] = []
    post_tf: list[np.ndarray] = []
    base = 0
    for seg, live in parts:
        live = np.asarray(live, dtype=bool)
        files = np.nonzero(live)[0]
        cf = seg.chunk_file()
        live_chunk = live[cf] if len(cf) else np.zeros(0, dtype=bool)
        new_id = np.cumsum(live_chunk) - 1 + base
        kind_map = np.asarray([kinds.setdefault(k, len(kinds)) for k in seg.kinds], dtype=np.int32)
        r = np.array(seg.rows[live_chunk], dtype=np.int32)
        if len(r):
            r[:, 3] = kind_map[r[:, 3]]
        rows.append(r)
        doclens.append(np.asarray(seg.doclen[live_chunk]))
        file_counts.append(np.diff(seg.file_ptr)[files])
        define_counts.append(np.diff(seg.define_ptr)[files])
        for f in files:
            paths.append(seg.paths[f])
            keys.append(seg.keys[f])
            languages.append(seg.languages[f])
            symbols.extend(seg.symbols[seg.file_ptr[f] : seg.file_ptr[f + 1]])
            defines.extend(seg.defines[seg.define_ptr[f] : seg.define_ptr[f + 1]])
        t_map = np.fromiter(map(tid.__getitem__, seg.vocab), dtype=np.int64, count=len(seg.vocab))
        t_of = np.repeat(t_map, np.diff(seg.indptr))
        d = np.asarray(seg.docs)
        keep = live_chunk[d] if len(d) else np.zeros(0, dtype=bool)
        post_terms.append(t_of[keep])
        post_docs.append(new_id[d[keep]])
        post_tf.append(np.asarray(seg.tf)[keep])
        base += int(live_chunk.sum())
    terms = np.concatenate(post_terms) if post_terms else np.zeros(0, np.int64)
    docs = np.concatenate(post_docs) if post_docs else np.zeros(0, np.int64)
    tf = np.concatenate(post_tf) if post_tf else np.zeros(0, np.float32)
    order = np.lexsort((docs, terms))
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=len(vocab)), out=indptr[1:])
    def cat(xs, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)
    file_ptr = np.zeros(len(paths) + 1, dtype=np.int64)
    np.cumsum(cat(file_counts, np.int64), out=file_ptr[1:])
    define_ptr = np.zeros(len(paths) + 1, dtype=np.int64)
    np.cumsum(cat(define_counts, np.int64), out=define_ptr[1:])
    return Segment(
        new_name(), paths, keys, languages, sorted(kinds, key=kinds.__getitem__), file_ptr,
        np.concatenate(rows) if rows else np.zeros((0, 4), np.int32), symbols, defines, define_ptr, vocab, indptr,
        docs[order].astype(np.int32), tf[order].astype(np.float32), cat(doclens, np.float32),
    )
