"""BM25 scores, ranking signals, and the token-budget packer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anvil.retrieval.bm25 import Bm25
from anvil.retrieval.pack import Candidate, RankedFile, pack
from anvil.retrieval.retriever import Retriever
from anvil.retrieval.tokens import estimate_tokens, term_counts
from tests.retrieval_helpers import make_repo, sample_repo

DOCS = [
    "the config loader reads a file from disk",
    "session handles cookies and redirects for a session",
    "response parsing of http headers, headers everywhere",
    "config config config file",
]


def test_bm25_matches_bm25s_lucene_scores() -> None:
    bm25s = pytest.importorskip("bm25s")  # a reference implementation, not a runtime dependency
    docs = [[t for t, n in term_counts(d).items() for _ in range(n)] for d in DOCS]
    ours = Bm25.build([term_counts(d) for d in DOCS])
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(docs, show_progress=False)
    for query in (["config", "file"], ["headers"], ["session", "cookies", "nothing"]):
        expected = ref.get_scores(query)
        got = ours.scores(query)
        np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4, atol=1e-6)


def test_bm25_extra_terms_merge_with_document_terms() -> None:
    a = Bm25.build([{"config": 1, "file": 1}, {"session": 2}])
    b = Bm25.build([{"file": 1}, {"session": 2}], extra=[{"config": 1}, {}])
    np.testing.assert_allclose(a.scores(["config", "file", "session"]), b.scores(["config", "file", "session"]))
    assert a.doc_freq("config") == 1 and a.doc_freq("missing") == 0


def _cands(path: str, rank: int, sizes: list[int], score: float = 1.0) -> list[Candidate]:
    return [Candidate(rank, path, i * 10 + 1, i * 10 + 5, f"f{i}", "function", score - i * 0.1, "python", n)
            for i, n in enumerate(sizes)]


def test_packer_respects_budget_and_covers_top_files_first() -> None:
    files = [RankedFile(f"f{i}.py", 1.0 - i * 0.1) for i in range(4)]
    by_file = [_cands(f.path, r, [100, 100, 100], score=1.0 - r * 0.2) for r, f in enumerate(files)]
    text = {}

    def read_text(c: Candidate) -> str:
        return text.setdefault((c.path, c.start_line), "x" * (c.est_tokens * 4))

    for budget in (150, 400, 700, 5000):
        p = pack("req", budget, files, by_file, read_text)
        assert p.tokens_used <= budget
        assert estimate_tokens(p.render()) <= p.tokens_used
        assert p.tokens_used == sum(c.tokens for c in p.chunks) + (estimate_tokens(p.header) if p.header else 0)
    p = pack("req", 520, files, by_file, read_text)
    # Breadth first: each of the top files gets its best chunk before any file gets a second.
    assert p.packed_paths() == ["f0.py", "f1.py", "f2.py", "f3.py"]
    assert all(c.symbol == "f0" for c in p.chunks)
    big = pack("req", 5000, files, by_file, read_text)
    assert len(big.chunks) == 12
    # Rendered in file rank order, by line within a file, each chunk under a path:lines header.
    rendered = big.render()
    assert rendered.index("### f0.py:1-5") < rendered.index("### f0.py:11-15") < rendered.index("### f1.py:1-5")


def test_packer_skips_a_chunk_that_does_not_fit_but_takes_smaller_ones() -> None:
    files = [RankedFile("a.py", 1.0), RankedFile("b.py", 0.9)]
    by_file = [_cands("a.py", 0, [5000]), _cands("b.py", 1, [50])]
    p = pack("req", 400, files, by_file, lambda c: "y" * (c.est_tokens * 4))
    assert p.packed_paths() == ["b.py"] and p.tokens_used <= 400


def test_tiny_budget_gives_an_empty_but_valid_pack() -> None:
    files = [RankedFile("a.py", 1.0)]
    p = pack("req", 5, files, [_cands("a.py", 0, [100])], lambda c: "z" * 400)
    assert p.chunks == [] and p.tokens_used <= 5 and p.render() == ""


def test_retrieve_ranks_the_defining_file_and_names_why(tmp_path: Path) -> None:
    root = sample_repo(tmp_path / "r")
    r = Retriever.open(root)
    pack_ = r.query("Config.from_file() opens the file in text mode; add a binary mode", 2000)
    assert pack_.files[0].path == "config.py"
    assert any("defines from_file" in why for why in pack_.files[0].reasons)
    assert pack_.chunks[0].path == "config.py"
    chosen = {c.symbol: c for c in pack_.chunks if c.path == "config.py"}
    assert "def from_file" in chosen["Config.from_file"].text
    # Tests rank below the source they test, even with the same words in them.
    ranked = [f.path for f in pack_.files]
    assert ranked.index("tests/test_config.py") > ranked.index("config.py")


def test_traceback_path_and_repository_map_lift_files(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {
        "pkg/handler.py": "from pkg.codec import decode_frame\n\ndef handle(req):\n    return decode_frame(req.body)\n",
        "pkg/codec.py": "def decode_frame(data):\n    return data[1:]\n",
        "pkg/other.py": "def unrelated():\n    return 'nothing to see'\n",
    })
    r = Retriever.open(root)
    tb = 'Traceback (most recent call last):\n  File "/usr/lib/site-packages/pkg/codec.py", line 2, in decode_frame\nIndexError'  # noqa: E501
    assert r.query(tb, 1000).files[0].path == "pkg/codec.py"
    # "handle" and "body" only match handler.py; codec.py is what handler's best chunk calls.
    files = r.query("the handle function crashes on an empty request body", 1000).files
    paths = [f.path for f in files]
    assert paths[0] == "pkg/handler.py" and "pkg/codec.py" in paths
    codec = files[paths.index("pkg/codec.py")]
    assert any("use" in why for why in codec.reasons)


def test_first_pass_cuts_a_long_best_chunk_and_depth_pass_restores_it() -> None:
    files = [RankedFile("big.py", 1.0)] + [RankedFile(f"f{i}.py", 0.5) for i in range(3)]
    big_text = "\n".join(f"line {i} of a long function body" for i in range(300))
    by_file = [[Candidate(0, "big.py", 1, 300, "huge", "function", 1.0, "python", estimate_tokens(big_text))]]
    by_file += [_cands(f.path, r + 1, [60], score=0.4) for r, f in enumerate(files[1:])]

    def read_text(c: Candidate) -> str:
        return big_text if c.path == "big.py" else "z" * (c.est_tokens * 4)

    small = pack("req", 1200, files, by_file, read_text)
    assert small.tokens_used <= 1200
    assert small.packed_paths() == ["big.py", "f0.py", "f1.py", "f2.py"]  # the big file did not crowd out the rest
    cut = small.chunks[0]
    assert cut.truncated and cut.end_line < 300 and "more lines)" in cut.text
    roomy = pack("req", 20000, files, by_file, read_text)
    whole = [c for c in roomy.chunks if c.path == "big.py"]
    assert len(whole) == 1 and not whole[0].truncated and whole[0].end_line == 300


def test_public_retrieve_api(tmp_path: Path) -> None:
    from anvil.retrieval import ContextPack, retrieve

    root = sample_repo(tmp_path / "r")
    p = retrieve(root / "tests", "make_app should set debug from the mapping", budget_tokens=1500)
    assert isinstance(p, ContextPack) and p.budget_tokens == 1500 and 0 < p.tokens_used <= 1500
    assert p.files[0].path == "app.py" and p.files[0].score > 0
    text = p.render()
    assert text.startswith("## Files ranked by relevance\n1. app.py")
    assert "### app.py:4-7 (make_app)\n```python\ndef make_app():" in text
    c = p.chunks[0]
    assert (c.path, c.start_line, c.end_line, c.symbol) == ("app.py", 1, 1, "") or c.symbol == "make_app"
    assert all(ch.tokens > 0 and ch.text for ch in p.chunks)


def test_file_list_carries_the_repository_map_when_the_budget_allows(tmp_path: Path) -> None:
    from anvil.retrieval import retrieve

    root = sample_repo(tmp_path / "r")
    big = retrieve(root, "Config.from_file should accept a binary mode", budget_tokens=6000)
    assert big.files[0].symbols == ("Config(from_file, from_mapping)", "parse_http_response")
    assert "1. config.py: Config(from_file, from_mapping), parse_http_response\n" in big.render()
    small = retrieve(root, "Config.from_file should accept a binary mode", budget_tokens=1000)
    assert "1. config.py\n" in small.render()
