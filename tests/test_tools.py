"""The model's tools (anvil/tools): reads with caps, edits that refuse, permissions, exec, the bounded loop."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from anvil.config.durations import parse_duration
from anvil.providers.types import ChatResult, Message, ToolCall, Usage
from anvil.tools.base import ToolCaps
from anvil.tools.loop import LoopBounds, ToolLoop, Turn, TurnFailed
from anvil.tools.permissions import stage_permissions
from anvil.tools.registry import TOOL_NAMES, toolbox
from anvil.workspace.workspace import Workspace

BIG = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(3000))  # 9000 lines, ~100K chars


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "big.py").write_text(BIG)
    (root / "pkg" / "small.py").write_text("class Greeter:\n    def hello(self, name):\n        return 'hi ' + name\n")
    (root / "README.md").write_text("# demo\nThe greeter says hello to people by name.\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    return Workspace(root, _git(root, "rev-parse", "HEAD").strip())


def box(ws: Workspace, stage: str = "build", caps: ToolCaps | None = None, test_command: str | None = None):
    return toolbox(stage, ws, stage_permissions(stage, None), caps=caps, test_command=test_command,
                   command_timeout=20)


def test_every_contract_tool_exists_with_its_arguments(ws: Workspace) -> None:
    b = box(ws)
    assert b.names() == list(TOOL_NAMES)
    props = {s.name: set(s.parameters["properties"]) for s in b.specs()}
    assert props == {"read_file": {"path", "start", "end"}, "outline": {"path"},
                     "search": {"query", "regex", "path"}, "list_dir": {"path"}, "edit": {"path", "old", "new"},
                     "write_file": {"path", "content"}, "run_tests": {"selection"}, "run": {"command"}}


def test_read_file_numbers_lines_and_says_how_to_read_on(ws: Workspace) -> None:
    b = box(ws)
    r = b.call("read_file", {"path": "pkg/big.py", "start": 8989, "end": 8991})
    assert r.ok and r.text.splitlines()[0] == "pkg/big.py (lines 8989-8991 of 9000)"
    assert r.text.splitlines()[1:3] == ["8989| def f2996(x):", "8990|     return x + 2996"]
    whole = b.call("read_file", {"path": "pkg/big.py"})
    assert whole.cut == "lines 401-9000 not shown"
    assert len(whole.text.splitlines()) == 402
    assert whole.text.splitlines()[-1].startswith('[cut: lines 401-9000 not shown; read_file {"path": "pkg/big.py", '
                                                  '"start": 401} reads on]')
    small = box(ws, caps=ToolCaps(max_chars=200)).call("read_file", {"path": "pkg/big.py", "start": 1, "end": 50})
    assert small.cut and len(small.text) < 400 and '"start": ' in small.text


def test_read_file_refuses_what_is_outside_or_missing(ws: Workspace) -> None:
    b = box(ws)
    assert not b.call("read_file", {"path": "../etc/passwd"}).ok
    assert "no such file" in b.call("read_file", {"path": "nope.py"}).text
    assert not b.call("read_file", {"path": ".git/config"}).ok


def test_outline_search_and_list_dir(ws: Workspace) -> None:
    b = box(ws)
    out = b.call("outline", {"path": "pkg/small.py"}).text
    assert "Greeter.hello" in out and "2-3methodGreeter.hello" in out.replace(" ", "")
    hits = b.call("search", {"query": "def f2999("}).text
    assert "pkg/big.py:8998: def f2999(x):" in hits
    assert "pkg/small.py:1:" in b.call("search", {"query": r"class \w+:", "regex": True}).text
    assert "no match" in b.call("search", {"query": "zzz_nothing"}).text
    words = b.call("search", {"query": "greeter says hello people"}).text
    assert "best matching regions by words" in words and "README.md" in words
    assert b.call("list_dir", {}).text.splitlines()[1:] == ["README.md", "pkg/"]
    assert b.call("list_dir", {"path": "pkg"}).text.splitlines()[1:] == ["pkg/big.py", "pkg/small.py"] or \
        b.call("list_dir", {"path": "pkg"}).text.splitlines()[1:] == ["big.py", "small.py"]


def test_edit_is_exact_or_refused_with_the_closest_lines(ws: Workspace) -> None:
    b = box(ws)
    ok = b.call("edit", {"path": "pkg/big.py", "old": "def f2999(x):\n    return x + 2999\n",
                         "new": "def f2999(x):\n    return x - 2999\n"})
    assert ok.ok and ok.changed == ("pkg/big.py",) and "line 8998" in ok.text
    near = b.call("edit", {"path": "pkg/small.py", "old": "    def hello(self, name):\n        return 'hi '+name",
                           "new": "x"})
    assert not near.ok and "REFUSED" in near.text and "return 'hi ' + name" in near.text
    assert (ws.root / "pkg/small.py").read_text().endswith("return 'hi ' + name\n")
    twice = b.call("edit", {"path": "pkg/big.py", "old": "(x):", "new": "(y):"})
    assert not twice.ok and "occurs 3000 times" in twice.text
    part = b.call("edit", {"path": "pkg/big.py", "old": "return x + 17\n", "new": "return x + 18\n"})
    assert part.ok and "    return x + 18\n" in (ws.root / "pkg/big.py").read_text()
    ws_only = b.call("edit", {"path": "pkg/small.py", "old": "def hello(self, name):\n    return 'hi ' + name",
                              "new": "def hello(self, name):\n    return 'hello ' + name"})
    assert ws_only.ok and "ignoring whitespace" in ws_only.text
    assert "        return 'hello ' + name" in (ws.root / "pkg/small.py").read_text()
    assert not b.call("write_file", {"path": "pkg/small.py", "content": "x"}).ok
    assert b.call("write_file", {"path": "pkg/new.py", "content": "A = 1"}).ok
    assert (ws.root / "pkg/new.py").read_text() == "A = 1\n"
    assert not b.call("write_file", {"path": "../evil.py", "content": "x"}).ok
    b.restore()
    assert not (ws.root / "pkg/new.py").exists() and (ws.root / "pkg/big.py").read_text() == BIG


@pytest.mark.parametrize("stage,tool,args", [
    ("plan", "edit", {"path": "pkg/small.py", "old": "a", "new": "b"}),
    ("review", "run", {"command": "echo hi"}),
    ("clarify", "write_file", {"path": "x.py", "content": "x"}),
    ("validate", "edit", {"path": "pkg/small.py", "old": "a", "new": "b"}),
    ("ship", "read_file", {"path": "README.md"}),
])
def test_a_stage_is_told_no_outside_its_permissions(ws: Workspace, stage: str, tool: str, args: dict) -> None:
    b = box(ws, stage)
    r = b.call(tool, args)
    assert not r.ok and f"the {stage} stage may not use {tool}" in r.text
    assert b.calls[-1].refused
    assert tool not in b.names()
    assert not (ws.root / "x.py").exists()


def test_bad_arguments_are_answered_not_raised(ws: Workspace) -> None:
    b = box(ws)
    assert "missing argument(s) path" in b.call("read_file", {}).text
    assert "unknown argument(s) file" in b.call("read_file", {"path": "a", "file": "b"}).text
    assert "start must be an integer" in b.call("read_file", {"path": "README.md", "start": "x"}).text
    assert "there is no tool 'bash'" in b.call("bash", {"cmd": "ls"}).text


def test_exec_tools_run_confined_with_a_timeout(ws: Workspace) -> None:
    b = box(ws, test_command="python -c 'import sys; print(sys.argv[1:]); sys.exit(0)'")
    r = b.call("run", {"command": "pwd && echo hello"})
    assert r.ok and str(ws.root.resolve()) in r.text and "hello" in r.text
    bad = b.call("run", {"command": "exit 3"})
    assert not bad.ok and "exit 3" in bad.text
    t = b.call("run_tests", {"selection": "tests/test_a.py::test_b"})
    assert t.ok and "tests/test_a.py::test_b" in t.text
    assert not box(ws).call("run_tests", {}).ok


def test_durations() -> None:
    assert [parse_duration(v) for v in (30, "30", "30s", "5m", "1h", "1.5m", 2.5)] == [30, 30, 30, 300, 3600, 90, 2.5]
    for bad in (True, float("inf"), "forever", "-3", 0, "5d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ------------------------------------------------------------------ the loop

def _result(text: str = "", calls: tuple[ToolCall, ...] = ()) -> ChatResult:
    return ChatResult(text, "tool_calls" if calls else "stop", Usage(10, 5), "m", tool_calls=calls)


class Script:
    """A scripted `take_turn`: answers in order, recording what it was asked and pinned to."""

    def __init__(self, answers: list, fail_pinned: set[str] | None = None) -> None:
        self.answers, self.fail_pinned = list(answers), fail_pinned or set()
        self.asked: list[tuple[str | None, frozenset[str], int]] = []

    def __call__(self, messages, tools, *, pin, exclude, timeout):
        self.asked.append((pin, exclude, len(messages)))
        if pin in self.fail_pinned:
            raise TurnFailed(pin, RuntimeError("overloaded"))
        model = pin or next(m for m in ("model-a", "model-b") if m not in exclude)
        return Turn(self.answers.pop(0), model)


def _read(i: int) -> ToolCall:
    return ToolCall(f"c{i}", "read_file", {"path": "README.md"})


def test_loop_reads_then_answers_pinned_to_its_model(ws: Workspace) -> None:
    script = Script([_result(calls=(_read(1),)), _result("done")])
    out = ToolLoop(box(ws), script, LoopBounds()).run([Message("user", "go")])
    assert out.stop == "answered" and out.text == "done" and out.turns == 2 and out.tool_calls == 1
    assert [a[0] for a in script.asked] == [None, "model-a"]
    assert out.messages[2].role == "tool" and "The greeter" in out.messages[2].content


def test_loop_bounds_turns_and_tool_calls(ws: Workspace) -> None:
    many = [_result(calls=(_read(i),)) for i in range(10)]
    out = ToolLoop(box(ws), Script(many), LoopBounds(max_turns=3)).run([Message("user", "go")])
    assert out.stop == "max_turns" and out.turns == 3 and "max_turns" in out.reason
    calls = [_result(calls=(_read(1), _read(2), _read(3)))] * 3
    out = ToolLoop(box(ws), Script(calls), LoopBounds(max_tool_calls=2)).run([Message("user", "go")])
    assert out.stop == "max_tool_calls" and out.tool_calls == 2
    assert "has made them all" in out.messages[-1].content


def test_loop_stops_at_the_deadline(ws: Workspace) -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1
        return now[0]

    out = ToolLoop(box(ws), Script([_result(calls=(_read(i),)) for i in range(10)]),
                   LoopBounds(deadline=4.0), clock=clock).run([Message("user", "go")])
    assert out.stop == "timeout"


def test_a_mid_loop_failure_restarts_on_the_next_model_with_the_tree_put_back(ws: Workspace) -> None:
    edit = ToolCall("e1", "write_file", {"path": "new.py", "content": "X = 1"})
    script = Script([_result(calls=(edit,)), _result("answer from b")], fail_pinned={"model-a"})
    b = box(ws)
    out = ToolLoop(b, script, LoopBounds(), restore=b.restore).run([Message("user", "go")])
    assert out.restarts == ["model-a"] and out.model == "model-b" and out.text == "answer from b"
    # the second model starts from the attempt's first message, model-a excluded
    assert script.asked[-1] == (None, frozenset({"model-a"}), 1)
    assert not (ws.root / "new.py").exists()


# ------------------------------------------------------------------ views

def test_a_big_file_to_change_is_outline_plus_windows_around_what_the_plan_names(ws: Workspace) -> None:
    from anvil.tools.views import Target, files_view

    vs = files_view(ws, [Target("pkg/big.py", symbols=("f2999",), lines=("10-12",)), Target("pkg/small.py"),
                         Target("README.md", change=False)])
    big = vs.views[0]
    assert not big.whole and big.total_lines == 9000
    assert any(s <= 8998 <= e for s, e in big.shown) and any(s <= 10 <= e for s, e in big.shown)
    assert "8998| def f2999(x):" in vs.text and "Outline (lines, kind, symbol)" in vs.text
    assert vs.views[1].whole and "pkg/small.py\n```\nclass Greeter:" in vs.text
    assert "Not shown in this message:" in vs.text and "- pkg/big.py: lines 1, 23-" not in vs.text
    assert "pkg/big.py: lines " in vs.text and "read_file" in vs.text
    assert vs.stats()["whole"] == ["pkg/small.py", "README.md"]


def test_a_view_names_what_it_could_not_find_and_never_drops_a_file(ws: Workspace) -> None:
    from anvil.tools.views import Target, files_view

    vs = files_view(ws, [Target("pkg/big.py", symbols=("nothing_here",)), Target("gone.py"),
                         Target("README.md", change=False)], total_chars=5_000, tools=False)
    assert "not found in the file: nothing_here" in vs.text
    assert "gone.py: gone.py: no such file" in vs.text
    assert "1-" in vs.stats()["windows"]["pkg/big.py"]  # the head of the file instead
    assert "quote only lines shown above" in vs.text
