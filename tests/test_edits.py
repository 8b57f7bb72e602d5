"""Search/replace edit blocks: parsing, matching levels, failure feedback, atomic writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from anvil.workspace.edits import EditBlock, apply_edits, parse_edit_blocks

CODE = '''\
import sys


def greet(name):
    """Say hello."""
    if name:
        print(f"hello {name}")
    else:
        print("hello")


def main(argv=None):
    args = argv or sys.argv[1:]
    greet(args[0] if args else None)
    return 0
'''


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "hello.py").write_text(CODE)
    return tmp_path


def test_parse_fenced_blocks_with_path_lines() -> None:
    text = '''Here is the change.

pkg/hello.py
```python
<<<<<<< SEARCH
def greet(name):
=======
def greet(name, loud=False):
>>>>>>> REPLACE
```

And a second one in the same file:

```python
<<<<<<< SEARCH
    return 0
=======
    return 1
>>>>>>> REPLACE
```

**`pkg/new_mod.py`**
```
<<<<<<< SEARCH
=======
VALUE = 3
>>>>>>> REPLACE
```
'''
    blocks = parse_edit_blocks(text)
    assert [(b.path, b.index) for b in blocks] == [("pkg/hello.py", 1), ("pkg/hello.py", 2), ("pkg/new_mod.py", 3)]
    assert blocks[0].search == "def greet(name):" and blocks[0].replace == "def greet(name, loud=False):"
    assert blocks[2].creates_file and blocks[2].replace == "VALUE = 3"
    assert all(b.error is None for b in blocks)


def test_parse_path_variants() -> None:
    for header in ("File: src/x.py", "### src/x.py", "`src/x.py`:", "Update src/x.py as follows:"):
        text = f"{header}\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
        assert parse_edit_blocks(text)[0].path == "src/x.py", header
    fenced = "```python src/x.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```"
    assert parse_edit_blocks(fenced)[0].path == "src/x.py"


def test_parse_malformed_blocks_are_reported() -> None:
    blocks = parse_edit_blocks("x.py\n<<<<<<< SEARCH\na\nb\n")
    assert blocks[0].error and "divider" in blocks[0].error
    blocks = parse_edit_blocks("x.py\n<<<<<<< SEARCH\na\n=======\nb\n")
    assert "REPLACE" in blocks[0].error
    blocks = parse_edit_blocks("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
    assert "path" in blocks[0].error
    assert parse_edit_blocks("no blocks here") == []


def test_exact_match(tree: Path) -> None:
    r = apply_edits(tree, [EditBlock("pkg/hello.py", "    return 0", "    return 7", 1)])
    assert r.ok and r.applied[0].how == "exact" and r.changed_files == ["pkg/hello.py"]
    assert "    return 7\n" in (tree / "pkg/hello.py").read_text()


def test_whitespace_tolerant_reindents_replacement(tree: Path) -> None:
    # the model dropped the indentation and left trailing spaces
    search = 'if name:   \n    print(f"hello {name}")\nelse:\n    print("hello")\n'
    replace = 'if name:\n    print(f"hi {name}")\nelse:\n    print("hi")'
    r = apply_edits(tree, [EditBlock("pkg/hello.py", search, replace, 1)])
    assert r.ok, r.feedback()
    assert r.applied[0].how == "whitespace"
    text = (tree / "pkg/hello.py").read_text()
    assert '    if name:\n        print(f"hi {name}")\n    else:\n        print("hi")\n' in text


def test_fuzzy_near_miss_is_refused_with_the_closest_lines(tree: Path) -> None:
    before = (tree / "pkg/hello.py").read_text()
    search = 'def main(argv=None):\n    args = argv or sys.argv[1:]\n    greet(args[0] if args else None)\n    return 0'
    search = search.replace("greet(args[0]", "greet( args[0]")  # a small slip
    r = apply_edits(tree, [EditBlock("pkg/hello.py", search, "def main(argv=None):\n    return 5", 1)])
    assert not r.ok and not r.applied
    f = r.failed[0]
    assert f.near_miss and f.outcome == "refused" and 0.85 <= f.similarity < 1
    assert "greet(args[0] if args else None)" in f.closest
    assert "nothing was written" in r.feedback() and "REFUSED" in r.feedback()
    assert r.outcomes() == [{"block": 1, "path": "pkg/hello.py", "outcome": "refused",
                             "similarity": round(f.similarity, 3), "closest_line": f.closest_start,
                             "reason": f.reason[:300]}]
    assert (tree / "pkg/hello.py").read_text() == before


def test_failed_block_reports_closest_lines_and_keeps_others(tree: Path) -> None:
    before = (tree / "pkg/hello.py").read_text()
    blocks = [
        EditBlock("pkg/hello.py", "import sys", "import os\nimport sys", 1),
        EditBlock("pkg/hello.py", 'def greet(person, shout):\n    """Greet loudly."""', "x", 2),
    ]
    r = apply_edits(tree, blocks, threshold=0.95)
    assert [a.block.index for a in r.applied] == [1]
    assert len(r.failed) == 1
    f = r.failed[0]
    assert "def greet(name):" in f.closest and 0.4 < f.similarity < 0.95
    assert f.closest_start == 5  # after block 1 added a line, greet is on line 5
    fb = r.feedback()
    assert "Block 2" in fb and "def greet(name):" in fb and "similar" in fb and "1 of 2" in fb
    after = (tree / "pkg/hello.py").read_text()
    assert after == "import os\n" + before  # block 1 applied and kept


def test_threshold_is_a_parameter(tree: Path) -> None:
    search = "def main(argv=None):\n    args = argv or sys.argv[2:]\n    greet(args[1] if args else 'x')"
    assert not apply_edits(tree, [EditBlock("pkg/hello.py", search, "pass", 1)], threshold=0.99).failed[0].near_miss
    assert apply_edits(tree, [EditBlock("pkg/hello.py", search, "pass", 1)], threshold=0.8).failed[0].near_miss


def test_ambiguous_search_fails(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\ny = 2\nx = 1\n")
    r = apply_edits(tmp_path, [EditBlock("a.py", "x = 1", "x = 3", 1)])
    assert not r.ok and "2 places" in r.failed[0].reason
    assert (tmp_path / "a.py").read_text() == "x = 1\ny = 2\nx = 1\n"


def test_create_new_file_and_refuse_clobber(tree: Path) -> None:
    r = apply_edits(tree, [EditBlock("pkg/sub/new.py", "", "A = 1\n", 1),
                           EditBlock("pkg/sub/new.py", "A = 1", "A = 2", 2),
                           EditBlock("pkg/hello.py", "", "oops", 3),
                           EditBlock("pkg/missing.py", "x", "y", 4)])
    assert [a.how for a in r.applied] == ["create", "exact"]
    assert (tree / "pkg/sub/new.py").read_text() == "A = 2\n"
    assert [f.block.index for f in r.failed] == [3, 4]
    assert "already exists" in r.failed[0].reason and "does not exist" in r.failed[1].reason
    assert (tree / "pkg/hello.py").read_text() == CODE


def test_crlf_and_mode_preserved(tmp_path: Path) -> None:
    p = tmp_path / "run.sh"
    p.write_bytes(b"#!/bin/sh\r\necho one\r\n")
    os.chmod(p, 0o755)
    r = apply_edits(tmp_path, [EditBlock("run.sh", "echo one", "echo two", 1)])
    assert r.ok
    assert p.read_bytes() == b"#!/bin/sh\r\necho two\r\n"
    assert os.stat(p).st_mode & 0o777 == 0o755


def test_no_change_is_not_a_changed_file(tree: Path) -> None:
    r = apply_edits(tree, [EditBlock("pkg/hello.py", "import sys", "import sys", 1)])
    assert r.ok and r.changed_files == []


def test_non_utf8_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "b.bin").write_bytes(b"\xff\xfe\x00")
    r = apply_edits(tmp_path, [EditBlock("b.bin", "a", "b", 1)])
    assert "UTF-8" in r.failed[0].reason


def test_parse_then_apply_end_to_end(tree: Path) -> None:
    answer = ("pkg/hello.py\n```python\n<<<<<<< SEARCH\nimport sys\n=======\n"
              "import json\nimport sys\n>>>>>>> REPLACE\n```\n")
    r = apply_edits(tree, parse_edit_blocks(answer))
    assert r.ok and (tree / "pkg/hello.py").read_text().startswith("import json\nimport sys\n")


def test_fuzzy_search_on_a_big_file_is_fast(tmp_path: Path) -> None:
    lines = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(1500)]
    (tmp_path / "big.py").write_text("".join(lines))
    t = time.perf_counter()
    r = apply_edits(tmp_path, [EditBlock("big.py", "def f1200(y):\n    return y * 1200 + 3\n", "pass", 1)])
    assert time.perf_counter() - t < 5
    assert not r.ok and r.failed[0].near_miss and r.failed[0].closest_start == 2401


def test_whitespace_match_with_over_indented_search(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def a():\n    return 1\n\n\ndef b():\n    return 2\n")
    # the model indented everything by two extra spaces; its replacement is flush left
    r = apply_edits(tmp_path, [EditBlock("m.py", "  def b():  \n      return 2", "def b():\n    return 3", 1)])
    assert r.ok and r.applied[0].how == "whitespace"
    assert (tmp_path / "m.py").read_text() == "def a():\n    return 1\n\n\ndef b():\n    return 3\n"


def test_missing_path_suggests_the_file_with_that_name(tree: Path) -> None:
    r = apply_edits(tree, [EditBlock("hello.py", "import sys", "import os", 1)])
    assert "hello.py does not exist (did you mean pkg/hello.py?)" in r.failed[0].reason
    assert "did you mean pkg/hello.py" in r.feedback()


def test_fuzzy_match_that_fits_two_places_is_refused(tmp_path: Path) -> None:
    text = "def a():\n    total = x + 1\n    return total\n\n\ndef b():\n    total = x + 2\n    return total\n"
    (tmp_path / "m.py").write_text(text)
    r = apply_edits(tmp_path, [EditBlock("m.py", "    total = x + 3\n    return total", "    return 0", 1)],
                    threshold=0.8)
    assert not r.ok and "equally" in r.failed[0].reason and r.failed[0].near_miss
    assert (tmp_path / "m.py").read_text() == text


def test_parse_crlf_tilde_fences_and_long_markers() -> None:
    text = ("notes/todo.md\r\n~~~markdown\r\n<<<<<<<<< SEARCH\r\n- old\r\n=========\r\n- new\r\n"
            ">>>>>>>>> REPLACE\r\n~~~\r\n")
    (b,) = parse_edit_blocks(text)
    assert (b.path, b.search, b.replace, b.error) == ("notes/todo.md", "- old", "- new", None)


def test_replace_may_delete_lines(tree: Path) -> None:
    r = apply_edits(tree, [EditBlock("pkg/hello.py", "import sys\n\n\n", "", 1)])
    assert r.ok and (tree / "pkg/hello.py").read_text().startswith("def greet(name):")
