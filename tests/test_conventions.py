"""Conventions' parts on their own: rule keys, checks over a diff's added lines (regex with a timeout,
tree-sitter query), acceptance against the cases and their fixes, and the store's propose/promote."""

from __future__ import annotations

from anvil.memory.checks import Check, accept, added_lines, violations
from anvil.memory.conventions import SeenFinding
from anvil.memory.rulekey import code_kind, rule_key
from anvil.memory.store import MemoryStore

DIFF = """diff --git a/src/m.py b/src/m.py
--- a/src/m.py
+++ b/src/m.py
@@ -1,3 +1,5 @@
 def f(x):
+    assert x, "x"
+    print(x)
     return x
diff --git a/tests/test_m.py b/tests/test_m.py
--- /dev/null
+++ b/tests/test_m.py
@@ -0,0 +1,2 @@
+def test_f():
+    assert f(1) == 1
"""


def test_rule_keys_name_the_rule_and_the_kind_of_code():
    a = rule_key("src/a.py", '+    assert word, "w"', "m", "no-assert-for-validation")
    b = rule_key("src/b.py", "assert y", "other words", "avoid-assert-validation")
    assert a == b == "python/assert/assert-valid"
    assert rule_key("a.py", "except:", "Bare except: swallows Ctrl-C") == "python/exception/bare-except"
    assert rule_key("a.ts", "console.log(x)", "Leftover debug logging.").startswith("typescript/print/")
    assert code_kind("x = call(1)") == "assign" and code_kind("import os") == "import"


def test_added_lines_carry_file_and_new_line_number():
    lines = added_lines(DIFF)
    assert [(c.file, c.line) for c in lines] == [("src/m.py", 2), ("src/m.py", 3), ("tests/test_m.py", 1),
                                                ("tests/test_m.py", 2)]


def test_a_regex_flags_added_source_lines_not_tests_unless_told():
    check = Check("regex", r"^\s*assert\b", "python")
    assert [(v.file, v.line) for v in violations(check, added_lines(DIFF))] == [("src/m.py", 2)]
    with_tests = Check("regex", r"^\s*assert\b", "python", in_tests=True)
    assert len(violations(with_tests, added_lines(DIFF))) == 2


def test_a_catastrophic_regex_is_refused_not_hung():
    check = Check("regex", r"^(a|aa)+$", "text")
    why = accept(check, ["a" * 1500 + "!"], [])
    assert "catastrophic backtracking" in why


def test_a_tree_sitter_query_flags_captures_on_added_lines(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/m.py").write_text('def f(x):\n    assert x, "x"\n    print(x)\n    return x\n')
    check = Check("query", "(assert_statement) @bad", "python")
    assert [(v.file, v.line) for v in violations(check, added_lines(DIFF), tmp_path)] == [("src/m.py", 2)]
    assert accept(Check("query", "(not_a_node) @x", "python"), ["assert x"], []).startswith("the tree-sitter")


def test_accept_needs_every_case_flagged_and_no_fix():
    check = Check("regex", r"^\s*assert\b", "python")
    assert accept(check, ["assert x"], ["if not x:\n    raise ValueError"]) == ""
    assert "fixed version" in accept(Check("regex", "x", "python"), ["assert x"], ["if not x:"])
    assert "does not flag" in accept(Check("regex", "print", "python"), ["assert x"], [])


def test_a_key_seen_in_two_runs_is_proposed_and_a_refused_check_changes_nothing(tmp_path):
    store = MemoryStore(tmp_path / "m.db", secrets=["sk-secret-123"])
    conv = store.conventions
    seen = SeenFinding("python/assert/assert-valid", "run1", "src/a.py", 3, "major",
                       "no assert (key sk-secret-123)", "assert x", "if not x:\n    raise ValueError")
    assert conv.record([seen]) == []
    [proposed] = conv.record([SeenFinding(**{**seen.__dict__, "run_id": "run2"})])
    assert proposed.status == "proposed" and proposed.runs == 2 and "sk-secret-123" not in proposed.message
    assert conv.promote(proposed.key, Check("regex", "x", "python"), "user").startswith("it flags")
    assert conv.get(proposed.id).status == "proposed"
    assert conv.promote(proposed.key, Check("regex", r"^\s*assert\b", "python"), "user") == ""
    [enforced] = conv.enforced()
    assert enforced.check().pattern == r"^\s*assert\b" and not enforced.in_tests
    assert conv.disable(enforced.key) and conv.enforced() == []
    assert conv.enable(enforced.key) == "promoted"
    store.close()
