"""The index at scale: incremental updates equal a rebuild, one cache per repository, no planted cache."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from anvil.retrieval import index as index_mod
from anvil.retrieval.index import SearchIndex, cache_dir, open_index
from anvil.retrieval.retriever import Retriever
from tests.retrieval_helpers import make_repo

QUERY = "loading the configuration from a file fails with a parse error in parse_http_response"


def _files(n: int = 12) -> dict[str, str]:
    out = {}
    for i in range(n):
        funcs = "\n".join(
            f"def handler_{i}_{j}(config, path):\n    \"\"\"Load part {j} of the configuration.\"\"\"\n"
            f"    return parse_http_response(config.get('{i}_{j}'), path)\n" for j in range(4)
        )
        out[f"pkg/mod_{i}.py"] = f'"""Module {i}: configuration loaders."""\n\n\n{funcs}'
    out["pkg/http.py"] = "def parse_http_response(raw, path):\n    return raw.split('\\r\\n')\n"
    out["README.md"] = "# Config\n\nLoads configuration files and parses http responses.\n"
    return out


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def _commit(root: Path, msg: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", msg)


def assert_same_index(a: SearchIndex, b: SearchIndex) -> None:
    assert a.paths == b.paths and a.languages == b.languages
    for name in ("chunk_file", "chunk_start", "chunk_end", "chunk_tokens"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.chunk_symbol == b.chunk_symbol and a.chunk_kind == b.chunk_kind
    assert dict(a.defines) == dict(b.defines) and list(a.file_defines) == list(b.file_defines)
    terms = ["config", "pars", "http", "respons", "handler", "load", "nonexistent"]
    assert np.array_equal(a.bm25.scores(terms), b.bm25.scores(terms))  # bit for bit
    for t in terms:
        assert np.array_equal(a.bm25.docs_with(t), b.bm25.docs_with(t)) and a.bm25.doc_freq(t) == b.bm25.doc_freq(t)


def assert_same_ranking(root: Path) -> None:
    inc = Retriever.open(root)
    full = Retriever.open(root, use_cache=False)
    assert_same_index(inc.index, full.index)
    r1, _ = inc.rank(QUERY)
    r2, _ = full.rank(QUERY)
    assert r1.order == r2.order and np.array_equal(r1.file_scores, r2.file_scores)
    assert inc.query(QUERY, 2000).render() == full.query(QUERY, 2000).render()


def test_incremental_updates_rank_exactly_like_a_full_rebuild(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(index_mod, "MAX_SMALL", 3)  # merge after a few edits, to cover merging too
    root = make_repo(tmp_path / "r", _files())
    _, cold = open_index(root)
    assert cold.rechunked == 14
    merged = 0
    for step in range(5):
        target = root / f"pkg/mod_{step}.py"
        target.write_text(target.read_text() + f"\n\ndef added_in_step_{step}(config):\n    return config\n")
        if step == 1:
            (root / "pkg/mod_9.py").unlink()  # deleted
        if step == 2:
            (root / "pkg/new.py").write_text("def brand_new_loader(path):\n    return path\n")  # untracked
        if step == 3:
            _commit(root, "edits")  # the dirty files become clean: same content, now vouched for by git
        index, stats = open_index(root)
        assert not stats.reused_search and stats.rechunked == (2 if step == 2 else 1), stats
        merged += stats.merged
        assert f"added_in_step_{step}" in index.chunk_symbol
        assert_same_ranking(root)
    assert merged > 0
    later = lambda: time.time() + 3600  # noqa: E731 - files written just now are re-hashed until they are old
    open_index(root, clock=later)
    _, warm = open_index(root, clock=later)
    assert warm.reused_search and warm.rechunked == 0 and warm.hashed == 0


def test_a_big_build_in_worker_processes_equals_a_serial_one(tmp_path: Path, monkeypatch) -> None:
    root = make_repo(tmp_path / "r", _files(30))
    serial, _ = open_index(root, use_cache=False)
    monkeypatch.setattr(index_mod, "POOL_MIN_FILES", 4)
    monkeypatch.setattr(index_mod, "BATCH_FILES", 7)
    pooled, stats = open_index(root)
    assert stats.segments > 1 and stats.rechunked == 32
    assert_same_index(pooled, serial)


def test_a_worktree_on_another_base_reuses_the_checkouts_cache(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", _files())
    base = _git(root, "rev-parse", "HEAD").strip()
    (root / "pkg/mod_3.py").write_text("def only_on_main(config):\n    return config\n")
    _commit(root, "main moves on")
    _, cold = open_index(root)
    assert cold.rechunked == 14
    wt = tmp_path / "wt"
    _git(root, "worktree", "add", "-q", "--detach", str(wt), base)
    index, stats = open_index(wt)
    assert stats.rechunked == 1, stats  # only the file that differs from the checkout
    assert "handler_3_0" in index.chunk_symbol and "only_on_main" not in index.chunk_symbol
    assert_same_ranking(wt)
    assert _git(wt, "status", "--porcelain") == ""  # nothing of the cache in the worktree
    _, again = open_index(root)
    assert again.reused_search and again.rechunked == 0  # the checkout's own index is untouched
    # A removed worktree's view and its segments are collected.
    _git(root, "worktree", "remove", "--force", str(wt))
    (root / "pkg/mod_4.py").write_text("def trigger_a_write():\n    pass\n")
    open_index(root)
    refs = [json.loads(p.read_text())["root"] for p in (cache_dir(root) / "views").glob("*.refs.json")]
    assert refs == [str(root)]


_WORKER = """
import json, sys
from pathlib import Path
from anvil.retrieval.index import open_index
index, stats = open_index(Path(sys.argv[1]))
print(json.dumps({"rechunked": stats.rechunked, "reused": stats.reused_search, "chunks": index.n_chunks}))
"""


def _run_with_home(root: Path, home: Path) -> dict:
    env = {**os.environ, "ANVIL_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(root)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_two_anvil_homes_share_one_cache(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", _files())
    first = _run_with_home(root, tmp_path / "home-a")
    second = _run_with_home(root, tmp_path / "home-b")
    third = _run_with_home(root, tmp_path / "home-a")
    assert first["rechunked"] == 14 and not first["reused"]
    assert second == third == {"rechunked": 0, "reused": True, "chunks": first["chunks"]}


class _Planted:
    """Unpickling this creates a marker file: what a malicious cache would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_cache_is_never_unpickled_nor_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"index": _Planted(marker), "version": 11})
    # A repository that commits an old-style cache (and a key beside it): never read.
    files = {**_files(), ".anvil/cache/retrieval/search.pkl": evil, ".anvil/cache/retrieval/store.pkl": evil,
             ".anvil/cache.key": b"k" * 32}
    root = make_repo(tmp_path / "r", files)
    index, stats = open_index(root)
    assert not marker.exists() and stats.rechunked == 14
    assert not any(p.startswith(".anvil") for p in index.paths)
    # A segment array replaced by a pickled object array: refused (allow_pickle=False), rebuilt.
    seg_dir = next(p for p in (cache_dir(root) / "segments").iterdir())
    np.save(seg_dir / "docs.npy", np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    index, stats = open_index(root)
    assert not marker.exists()
    assert stats.rechunked == 14 and "handler_0_0" in index.chunk_symbol
    assert any("damaged" in w for w in stats.warnings)
    # A view naming files its segment does not have: refused, rebuilt.
    view = next(p for p in (cache_dir(root) / "views").glob("*.json") if not p.name.endswith(".refs.json"))
    obj = json.loads(view.read_text())
    obj["local"] = [10_000] * len(obj["local"])
    view.write_text(json.dumps(obj))
    index, stats = open_index(root)
    assert stats.rechunked == 14 and not marker.exists()
    _, again = open_index(root)
    assert again.reused_search


@pytest.mark.parametrize("content", [b"\x00binary\x00" * 10, b"x = 1\n" * 10])
def test_skipped_content_is_remembered(tmp_path: Path, content: bytes) -> None:
    root = make_repo(tmp_path / "r", {**_files(2), "data.py": content})
    index, _ = open_index(root)
    _, again = open_index(root)
    assert again.reused_search and again.hashed == 0
    assert ("data.py" in index.paths) == (b"\x00" not in content)
