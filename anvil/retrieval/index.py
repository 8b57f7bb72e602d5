"""The on-disk index under ``<repo>/.anvil/cache/retrieval/``, updated incrementally.

Three files, each replaced atomically (temp file + ``os.replace``):

- ``manifest.pkl``: path -> (size, mtime_ns, content hash). The warm path
  trusts a file whose size and mtime match, unless its mtime is within
  ``RACY_SECONDS`` of when the manifest was written (the classic git "racy
  clean" case), which is re-hashed;
- ``store.pkl``: content hash -> chunks, search terms, defined names. Only
  content never seen before is chunked, so a changed file is re-chunked alone
  and a moved file not at all;
- ``search.pkl``: what a query needs (paths, chunk table, BM25 matrix,
  who-defines-what), tagged with a fingerprint of every (path, hash). When
  the fingerprint matches, the warm path is: list files, stat, load this file.

Every file is sealed with a keyed hash whose key lives outside the
repository (``sealed.py``): a cache file a cloned repository brings along is
never unpickled. An exclusive ``lock`` file (``fcntl.flock``) serialises
concurrent builds:
the second process waits, then finds the index fresh. A cache that cannot be
read is rebuilt; one that cannot be written leaves an in-memory index and a
warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anvil.retrieval.bm25 import Bm25, WordBag
from anvil.retrieval.chunking import chunk_text
from anvil.retrieval.files import list_files, skip_by_content
from anvil.retrieval.languages import language_for
from anvil.retrieval.query import FLAG
from anvil.retrieval.sealed import NoKey, cache_key, seal, unseal
from anvil.retrieval.tokens import estimate_tokens, expand_word, known_splits, remember_splits, word_counts

INDEX_VERSION = 10  # bump whenever chunking or tokenising changes: cached chunks are keyed by content only
CACHE_SUBDIR = Path(".anvil") / "cache" / "retrieval"
RACY_SECONDS = 2.0

# A chunk as stored: (start_line, end_line, symbol, kind, estimated tokens).
ChunkRow = tuple[int, int, str, str, int]


@dataclass(slots=True)
class FileRecord:
    """What one file content yields; keyed by content hash in the store."""

    language: str | None
    chunks: list[ChunkRow]
    # Word counts per chunk as (space-joined words, int32 counts as bytes); expanded to
    # BM25 terms, with the path's words added, when the search index is built.
    terms: list[tuple[str, bytes]]
    defines: list[str]


@dataclass
class SearchIndex:
    """Everything a query needs, loaded as one pickle."""

    fingerprint: str
    paths: list[str]
    languages: list[str | None]
    chunk_file: np.ndarray  # int32, file index of each chunk
    chunk_start: np.ndarray  # int32, 1-based
    chunk_end: np.ndarray  # int32, inclusive
    chunk_tokens: np.ndarray  # int32, estimated tokens of the chunk text
    chunk_symbol: list[str]
    chunk_kind: list[str]
    defines: dict[str, list[int]]  # name -> indices of files that define it
    file_defines: list[list[str]]
    bm25: Bm25
    version: int = INDEX_VERSION

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_symbol)


@dataclass
class IndexStats:
    files: int = 0
    chunks: int = 0
    hashed: int = 0  # files read and hashed this run
    rechunked: int = 0  # files whose content was new and had to be chunked
    reused_search: bool = False  # warm path: the cached search index was current
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def content_hash(path: str, data: bytes) -> str:
    """Hash of the content and of how it is chunked (its language), not of its path."""
    h = hashlib.blake2b(data, digest_size=16)
    h.update(b"\0" + str(language_for(path)).encode())
    return h.hexdigest()


def path_terms(path: str) -> dict[str, int]:
    """BM25 terms every chunk of a file gets from its path (extension left out)."""
    name = path.rsplit("/", 1)[-1]
    stem = path.rsplit(".", 1)[0] if "." in name.lstrip(".") else path
    return word_counts(stem)


def _read_sealed(path: Path, key: bytes) -> Any:
    """A cache file's content; None when missing, unreadable, not sealed by this user or of
    another version. (Pickle, not marshal: marshal wrote faster but loaded a large store five
    times slower, 1.4 s vs 0.28 s on sphinx.)"""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    obj = unseal(blob, key)
    if not isinstance(obj, dict) or obj.get("version") != INDEX_VERSION:
        return None
    return obj


def _write_sealed(path: Path, obj: dict[str, Any], key: bytes) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    blob = seal({**obj, "version": INDEX_VERSION}, key)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic replaces still keep every file whole
        yield
        return
    with open(cache_dir / "lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def chunk_file(path: str, data: bytes) -> FileRecord:
    """Chunk one file's bytes and compute the BM25 terms of each chunk."""
    text = data.decode("utf-8", errors="replace")
    fc = chunk_text(path, text)
    lines = text.split("\n")
    rows: list[ChunkRow] = []
    terms: list[tuple[str, bytes]] = []
    for c in fc.chunks:
        body = "\n".join(lines[c.start_line - 1 : c.end_line])
        rows.append((c.start_line, c.end_line, c.symbol, c.kind, estimate_tokens(body)))
        counts = word_counts(body)
        if "--" in body:
            for flag in FLAG.findall(body):
                counts[flag] = counts.get(flag, 0) + 1
        # Compact: one string and one bytes object per chunk pickle ~10x faster than a dict.
        terms.append((" ".join(counts), array("i", counts.values()).tobytes()))
    return FileRecord(fc.language, rows, terms, fc.defines)


def _chunk_all(items: list[tuple[str, str, bytes]]) -> dict[str, FileRecord]:
    # Serial on purpose: a forked second process was measured (pytest, 2 cores) to
    # cost as much in start-up and result pickling as it saved in parsing.
    return {digest: chunk_file(path, data) for digest, path, data in items}


def _fingerprint(entries: list[tuple[str, str]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path, digest in entries:
        h.update(path.encode("utf-8", "surrogateescape") + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()


def _build_search(fingerprint: str, entries: list[tuple[str, str]], store: dict[str, FileRecord],
                  words_out: list[str] | None = None) -> SearchIndex:
    paths: list[str] = []
    languages: list[str | None] = []
    cf: list[int] = []
    cs: list[int] = []
    ce: list[int] = []
    ct: list[int] = []
    symbols: list[str] = []
    kinds: list[str] = []
    docs: list[WordBag] = []
    extra: list[dict[str, int]] = []
    defines: dict[str, list[int]] = {}
    file_defines: list[list[str]] = []
    for fi, (path, digest) in enumerate(entries):
        rec = store[digest]
        pterms = path_terms(path)
        paths.append(path)
        languages.append(rec.language)
        file_defines.append(rec.defines)
        for name in rec.defines:
            defines.setdefault(name, []).append(fi)
        for (s, e, sym, kind, tok), t in zip(rec.chunks, rec.terms, strict=False):
            cf.append(fi)
            cs.append(s)
            ce.append(e)
            ct.append(tok)
            symbols.append(sym)
            kinds.append(kind)
            docs.append((t[0].split(" ") if t[0] else [], np.frombuffer(t[1], dtype=np.int32)))
            extra.append(pterms)
    return SearchIndex(
        fingerprint=fingerprint, paths=paths, languages=languages,
        chunk_file=np.asarray(cf, dtype=np.int32), chunk_start=np.asarray(cs, dtype=np.int32),
        chunk_end=np.asarray(ce, dtype=np.int32), chunk_tokens=np.asarray(ct, dtype=np.int32),
        chunk_symbol=symbols, chunk_kind=kinds, defines=defines, file_defines=file_defines,
        bm25=Bm25.build(docs, extra=extra, expand=expand_word, words_out=words_out),
    )


class _Cache:
    """Reads and writes the three cache files; remembers whether it can write."""

    def __init__(self, root: Path, enabled: bool, stats: IndexStats):
        self.dir = root / CACHE_SUBDIR
        self.stats = stats
        self.writable = False
        self.key = b""
        if enabled:
            try:
                self.key = cache_key()
            except NoKey as exc:
                stats.warnings.append(f"index cache disabled: {exc}")
                enabled = False
        if enabled:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.writable = os.access(self.dir, os.W_OK)
                ignore = self.dir / ".gitignore"
                if self.writable and not ignore.exists():
                    # Like .pytest_cache: the cache ignores itself, so `git status` stays
                    # clean even where `anvil init` has not added .anvil/cache/ to .gitignore.
                    ignore.write_text("# created by anvil\n*\n")
            except OSError as exc:
                stats.warnings.append(f"index cache disabled, cannot create {self.dir}: {exc}")
        self.enabled = enabled and self.writable

    def read(self, name: str) -> dict[str, Any] | None:
        return _read_sealed(self.dir / name, self.key) if self.enabled else None

    def write(self, name: str, obj: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            _write_sealed(self.dir / name, obj, self.key)
        except OSError as exc:
            self.stats.warnings.append(f"could not write {self.dir / name}: {exc}")
            self.enabled = False

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _locked(self.dir) if self.enabled else contextlib.nullcontext()


def open_index(root: Path, *, use_cache: bool = True, clock: Any = time.time) -> tuple[SearchIndex, IndexStats]:
    """The current search index of the work tree at ``root`` (built or updated as needed)."""
    t0 = time.perf_counter()
    stats = IndexStats()
    cache = _Cache(root, use_cache, stats)
    import gc

    # Building allocates hundreds of thousands of small dicts and tuples, none of
    # them cyclic; the cyclic collector's passes over them were a third of the
    # cold time in a long-lived process. Paused for the build only.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with cache.lock():
            index = _update(root, cache, stats, clock)
    finally:
        if gc_was_enabled:
            gc.enable()
    stats.files = len(index.paths)
    stats.chunks = index.n_chunks
    stats.seconds = time.perf_counter() - t0
    return index, stats


def _update(root: Path, cache: _Cache, stats: IndexStats, clock: Any) -> SearchIndex:
    manifest_obj = cache.read("manifest.pkl") or {}
    old: dict[str, tuple[int, int, str]] = manifest_obj.get("files", {})
    racy_before = int((manifest_obj.get("written_at", 0.0) - RACY_SECONDS) * 1e9)
    new: dict[str, tuple[int, int, str]] = {}
    fresh: dict[str, bytes] = {}  # content read this run, by hash, for chunking
    settled = True  # every racy file re-checked this run is now old enough to trust next time
    now_ns = int((clock() - RACY_SECONDS) * 1e9)
    for rel in list_files(root):
        try:
            st = os.stat(root / rel, follow_symlinks=False)
        except OSError:
            continue  # deleted but still in the git index
        if not (st.st_mode & 0o170000 == 0o100000):
            continue  # symlinks, submodules, sockets
        prev = old.get(rel)
        if prev is not None and prev[0] == st.st_size and prev[1] == st.st_mtime_ns and st.st_mtime_ns < racy_before:
            new[rel] = prev
            continue
        try:
            data = (root / rel).read_bytes()
        except OSError:
            continue
        stats.hashed += 1
        digest = "" if skip_by_content(data) else content_hash(rel, data)
        new[rel] = (st.st_size, st.st_mtime_ns, digest)
        if st.st_mtime_ns >= now_ns:
            settled = False
        if digest:
            fresh[digest] = data
    entries = sorted((p, v[2]) for p, v in new.items() if v[2])
    fingerprint = _fingerprint(entries)
    # Re-stamp the manifest when files were re-hashed only for being recent: once they are
    # old enough, the next run trusts size+mtime again instead of re-reading them forever.
    manifest_changed = new != old or (stats.hashed > 0 and settled)
    search_obj = cache.read("search.pkl")
    index = search_obj.get("index") if search_obj else None
    if isinstance(index, SearchIndex) and index.fingerprint == fingerprint:
        stats.reused_search = True
        if manifest_changed:
            cache.write("manifest.pkl", {"files": new, "written_at": clock()})
        return index
    store_obj = cache.read("store.pkl") or {}
    remember_splits(store_obj.get("splits", {}))
    store = {k: FileRecord(*v) for k, v in store_obj.get("records", {}).items()}
    path_of = {digest: path for path, digest in entries}
    kept: dict[str, FileRecord] = {}
    todo: dict[str, tuple[str, str, bytes]] = {}
    lost: set[str] = set()
    for _path, digest in entries:
        if digest in kept or digest in todo:
            continue
        rec = store.get(digest)
        if rec is None:
            blob = fresh.get(digest)
            if blob is None:  # stat-trusted but missing from the store: read it again
                try:
                    blob = (root / path_of[digest]).read_bytes()
                except OSError:
                    lost.add(digest)
                    continue
            todo[digest] = (digest, path_of[digest], blob)
        else:
            kept[digest] = rec
    kept.update(_chunk_all(list(todo.values())))
    stats.rechunked += len(todo)
    if lost:  # vanished between listing and reading: leave them out
        entries = [(p, d) for p, d in entries if d not in lost]
        fingerprint = _fingerprint(entries)
        new = {p: v for p, v in new.items() if v[2] not in lost}
    words: list[str] = []
    index = _build_search(fingerprint, entries, kept, words)
    memo = known_splits()
    splits = {w: memo[w] for w in words if w in memo}  # this repository's words only
    cache.write("store.pkl", {
        "records": {k: (r.language, r.chunks, r.terms, r.defines) for k, r in kept.items()},
        # Splitting and stemming every distinct word is a visible part of a rebuild; keep the memo.
        "splits": splits,
    })
    cache.write("search.pkl", {"index": index})
    cache.write("manifest.pkl", {"files": new, "written_at": clock()})
    return index
