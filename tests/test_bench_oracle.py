"""The oracle quotes only what it was shown; the noisy model spoils answers reproducibly."""

from __future__ import annotations

import json

from anvil.bench.noisy import NoisyOracle
from anvil.bench.oracle import Gold, Oracle
from anvil.bench.wire import offered_tools, past_calls, shown_text
from anvil.providers.scripted.reply import RecordedRequest
from anvil.workspace.edits import apply_edits, parse_edit_blocks

LINES = [f"def f{i}(x):\n    return x + {i}\n\n" for i in range(400)]
FILE = "".join(LINES)  # ~9,000 characters
GOLD = """diff --git a/pkg/mod.py b/pkg/mod.py
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1195,3 +1195,3 @@
 def f398(x):
-    return x + 398
+    return x - 398
 
"""
TOOLS_OPENAI = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("read_file", "edit")]


def openai_request(stage: str, user: str, *, tools: list | None = None, extra: list | None = None) -> RecordedRequest:
    body: dict = {"model": "m", "messages": [{"role": "system", "content": f"anvil stage: {stage}\nrules"},
                                              {"role": "user", "content": user}, *(extra or [])]}
    if tools:
        body["tools"] = tools
    raw = json.dumps(body).encode()
    return RecordedRequest("POST", "/v1/chat/completions", {}, {"authorization": "Bearer k"}, raw, body)


def view(text: str) -> str:
    return f"## Current files\n\npkg/mod.py\n```\n{text}\n```\n"


def oracle() -> Oracle:
    return Oracle(Gold(GOLD, "subtract in f398"))


def test_a_shown_region_becomes_an_exact_edit_block(tmp_path):
    got = oracle().answer(openai_request("build", view(FILE)))
    blocks = parse_edit_blocks(got.text)
    assert len(blocks) == 1 and blocks[0].search.startswith("def f398(x):\n    return x + 398\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(FILE)
    report = apply_edits(tmp_path, blocks)
    assert report.ok and [a.how for a in report.applied] == ["exact"]
    assert "return x - 398" in (tmp_path / "pkg" / "mod.py").read_text()


def test_a_region_never_shown_is_not_quoted_one_shot():
    """The prompt cuts the file before line 1195: the oracle knows the fix, yet must not write it."""
    o = oracle()
    cut = FILE[:6000] + "\n... [truncated: 3000 more characters]"
    got = o.answer(openai_request("build", view(cut)))
    assert parse_edit_blocks(got.text) == [] and "return x + 398" not in got.text
    assert "not shown" in got.text and any("pkg/mod.py:1195" in n for n in o.notes)


def test_its_own_earlier_words_are_not_evidence():
    """Text in an assistant turn is the model's, not anvil's: quoting it proves nothing."""
    own = {"role": "assistant", "content": FILE}
    req = openai_request("build", view(FILE[:6000]), extra=[own, {"role": "user", "content": "try again"}])
    assert "return x + 398" not in shown_text(req)
    assert parse_edit_blocks(oracle().answer(req).text) == []


def test_with_tools_it_reads_the_region_then_edits_from_the_tool_result():
    cut = view(FILE[:6000])
    first = oracle().answer(openai_request("build", cut, tools=TOOLS_OPENAI))
    assert [c.name for c in first.tool_calls] == ["read_file"]
    args = first.tool_calls[0].arguments
    assert args["path"] == "pkg/mod.py" and args["start"] <= 1195 <= args["end"]
    numbered = "\n".join(f"{n:>6}| {line}" for n, line in enumerate(FILE.splitlines(), 1)
                         if args["start"] <= n <= args["end"])
    history = [{"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": json.dumps(args)}}]},
               {"role": "tool", "tool_call_id": "c1", "content": numbered}]
    req = openai_request("build", cut, tools=TOOLS_OPENAI, extra=history)
    assert offered_tools(req) == {"read_file", "edit"} and past_calls(req)[0].name == "read_file"
    second = oracle().answer(req)
    assert [c.name for c in second.tool_calls] == ["edit"]
    assert second.tool_calls[0].arguments["old"] == "def f398(x):\n    return x + 398\n\n"


def test_with_tools_a_region_it_could_not_read_ends_honestly():
    """It read the lines and the tool returned something else: it stops instead of guessing."""
    cut = view(FILE[:6000])
    args = {"path": "pkg/mod.py", "start": 1189, "end": 1204}
    history = [{"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": json.dumps(args)}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "error: pkg/mod.py is not readable"}]
    o = oracle()
    got = o.answer(openai_request("build", cut, tools=TOOLS_OPENAI, extra=history))
    assert got.tool_calls == () and "cannot make this change" in got.text and o.notes


def test_anthropic_tool_use_turns_are_read_back():
    body = {"model": "m", "system": "anvil stage: build", "tools": [{"name": "read_file"}, {"name": "edit"}],
            "messages": [{"role": "user", "content": "x"},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "read_file",
                                                            "input": {"path": "a.py", "start": 1, "end": 3}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                       "content": "     1| import os"}]}]}
    req = RecordedRequest("POST", "/v1/messages", {}, {"x-api-key": "k"}, json.dumps(body).encode(), body)
    assert offered_tools(req) == {"read_file", "edit"}
    assert past_calls(req)[0].arguments["path"] == "a.py"
    assert "import os" in shown_text(req).splitlines()


def test_structured_stages_answer_valid_json():
    from anvil.stages.schemas import CommitText, CriteriaVerdict, Plan, Review, Spec, parse_answer

    o = oracle()
    spec = parse_answer(o.answer(openai_request("clarify", "fix it")).text, Spec)
    plan = parse_answer(o.answer(openai_request("plan", "fix it")).text, Plan)
    assert plan.planned_paths() == ["pkg/mod.py"] and spec.acceptance_criteria
    verdict = parse_answer(o.answer(openai_request("validate", "## Acceptance criteria\n\n- it works\n- no harm\n\n"
                                                               "## Diff\n\nx")).text, CriteriaVerdict)
    assert [c.criterion for c in verdict.criteria] == ["it works", "no harm"] and all(c.met for c in verdict.criteria)
    assert parse_answer(o.answer(openai_request("review", "diff")).text, Review).findings == []
    assert parse_answer(o.answer(openai_request("ship", "diff")).text, CommitText).subject.startswith("fix: ")
    assert o.answer(openai_request("test", "diff")).text.startswith("NONE")


def test_noisy_injects_reproducibly_at_its_rate():
    def run(seed: int) -> list[str]:
        n = NoisyOracle(oracle(), rate=0.5, seed=seed)
        for stage in ("clarify", "plan", "build", "review", "ship", "build", "plan", "clarify"):
            n.answer(openai_request(stage, view(FILE)))
        return n.injected

    assert run(7) == run(7)
    always = NoisyOracle(oracle(), rate=1.0, seed=1)
    kinds = set()
    for _ in range(12):
        got = always.answer(openai_request("build", view(FILE)))
        kinds.add(always.injected[-1].split(":")[1])
        if always.injected[-1].endswith("near_miss_search"):
            assert "def f398(x):\n    return x + 398\n" not in got.text  # one character is off
    assert kinds <= {"near_miss_search", "unplanned_file", "rate_limit"} and len(kinds) >= 2
    never = NoisyOracle(oracle(), rate=0.0, seed=1)
    never.answer(openai_request("plan", "x"))
    assert never.injected == []
