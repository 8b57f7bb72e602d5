"""The search index of a work tree, kept in one cache per repository and updated incrementally.

The cache lives in the repository's shared git directory
(``<git-common-dir>/anvil/retrieval-v<N>/``), so every worktree of the
repository and every run, whatever its ``ANVIL_HOME``, reads and extends the
same one, and nothing of it ever shows in a work tree, a diff or a commit:

- ``segments/<name>/``: immutable pieces of the index (``segments.py``), each
  holding the chunks and BM25 term counts of a set of (path, content key)
  files. The content key is the git blob id;
- ``views/<id>.json``: what one work tree's index is: its files in path
  order, the segment and position holding each, and a stat cache
  (size, mtime, key) for the files git does not vouch for;
- ``words.json``: the word -> search terms memo, so a big build does not split
  and stem the repository's vocabulary again.

Which content a file has comes from git: ``git ls-files --stage`` gives the
blob id of every tracked file and ``git diff-files`` names the ones that
differ from it; only those, and untracked files, are read and hashed here
(trusted by size+mtime on later runs, unless the mtime is within
``RACY_SECONDS`` of the view's writing). A file whose (path, key) is in any
segment of any view is not chunked again: a worktree on another base reuses
the checkout's segments and chunks only the files that differ. A changed file
goes into a new small segment and its old copy is masked; small segments are
merged once they add up (``SMALL_CHUNKS``, ``MAX_SMALL``). A cold build
streams files through the chunker in batches of ``BATCH_FILES``, in a process
pool when there are more than ``POOL_MIN_FILES``.

Nothing is deserialised with a format that can run code: JSON and ``.npy``
arrays loaded with ``allow_pickle=False``, checked for consistency; anything
that fails is rebuilt. A repository cannot plant a cache: git never checks
out or fetches anything into its git directory (which git itself trusts:
hooks and config live there). An exclusive ``lock`` file serialises
concurrent updates; a cache that cannot be written leaves an in-memory index
and a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anvil.retrieval.bm25 import SegmentedBm25
from anvil.retrieval.files import (
    NotAGitRepo,
    git_common_dir,
    list_content,
    skip_by_content,
)
from anvil.retrieval.segments import (
    BadSegment,
    Segment,
    SegmentBuilder,
    load_segment,
    merge,
    write_segment,
)
from anvil.retrieval.tokens import known_splits, remember_splits

INDEX_VERSION = 11  # bump whenever chunking or tokenising changes: segments are keyed by content only
RACY_SECONDS = 2.0
BATCH_FILES = 1500  # files per segment of a cold build (bounds the memory of one batch)
POOL_MIN_FILES = 3000  # chunk in worker processes above this many files to chunk
SMALL_CHUNKS = 10_000  # segments with fewer live chunks are "small"; merged once they add up to this
MAX_SMALL = 8  # ... or once there are this many
MEMO_MIN_FILES = 300  # load the persisted word memo only for builds this big (it costs more than a few files)

Clock = Callable[[], float]


@dataclass
class SearchIndex:
    """Everything a query needs: files in path order, their chunks contiguous, one BM25 over all."""

    fingerprint: str
    paths: list[str]
    languages: list[str | None]
    chunk_file: np.ndarray  # int32, file index of each chunk
    chunk_start: np.ndarray  # int32, 1-based
    chunk_end: np.ndarray  # int32, inclusive
    chunk_tokens: np.ndarray  # int32, estimated tokens of the chunk text
    chunk_symbol: list[str]
    chunk_kind: list[str]
    defines: Mapping[str, list[int]]  # name -> indices of files that define it, ascending
    file_defines: Sequence[list[str]]
    bm25: SegmentedBm25

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_symbol)


@dataclass
class IndexStats:
    files: int = 0
    chunks: int = 0
    hashed: int = 0  # files read and hashed this run
    rechunked: int = 0  # files whose (path, content) was in no segment and had to be chunked
    reused_search: bool = False  # warm path: the view was current
    segments: int = 0
    merged: int = 0  # small segments merged into one this run
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (what ``git hash-object`` prints)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))  # git's object name, not a security hash
    h.update(data)
    return h.hexdigest()


def cache_dir(root: Path) -> Path:
    return git_common_dir(root) / "anvil" / f"retrieval-v{INDEX_VERSION}"


def _fingerprint(paths: Sequence[str], keys: Sequence[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path, key in zip(paths, keys, strict=False):
        h.update(path.encode("utf-8", "surrogateescape") + b"\0" + key.encode() + b"\n")
    return h.hexdigest()


def _write_json(path: Path, obj: object) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(json.dumps(obj, ensure_ascii=False))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and obj.get("version") == INDEX_VERSION else None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic replaces still keep every file whole
        yield
        return
    with open(directory / "lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class View:
    """One work tree's index as stored: parallel lists in path order."""

    root: str
    fingerprint: str
    segments: list[str]
    paths: list[str]
    keys: list[str]
    seg: list[int]  # index into ``segments`` of the segment holding each file
    local: list[int]  # the file's position in that segment
    skipped: dict[str, str]  # path -> key of files left out for their content (binary, generated)
    stat: dict[str, list]  # path -> [size, mtime_ns, key] for files whose content was read and hashed
    written_at: float = 0.0

    def to_json(self) -> dict:
        return {"version": INDEX_VERSION, "root": self.root, "fingerprint": self.fingerprint,
                "segments": self.segments, "paths": self.paths, "keys": self.keys, "seg": self.seg,
                "local": self.local, "skipped": self.skipped, "stat": self.stat, "written_at": self.written_at}

    @classmethod
    def from_json(cls, obj: dict) -> View | None:
        try:
            view = cls(str(obj["root"]), str(obj["fingerprint"]), list(obj["segments"]), list(obj["paths"]),
                       list(obj["keys"]), list(obj["seg"]), list(obj["local"]), dict(obj["skipped"]),
                       dict(obj["stat"]), float(obj["written_at"]))
        except (KeyError, TypeError, ValueError):
            return None
        n = len(view.paths)
        if not (len(view.keys) == len(view.seg) == len(view.local) == n):
            return None
        return view


class _Cache:
    """The repository's cache folder; remembers whether it can be written."""

    def __init__(self, root: Path, enabled: bool, stats: IndexStats):
        self.stats = stats
        self.enabled = False
        self.dir = Path()
        if not enabled:
            return
        try:
            self.dir = cache_dir(root)
            (self.dir / "segments").mkdir(parents=True, exist_ok=True)
            (self.dir / "views").mkdir(exist_ok=True)
            self.enabled = os.access(self.dir, os.W_OK)
        except (OSError, NotAGitRepo) as exc:
            stats.warnings.append(f"index cache disabled, cannot create {self.dir}: {exc}")
        if not self.enabled and not stats.warnings:
            stats.warnings.append(f"index cache disabled: {self.dir} is not writable")
        where = str(root.resolve()).encode("utf-8", "surrogateescape")
        self.view_id = hashlib.blake2b(where, digest_size=12).hexdigest()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return _locked(self.dir) if self.enabled else contextlib.nullcontext()

    @property
    def segments_dir(self) -> Path:
        return self.dir / "segments"

    def view_path(self, view_id: str | None = None) -> Path:
        return self.dir / "views" / f"{view_id or self.view_id}.json"

    def read_view(self) -> View | None:
        if not self.enabled:
            return None
        obj = _read_json(self.view_path())
        return View.from_json(obj) if obj else None

    def write(self, action: Callable[[], None], what: str) -> None:
        if not self.enabled:
            return
        try:
            action()
        except OSError as exc:
            self.stats.warnings.append(f"could not write {what}: {exc}")
            self.enabled = False

    def other_views(self) -> list[tuple[str, list[str]]]:
        """(root, segment names) of every other work tree's view."""
        out = []
        for p in (self.dir / "views").glob("*.refs.json"):
            obj = _read_json(p)
            if obj and p.name != f"{self.view_id}.refs.json":
                out.append((str(obj.get("root", "")), [str(s) for s in obj.get("segments", [])]))
        return out

    def collect_garbage(self) -> None:
        """Drop the views of work trees that are gone and the segments no view uses."""
        keep: set[str] = set()
        for p in (self.dir / "views").glob("*.refs.json"):
            obj = _read_json(p)
            if obj is None or not Path(str(obj.get("root", ""))).is_dir():
                for q in (p, p.with_name(p.name.replace(".refs.json", ".json"))):
                    with contextlib.suppress(OSError):
                        q.unlink()
                continue
            keep.update(str(s) for s in obj.get("segments", []))
        for p in self.segments_dir.iterdir():
            if p.name not in keep:  # unused, or a half-written ".tmp-" left by a killed build
                shutil.rmtree(p, ignore_errors=True)


def open_index(root: Path, *, use_cache: bool = True, clock: Clock = time.time) -> tuple[SearchIndex, IndexStats]:
    """The current search index of the work tree at ``root`` (built or updated as needed)."""
    t0 = time.perf_counter()
    stats = IndexStats()
    cache = _Cache(root, use_cache, stats)
    import gc

    # Building allocates hundreds of thousands of small objects, none of them cyclic;
    # the cyclic collector's passes over them cost a third of a cold build. Paused for the build.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with cache.lock():
            index = _Update(root, cache, stats, clock).run()
    finally:
        if gc_was_enabled:
            gc.enable()
    stats.files = len(index.paths)
    stats.chunks = index.n_chunks
    stats.seconds = time.perf_counter() - t0
    return index, stats


@dataclass
class _Batch:
    """What building one segment from a list of (path, key) files found."""

    name: str
    segment: Segment | None  # set when the cache is not written (the segment stays in memory)
    skipped: dict[str, str]
    lost: list[str]  # vanished before they could be read
    stat: dict[str, list]  # files whose content was not the key they were listed with
    splits: dict[str, tuple[str, ...]]  # words split for the first time in this process
    parsed: int = 0  # files chunked (identical contents in one batch are chunked once)


def _build_batch(root: Path, batch: Sequence[tuple[str, str]], out_dir: Path | None) -> _Batch:
    """Read, check and chunk ``batch`` into one segment, one file at a time (streamed)."""
    memo = known_splits()
    known = len(memo)
    builder = SegmentBuilder()
    skipped: dict[str, str] = {}
    lost: list[str] = []
    stat: dict[str, list] = {}
    parsed = 0
    repeated = {k for k, n in Counter(k for _, k in batch).items() if n > 1}
    for path, key in batch:
        try:
            data = (root / path).read_bytes()
            st = os.stat(root / path, follow_symlinks=False)
        except OSError:
            lost.append(path)
            continue
        actual = blob_id(data)
        if actual != key:  # changed since it was listed, or git filters it (line endings): key it by what was read
            key = actual
            stat[path] = [st.st_size, st.st_mtime_ns, key]
        if skip_by_content(data):
            skipped[path] = key
            continue
        parsed += builder.add(path, key, data, keep=key in repeated)
    seg = builder.finish()
    splits = dict(list(memo.items())[known:]) if out_dir is not None and len(memo) > known else {}
    if out_dir is not None:
        write_segment(seg, out_dir)
    return _Batch(seg.name, None if out_dir is not None else seg, skipped, lost, stat, splits, parsed)


def _pool_build(root: Path, batches: list[list[tuple[str, str]]], out_dir: Path | None) -> list[_Batch]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Fork: the workers start with the parent's imports and word memo, and read their files
    # themselves, so no file content crosses a pipe; only a summary (or, uncached, the segment) comes back.
    workers = max(1, min(len(batches), os.cpu_count() or 1, 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_build_batch, [root] * len(batches), batches, [out_dir] * len(batches)))


class _Update:
    def __init__(self, root: Path, cache: _Cache, stats: IndexStats, clock: Clock):
        self.root = root
        self.cache = cache
        self.stats = stats
        self.clock = clock
        self.loaded: dict[str, Segment] = {}
        self.bad: set[str] = set()  # segments found damaged: never reused
        self.settled = True  # every file hashed this run is old enough to trust by size+mtime next time

    def segment(self, name: str) -> Segment:
        seg = self.loaded.get(name)
        if seg is None:
            seg = self.loaded[name] = load_segment(self.cache.segments_dir / name)
        return seg

    def run(self) -> SearchIndex:
        view = self.cache.read_view()
        paths, keys, skipped, stat = self.scan(view)
        fingerprint = _fingerprint(paths, keys)
        if view is not None and view.fingerprint == fingerprint:
            try:
                index = assemble(view, [self.segment(s) for s in view.segments])
            except BadSegment as exc:
                self.bad.add(str(exc).split(":", 1)[0])
                self.stats.warnings.append(f"index cache damaged, rebuilding: {exc}")
            else:
                self.stats.reused_search = True
                self.stats.segments = len(view.segments)
                # Re-stamp when files were re-hashed only for being recent: once they are old enough,
                # the next run trusts size+mtime again instead of re-reading them forever.
                if stat != view.stat or (self.stats.hashed and self.settled):
                    view.stat, view.written_at = stat, self.clock()
                    restamped = view.to_json()
                    self.cache.write(lambda: _write_json(self.cache.view_path(), restamped), "the index view")
                return index
        view = self.rebuild(paths, keys, skipped, stat, view)
        self.stats.segments = len(view.segments)
        return assemble(view, [self.segment(s) for s in view.segments])

    def scan(self, view: View | None) -> tuple[list[str], list[str], dict[str, str], dict[str, list]]:
        """The work tree's files and content keys, in path order; the skipped ones apart."""
        listing = list_content(self.root)
        prev_stat = view.stat if view is not None else {}
        prev_skipped = view.skipped if view is not None else {}
        racy_before = int(((view.written_at if view else 0.0) - RACY_SECONDS) * 1e9)
        found = dict(listing.clean)
        unknown = set(listing.unknown)
        unknown.update(p for p in prev_stat if p in found)  # content once found to differ from git's blob
        stat: dict[str, list] = {}
        recent_ns = int((self.clock() - RACY_SECONDS) * 1e9)
        for rel in unknown:
            found.pop(rel, None)
            try:
                st = os.stat(self.root / rel, follow_symlinks=False)
            except OSError:
                continue  # deleted but still in the git index
            if st.st_mode & 0o170000 != 0o100000:
                continue  # symlinks, sockets
            prev = prev_stat.get(rel)
            if prev is not None and (prev[0], prev[1]) == (st.st_size, st.st_mtime_ns) and st.st_mtime_ns < racy_before:
                stat[rel] = prev
                found[rel] = prev[2]
                continue
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                continue
            self.stats.hashed += 1
            if st.st_mtime_ns >= recent_ns:
                self.settled = False
            key = blob_id(data)
            stat[rel] = [st.st_size, st.st_mtime_ns, key]
            found[rel] = key
            if skip_by_content(data):
                prev_skipped = {**prev_skipped, rel: key}
        skipped = {p: k for p, k in found.items() if prev_skipped.get(p) == k}
        paths = sorted(p for p in found if p not in skipped)
        return paths, [found[p] for p in paths], skipped, stat

    def rebuild(self, paths: list[str], keys: list[str], skipped: dict[str, str], stat: dict[str, list],
                view: View | None) -> View:
        # Where each (path, key) already is: this work tree's segments first, then every other view's.
        have: dict[tuple[str, str], tuple[str, int]] = {}
        names = list(view.segments) if view is not None else []
        wanted = set(zip(paths, keys, strict=False))
        self._index_segments(names, wanted, have)
        if self.cache.enabled and (view is None or len(wanted) - len(have) > 50):
            for _root, segs in self.cache.other_views():
                self._index_segments(segs, wanted, have)
        todo = [(p, k) for p, k in zip(paths, keys, strict=False) if (p, k) not in have]
        batches = self._build(todo)
        lost: set[str] = set()
        for b in batches:
            skipped.update(b.skipped)
            stat.update(b.stat)
            lost.update(b.lost)
        fixed = {p: s[2] for b in batches for p, s in b.stat.items()}
        placed = {}
        for b in batches:
            seg = self.segment(b.name) if b.segment is None else b.segment
            self.loaded[b.name] = seg
            for j, (p, k) in enumerate(zip(seg.paths, seg.keys, strict=False)):
                placed[(p, k)] = (b.name, j)
        self.stats.rechunked += sum(b.parsed for b in batches)
        new_paths: list[str] = []
        new_keys: list[str] = []
        where: list[tuple[str, int]] = []
        for p, k in zip(paths, keys, strict=False):
            if p in lost:
                continue
            k = fixed.get(p, k)
            hit = have.get((p, k)) or placed.get((p, k))
            if hit is None:  # skipped for its content after all
                continue
            new_paths.append(p)
            new_keys.append(k)
            where.append(hit)
        where = self._compact(where)
        seg_names = list(dict.fromkeys(name for name, _ in where))
        pos = {name: i for i, name in enumerate(seg_names)}
        new = View(str(self.root), _fingerprint(new_paths, new_keys), seg_names, new_paths, new_keys,
                   [pos[n] for n, _ in where], [j for _, j in where], skipped, stat, self.clock())
        self._save(new)
        return new

    def _index_segments(self, names: Sequence[str], wanted: set[tuple[str, str]],
                        have: dict[tuple[str, str], tuple[str, int]]) -> None:
        for name in names:
            if name in self.bad:
                continue
            try:
                seg = self.segment(name)
            except BadSegment as exc:
                self.bad.add(name)
                self.stats.warnings.append(f"index cache damaged, rebuilding: {exc}")
                continue
            for j, pk in enumerate(zip(seg.paths, seg.keys, strict=False)):
                if pk in wanted and pk not in have:
                    have[pk] = (name, j)

    def _build(self, todo: list[tuple[str, str]]) -> list[_Batch]:
        if not todo:
            return []
        memo_file = self.cache.dir / "words.json"
        if len(todo) >= MEMO_MIN_FILES and self.cache.enabled:
            obj = _read_json(memo_file)
            if obj is not None and isinstance(obj.get("words"), list) and isinstance(obj.get("terms"), list):
                pairs = zip(obj["words"], obj["terms"], strict=False)
                remember_splits({w: tuple(t.split(" ")) if t else () for w, t in pairs})
        out_dir = self.cache.segments_dir if self.cache.enabled else None
        batches = [todo[i : i + BATCH_FILES] for i in range(0, len(todo), BATCH_FILES)]
        if len(todo) > POOL_MIN_FILES and len(batches) > 1 and (os.cpu_count() or 1) > 1:
            done = _pool_build(self.root, batches, out_dir)
        else:
            done = [_build_batch(self.root, b, out_dir) for b in batches]
        if len(todo) >= MEMO_MIN_FILES and self.cache.enabled:
            for b in done:
                remember_splits(b.splits)
            memo = known_splits()
            words = list(memo)
            self.cache.write(lambda: _write_json(memo_file, {
                "version": INDEX_VERSION, "words": words, "terms": [" ".join(memo[w]) for w in words]}),
                "the word memo")
        return done

    def _compact(self, where: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Merge the small segments into one once they add up; return the files' new places."""
        live: dict[str, list[int]] = {}
        for name, j in where:
            live.setdefault(name, []).append(j)
        sizes = {}
        for name, js in live.items():
            seg = self.loaded.get(name) or self.segment(name)
            counts = np.diff(seg.file_ptr)
            sizes[name] = (int(counts[js].sum()), seg.n_chunks)
        small = [n for n, (lv, total) in sizes.items() if lv < SMALL_CHUNKS or total > 2 * lv]
        if len(small) < 2 or (len(small) < MAX_SMALL and sum(sizes[n][0] for n in small) < SMALL_CHUNKS):
            return where
        parts = []
        for name in small:
            seg = self.segment(name)
            mask = np.zeros(seg.n_files, dtype=bool)
            mask[live[name]] = True
            parts.append((seg, mask))
        merged = merge(parts)
        self.stats.merged += len(small)
        if self.cache.enabled:
            self.cache.write(lambda: write_segment(merged, self.cache.segments_dir), "a merged segment")
        self.loaded[merged.name] = merged
        new_place = {(merged.paths[j], merged.keys[j]): j for j in range(merged.n_files)}
        out = []
        for name, j in where:
            if name in small:
                seg = self.loaded[name]
                out.append((merged.name, new_place[(seg.paths[j], seg.keys[j])]))
            else:
                out.append((name, j))
        return out

    def _save(self, view: View) -> None:
        cache = self.cache
        if not cache.enabled:
            return
        refs = {"version": INDEX_VERSION, "root": view.root, "segments": view.segments}
        cache.write(lambda: _write_json(cache.view_path(), view.to_json()), "the index view")
        cache.write(lambda: _write_json(cache.view_path(f"{cache.view_id}.refs"), refs), "the index view")
        cache.write(cache.collect_garbage, "the index cache")


def assemble(view: View, segs: Sequence[Segment]) -> SearchIndex:
    """The query-time index of ``view``: its files' chunks gathered from the segments, in path order."""
    n_files = len(view.paths)
    seg_of = np.asarray(view.seg, dtype=np.int64)
    local = np.asarray(view.local, dtype=np.int64)
    counts = np.zeros(n_files, dtype=np.int64)
    per_seg: list[np.ndarray] = []
    for s, seg in enumerate(segs):
        files = np.nonzero(seg_of == s)[0]
        loc = local[files]
        if len(loc) and (loc.max() >= seg.n_files or loc.min() < 0):
            raise BadSegment(f"{seg.name}: the view names files it does not have")
        counts[files] = np.diff(seg.file_ptr)[loc]
        per_seg.append(files)
    starts = np.zeros(n_files + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    n = int(starts[-1])
    rows = np.zeros((n, 4), dtype=np.int32)
    doclen = np.zeros(n, dtype=np.float32)
    symbols = np.empty(n, dtype=object)
    kinds = np.empty(n, dtype=object)
    languages: list[str | None] = [None] * n_files
    parts = []
    define_parts = []
    file_seg = np.zeros(n_files, dtype=np.int64)
    for seg, files in zip(segs, per_seg, strict=False):
        loc = local[files]
        file_map = np.full(seg.n_files, -1, dtype=np.int64)
        file_map[loc] = files
        cf = seg.chunk_file()
        lf = file_map[cf]
        live = lf >= 0
        to_doc = np.full(seg.n_chunks, -1, dtype=np.int64)
        to_doc[live] = starts[lf[live]] + (np.arange(seg.n_chunks)[live] - seg.file_ptr[cf[live]])
        ids = to_doc[live]
        rows[ids] = seg.rows[live]
        doclen[ids] = seg.doclen[live]
        symbols[ids] = np.asarray(seg.symbols, dtype=object)[live]
        kinds[ids] = np.asarray(seg.kinds, dtype=object)[seg.rows[live, 3]]
        seg_langs = seg.languages
        for fi, j in zip(files.tolist(), loc.tolist(), strict=False):
            languages[fi] = seg_langs[j]
        parts.append((seg, to_doc))
        define_parts.append((seg, file_map))
    for s, files in enumerate(per_seg):
        file_seg[files] = s
    return SearchIndex(
        fingerprint=view.fingerprint, paths=list(view.paths), languages=languages,
        chunk_file=np.repeat(np.arange(n_files, dtype=np.int32), counts), chunk_start=rows[:, 0].copy(),
        chunk_end=rows[:, 1].copy(), chunk_tokens=rows[:, 2].copy(), chunk_symbol=symbols.tolist(),
        chunk_kind=kinds.tolist(), defines=_Defines(define_parts), file_defines=_FileDefines(segs, file_seg, local),
        bm25=SegmentedBm25(parts, doclen),
    )


class _Defines(Mapping[str, list[int]]):
    """name -> files defining it, looked up in each segment's sorted names (live files only)."""

    def __init__(self, parts: list[tuple[Segment, np.ndarray]]):
        self.parts = parts
        self._memo: dict[str, list[int]] = {}
        self._all: dict[str, list[int]] | None = None

    def _lookup(self, name: str) -> list[int]:
        got = self._memo.get(name)
        if got is None:
            found: list[int] = []
            for seg, file_map in self.parts:
                names = seg.define_sorted
                lo = bisect_left(names, name)
                hi = bisect_right(names, name, lo)
                if hi > lo:
                    fis = file_map[seg.define_sorted_file[lo:hi]]
                    found.extend(int(f) for f in fis if f >= 0)
            got = sorted(found)
            if len(self._memo) > 10_000:
                self._memo.clear()
            self._memo[name] = got
        return got

    def __getitem__(self, name: str) -> list[int]:
        got = self._lookup(name) if isinstance(name, str) else []
        if not got:
            raise KeyError(name)
        return got

    def get(self, name: str, default=None):
        return self._lookup(name) or default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self._lookup(name))

    def _full(self) -> dict[str, list[int]]:
        if self._all is None:
            names = sorted({n for seg, _ in self.parts for n in seg.define_sorted})
            self._all = {n: got for n in names if (got := self._lookup(n))}
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())


class _FileDefines(Sequence[list[str]]):
    """Names each file defines, read from its segment when asked."""

    def __init__(self, segs: Sequence[Segment], file_seg: np.ndarray, local: np.ndarray):
        self.segs, self.file_seg, self.local = segs, file_seg, local

    def __len__(self) -> int:
        return len(self.local)

    def __getitem__(self, fi):
        if isinstance(fi, slice):
            return [self[i] for i in range(*fi.indices(len(self)))]
        seg, j = self.segs[int(self.file_seg[fi])], int(self.local[fi])
        return seg.defines[int(seg.define_ptr[j]) : int(seg.define_ptr[j + 1])]
