"""The generic signals a bug report carries: request cleaning, mentions, priors."""

from __future__ import annotations

from anvil.retrieval.mentions import PathMatcher, find_mentions
from anvil.retrieval.query import clean, query_terms, split_fenced
from anvil.retrieval.ranking import RankWeights, path_prior

PATHS = [
    "src/pkg/__init__.py", "src/pkg/config.py", "src/pkg/cli.py", "src/pkg/util/text.py",
    "tests/test_config.py", "docs/config.rst", "tox.ini", "other/config.py",
    "pkg2/packages/__init__.py", "pkg2/packages/urllib3/response.py", "packages/web/src/app.ts",
]


def test_template_noise_is_dropped_and_fences_discounted() -> None:
    report = (
        "Config loader fails\n<!-- Thanks for submitting an issue! Checklist below -->\n"
        "- [x] searched existing issues\n"
        "```\nPackage    Version\n---------- -------\nattrs      19.1.0\nboto3      1.9.51\n```\n"
        "The loader breaks.\n"
    )
    text = clean(report)
    assert "Thanks" not in text and "searched" not in text and "boto3" not in text
    terms = query_terms(report)
    assert "loader" in terms and "submitt" not in terms and "thank" not in terms
    long_log = "```\n" + "\n".join(f"log line {i} tracer" for i in range(30)) + "\n```\n"
    short = "```py\nConfig.load_json('x')\n```\n"
    prose, fenced = split_fenced("intro\n" + long_log + short, keep_short=12)
    assert "tracer" in fenced and "load_json" in prose  # a short reproducer stays with the prose
    weights = query_terms("the tracer\n" + long_log, keep_short=12)
    only_fenced = query_terms("intro\n" + long_log, keep_short=12)
    assert only_fenced["tracer"] < weights["tracer"]


def test_command_line_flags_are_whole_terms() -> None:
    terms = query_terms("please add a short form of --collect-only")
    assert "--collect-only" in terms and "collect" in terms


def test_paths_tracebacks_modules_and_identifiers_map_to_files() -> None:
    matcher = PathMatcher(PATHS)
    defined = {"load_config": [1], "Config": [1, 7], "echo": [2]}
    req = (
        'Traceback (most recent call last):\n  File "/venv/lib/python3.11/site-packages/pkg/cli.py", line 3, in main\n'
        "see src/pkg/util/text.py and `pkg.config` -- load_config() breaks for Config objects; tox.ini attached"
    )
    m = find_mentions(req, matcher, defined)
    cli, text_py, config, tox = PATHS.index("src/pkg/cli.py"), PATHS.index("src/pkg/util/text.py"), 1, 6
    assert m.paths[cli] == 1.0 and cli in m.traceback_files
    assert m.paths[text_py] == 1.0
    assert 0 < m.paths[tox] < 1.0  # a bare file name: the reporter's own tox.ini, perhaps
    assert m.modules[config] == 1.0  # `pkg.config` -> src/pkg/config.py, not other/config.py
    assert m.identifiers["load_config"] == 1.0 and 0 < m.identifiers["Config"] < 1.0
    assert "echo" not in m.identifiers  # not named
    # A name shared by many files is weak; one seen only in a long pasted log is discounted.
    log = "```\n" + "\n".join(f"step {i}" for i in range(20)) + "\nload_config failed\n```"
    assert find_mentions("it fails\n" + log, matcher, defined).identifiers["load_config"] < 1.0


def test_path_priors_are_generic() -> None:
    w = RankWeights()
    paths = frozenset(PATHS)
    assert path_prior("src/pkg/config.py", w, paths) == 1.0
    assert path_prior("tests/test_config.py", w, paths) == w.test_prior
    assert path_prior("src/foo_test.go", w, paths) == w.test_prior
    assert path_prior("web/app.spec.ts", w, paths) == w.test_prior
    assert path_prior("docs/config.rst", w, paths) == w.doc_prior
    assert path_prior("tox.ini", w, paths) == w.config_prior
    assert path_prior("pkg2/packages/urllib3/response.py", w, paths) == w.vendored_prior
    assert path_prior("packages/web/src/app.ts", w, paths) == 1.0  # a JS monorepo, not a bundle


def test_the_deepest_in_repo_frame_of_each_traceback_is_marked() -> None:
    matcher = PathMatcher(PATHS)
    req = (
        "Traceback (most recent call last):\n"
        '  File "/app/run.py", line 1, in <module>\n'
        '  File "/venv/site-packages/pkg/cli.py", line 3, in main\n'
        '  File "/venv/site-packages/pkg/config.py", line 9, in load\n'
        '  File "/usr/lib/python3.11/json/__init__.py", line 2, in loads\n'
        "ValueError: bad\n\nand with pytest:\n"
        "src/pkg/cli.py:12: in main\n    load()\nsrc/pkg/util/text.py:40: ValueError\n"
    )
    m = find_mentions(req, matcher, {})
    cli, config, text_py = PATHS.index("src/pkg/cli.py"), 1, PATHS.index("src/pkg/util/text.py")
    assert {cli, config, text_py} <= m.traceback_files
    # json/__init__.py is not in the repo; pkg/config.py is the last frame that is.
    # The pytest-style frames follow the first traceback's header, so they extend it.
    assert m.deepest_frames == {text_py}
    first_only = find_mentions(req.split("and with pytest")[0], matcher, {})
    assert first_only.deepest_frames == {config}


def test_a_same_named_file_in_other_folders_is_weak_evidence() -> None:
    matcher = PathMatcher(PATHS)
    m = find_mentions('File "/Users/me/code/otherproj/otherproj/cli.py", line 3, in run', matcher, {})
    cli = PATHS.index("src/pkg/cli.py")
    assert 0 < m.paths[cli] < 0.5 and cli not in m.traceback_files


def test_quoted_code_is_found_verbatim(tmp_path) -> None:
    from anvil.retrieval.mentions import quoted_code
    from anvil.retrieval.retriever import Retriever
    from tests.retrieval_helpers import make_repo

    assert quoted_code("see `return s.replace(\".[\", \"[\")` and `foo` and `value  =  compute(x)`") == [
        'return s.replace(".[", "[")', "value = compute(x)"]
    body = "def f{i}(s):\n    s = s.strip()\n    return s.lower()\n"
    files = {f"pkg/m{i}.py": body.format(i=i) for i in range(6)}
    files["pkg/names.py"] = "def getmodpath(s):\n    s = s.strip()\n    return s.replace('.[', '[')\n"
    root = make_repo(tmp_path / "r", files)
    pack = Retriever.open(root).query("the headline is wrong: `return s.replace('.[', '[')` drops a dot", 2000)
    assert pack.files[0].path == "pkg/names.py"
    assert "contains code quoted in the request" in pack.files[0].reasons


def test_plain_bm25s_best_source_file_keeps_a_seat_in_the_top_five(tmp_path) -> None:
    """Six files named in the request outrank everything; the file whose text matches the request best
    by plain chunk BM25 is still kept in the top five (the floor), and without the rule it is not."""
    from anvil.retrieval.retriever import Retriever
    from tests.retrieval_helpers import make_repo

    files = {f"pkg/named{i}.py": f"def helper{i}():\n    return {i}\n" for i in range(6)}
    files["pkg/matcher.py"] = ("def fuzzy_title_match(needle, haystack):\n"
                               "    # fuzzy title match ignoring accents and case folding\n"
                               "    return needle.casefold() in haystack.casefold()\n")
    root = make_repo(tmp_path / "r", files)
    request = ("fuzzy title match ignores accents when case folding titles; see "
               + ", ".join(f"pkg/named{i}.py" for i in range(6)))

    def top5(weights: RankWeights) -> list[str]:
        r = Retriever.open(root, use_cache=False, weights=weights)
        ranking, _ = r.rank(request)
        return [r.index.paths[i] for i in ranking.order[:5]]

    without = top5(RankWeights(bm25_seat=0, path_mention=5.0))
    assert "pkg/matcher.py" not in without
    assert "pkg/matcher.py" in top5(RankWeights(path_mention=5.0))
