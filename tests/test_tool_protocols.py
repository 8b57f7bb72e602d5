"""The tool loop over the real adapters in all four protocols, the scripted server scripting tool-call turns:
the model reads a file with a tool, sees the result on its next turn (Gemini's thought signature sent back),
and a read-only stage's edit is refused; each turn is one exchange."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from anvil.demo.scripted_run import tool_results
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedModel, ScriptedToolCall
from anvil.providers.scripted.server import Match
from anvil.providers.types import ChatRequest, Message, ToolSpec
from anvil.tools.loop import LoopBounds, ToolLoop, Turn
from anvil.tools.permissions import stage_permissions
from anvil.tools.registry import toolbox
from anvil.workspace.workspace import Workspace
from tests.providers_helpers import provider

PROTOCOLS = [("anthropic", "", "claude-x"), ("openai", "/v1", "gpt-x"), ("gemini", "", "gemini-2.5-flash"),
             ("ollama", "", "qwen3:8b")]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "notes.txt").write_text("alpha\nthe secret word is sesame\nomega\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"], cwd=tmp_path,
                   check=True)
    return Workspace(tmp_path, "HEAD")


@pytest.mark.parametrize("kind,path,model", PROTOCOLS)
def test_a_tool_loop_in_every_protocol(srv, ws: Workspace, kind: str, path: str, model: str) -> None:
    first = ScriptedAnswer(tool_calls=(ScriptedToolCall("read_file", {"path": "notes.txt", "start": 2, "end": 2}),
                                       ScriptedToolCall("edit", {"path": "notes.txt", "old": "alpha", "new": "x"})))

    def answer(req):  # the first turn calls tools; the next says what their results were
        results = tool_results(req)
        if not results:
            return first
        return f"read {len(results)} result(s): " + " | ".join(r.replace("\n", " ")[:200] for r in results)

    scripted = ScriptedModel(answer)
    srv.add_responder(scripted, match=Match(model=model) if kind != "gemini" else None)
    adapter = provider(kind, srv, path, key=None) if kind == "ollama" else provider(kind, srv, path)
    box = toolbox("review", ws, stage_permissions("review", None))
    turns = []

    def take_turn(messages, tools: tuple[ToolSpec, ...], *, pin, exclude, timeout) -> Turn:
        turns.append(pin)
        result = adapter.chat(ChatRequest(model=model, messages=tuple(messages), tools=tools))
        return Turn(result, "m")

    out = ToolLoop(box, take_turn, LoopBounds()).run([Message("system", "You review.", cache=True),
                                                     Message("user", "What is the secret word?")])
    assert out.stop == "answered" and out.turns == 2 and turns == [None, "m"]
    assert "the secret word is sesame" in out.text and "refused: the review stage may not use edit" in out.text
    assert len(scripted.requests) == 2
    body = scripted.requests[1].body.decode()
    if kind == "gemini":
        assert "c2NyaXB0ZWQtdGhvdWdodC1zaWduYXR1cmU=" in body  # the thought signature went back unchanged
    offered = scripted.requests[0].body.decode()
    assert "read_file" in offered and '"edit"' not in offered  # a read-only stage is offered read tools only
    assert (ws.root / "notes.txt").read_text().startswith("alpha\n")
