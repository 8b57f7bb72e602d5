"""A scripted pipeline: every stage's answers for one request on the bundled example repo.

Used by the end-to-end tests, the pipeline benchmark and `anvil demo`. Each
stage's system prompt starts with `anvil stage: NAME`; `ScriptedPipeline` is a
responder for the scripted vendor server that reads that marker and serves the
stage's next answer, rendered in whichever wire protocol the request came on
(the adapters are real; only the model is scripted):

    with ScriptedServer() as srv:
        pipeline = ScriptedPipeline(example_answers(failing_first_build=True))
        srv.add_responder(pipeline)
        (anvil_home / "models.yaml").write_text(scripted_models_yaml(srv.url))
        # env: ANVIL_SCRIPTED_KEY=anything

An answer may be a text, a `ScriptedAnswer` (a turn with tool calls, in any
of the four protocols) or a function of the request returning either.
`failures` serve scripted errors to the first requests of a model (a rate
limit mid-run); `delays` hold the first answer of a stage (to kill a run
during a call). `pipeline.calls` lists (stage, model) in order.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from anvil.providers.scripted.model import ScriptedAnswer, ScriptedFailure, render_for
from anvil.providers.scripted.reply import RecordedRequest, Reply

EXAMPLE = "python-cli"
REQUEST = "add a search command that lists tasks whose title contains a word, ignoring case"
KEY_ENV = "ANVIL_SCRIPTED_KEY"
_MARKER = re.compile(r"anvil stage: (\w+)")


def system_text(req: RecordedRequest) -> str:
    """The system prompt of a request in any of the four protocols."""
    body = req.json if isinstance(req.json, dict) else {}

    def text_of(content: Any) -> str:
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(text_of(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
        return ""

    if "system" in body:  # Anthropic
        return text_of(body["system"])
    if "systemInstruction" in body:  # Gemini
        return text_of((body["systemInstruction"] or {}).get("parts", []))
    for m in body.get("messages", []):  # OpenAI / Ollama
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            return text_of(m.get("content"))
    return ""


def tool_results(req: RecordedRequest) -> list[str]:
    """The tool results sent back in a request, in order, in any of the four protocols."""
    body = req.json if isinstance(req.json, dict) else {}
    out: list[str] = []
    for m in body.get("messages", []):
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":  # OpenAI / Ollama
            out.append(str(m.get("content") or ""))
        elif isinstance(m.get("content"), list):  # Anthropic
            for block in m["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    c = block.get("content")
                    out.append(c if isinstance(c, str) else "".join(
                        p.get("text", "") for p in c or [] if isinstance(p, dict)))
    for c in body.get("contents", []):  # Gemini
        for part in c.get("parts", []) if isinstance(c, dict) else []:
            fr = part.get("functionResponse") if isinstance(part, dict) else None
            if isinstance(fr, dict):
                resp = fr.get("response") or {}
                out.append(str(resp.get("content", resp)) if isinstance(resp, dict) else str(resp))
    return out


def offered_tools(req: RecordedRequest) -> list[str]:
    """The names of the tools a request offers, in any of the four protocols."""
    body = req.json if isinstance(req.json, dict) else {}
    names = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if "functionDeclarations" in t:
            names += [d.get("name", "") for d in t["functionDeclarations"]]
        elif "function" in t:
            names.append(t["function"].get("name", ""))
        else:
            names.append(t.get("name", ""))
    return names


def stage_of(req: RecordedRequest) -> str | None:
    m = _MARKER.search(system_text(req)[:200])
    return m.group(1) if m else None


@dataclass
class ScriptedPipeline:
    """A server responder (see the module docstring). `answers[stage]`: served in turn, the last repeats."""

    # per stage, served in turn: a text, a ScriptedAnswer (tool calls), or a function of the request
    answers: dict[str, list[Any]]
    failures: dict[str, list[ScriptedFailure]] = field(default_factory=dict)  # by wire model name
    delays: dict[str, float] = field(default_factory=dict)  # seconds before a stage's first answer
    slow: dict[str, float] = field(default_factory=dict)  # seconds before every answer of a stage
    hold_turn: dict[str, int] = field(default_factory=dict)  # which answer `delays` holds (default the first)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _turns: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, stage: str) -> int:
        return sum(1 for s, _ in self.calls if s == stage)

    def __call__(self, req: RecordedRequest) -> Reply:
        stage = stage_of(req) or "unknown"
        model = req.model or ""
        with self._lock:
            self.calls.append((stage, model))
            pending = self.failures.get(model) or []
            if pending:
                failure = pending.pop(0)
                return render_for(req, failure)
            turn = self._turns.get(stage, 0)
            self._turns[stage] = turn + 1
            options = self.answers.get(stage)
        if not options:
            return Reply.json({"error": {"message": f"scripted pipeline: no answer for stage {stage!r}",
                                         "type": "invalid_request_error"}}, status=400)
        chosen = options[min(turn, len(options) - 1)]
        if callable(chosen):  # a turn that depends on the request (a tool loop reading its results)
            chosen = chosen(req)
        reply = render_for(req, chosen if isinstance(chosen, ScriptedAnswer) else ScriptedAnswer(text=str(chosen)))
        delay = (self.delays.get(stage) if turn == self.hold_turn.get(stage, 0) else None) or self.slow.get(stage)
        return replace(reply, delay=delay) if delay else reply


def scripted_models_yaml(url: str, *, key_env: str = KEY_ENV) -> str:
    """A models.yaml whose providers are the scripted server (Anthropic and OpenAI protocols), one model per tier."""
    caps = "[reasoning, code, tools, structured, long_context]"
    return f"""# Scripted models for tests and the demo: every call goes to {url}
providers:
  scripted-anthropic: {{kind: anthropic, base_url: "{url}", api_key_env: {key_env}}}
  scripted-openai: {{kind: openai, base_url: "{url}/v1", api_key_env: {key_env}}}
models:
  - {{id: scripted-local, provider: scripted-openai, tier: local, capabilities: {caps}, complexity_max: L,
     context_window: 128000, price: {{free: true}}}}
  - {{id: scripted-cheap, provider: scripted-openai, tier: cheap, capabilities: {caps}, complexity_max: L,
     context_window: 128000, price: {{input: 0.5, output: 2}}}}
  - {{id: scripted-premium, provider: scripted-anthropic, tier: premium, capabilities: {caps}, complexity_max: L,
     context_window: 200000, price: {{input: 3, output: 15}}}}
  - {{id: scripted-premium-b, provider: scripted-openai, tier: premium, capabilities: {caps}, complexity_max: L,
     context_window: 200000, price: {{input: 5, output: 20}}}}
"""


# ------------------------------------------------------------------ the answers

CRITERIA = [
    "A `search` subcommand lists the tasks whose title contains a word, ignoring case (`casefold`)",
    'When nothing matches, it prints "no match"',
    "Finished tasks are included only with `--all`, like `list`",
    "The existing commands behave as before",
]

SPEC = {"goal": "Let users find tasks by a word in their title with a new `tasks search WORD` command.",
        "acceptance_criteria": CRITERIA,
        "assumptions": ["Matching is on the title only, not on tags"],
        "open_questions": ["Should tags be searched too?"]}

PLAN = {
    "files_to_read": ["src/tasklist/model.py"],
    "files_to_change": [
        {"path": "src/tasklist/store.py", "reason": "TaskStore.search does the matching", "new": False},
        {"path": "src/tasklist/cli.py", "reason": "the search subcommand", "new": False},
        {"path": "tests/test_search.py", "reason": "tests for the acceptance criteria", "new": True},
    ],
    "steps": [
        {"description": "Add TaskStore.search(word, include_done) matching titles with casefold",
         "files": ["src/tasklist/store.py"]},
        {"description": "Add a `search WORD [-a]` subcommand that prints the matches or 'no match'",
         "files": ["src/tasklist/cli.py"]},
        {"description": "Test the command through main()", "files": ["tests/test_search.py"]},
    ],
    "tests_to_add": ["tests/test_search.py::test_search_ignores_case", "tests/test_search.py::test_search_no_match"],
    "risks": ["a subcommand name clash (none today)"],
    "rollback": "revert the commit; no data format changes",
}


def _block(path: str, search: str, replace_: str) -> str:
    return f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace_}>>>>>>> REPLACE\n```\n"


def _store_edit(match: str) -> str:
    return _block("src/tasklist/store.py",
                  "    def query(self, *, include_done: bool = False, tag: str | None = None) -> list[Task]:\n",
                  "    def search(self, word: str, *, include_done: bool = False) -> list[Task]:\n"
                  '        """Tasks whose title contains `word`, ignoring case."""\n'
                  f"{match}"
                  "    def query(self, *, include_done: bool = False, tag: str | None = None) -> list[Task]:\n")


GOOD_MATCH = ("        needle = word.casefold()\n"
              "        return [t for t in self.query(include_done=include_done) if needle in t.title.casefold()]\n\n")
BUGGY_MATCH = ("        needle = word\n"
               "        return [t for t in self.query(include_done=include_done) if needle in t.title]\n\n")

CLI_EDITS = _block(
    "src/tasklist/cli.py",
    '    sub.add_parser("clear", help="delete every finished task")\n    return parser\n',
    '    sub.add_parser("clear", help="delete every finished task")\n\n'
    '    search = sub.add_parser("search", help="list tasks whose title contains a word")\n'
    '    search.add_argument("word")\n'
    '    search.add_argument("-a", "--all", action="store_true", help="include finished tasks")\n'
    "    return parser\n") + "\n" + _block(
    "src/tasklist/cli.py",
    'COMMANDS = {"add": cmd_add, "list": cmd_list, "done": cmd_done, "remove": cmd_remove, "clear": cmd_clear}\n',
    "def cmd_search(store: TaskStore, args: argparse.Namespace) -> int:\n"
    "    tasks = store.search(args.word, include_done=args.all)\n"
    "    if not tasks:\n"
    '        print("no match")\n'
    "        return 0\n"
    "    for task in tasks:\n"
    "        print(format_task(task))\n"
    "    return 0\n\n\n"
    'COMMANDS = {"add": cmd_add, "list": cmd_list, "done": cmd_done, "remove": cmd_remove, "clear": cmd_clear,\n'
    '            "search": cmd_search}\n')

BUILD_GOOD = "Adding TaskStore.search and the search subcommand.\n\n" + _store_edit(GOOD_MATCH) + "\n" + CLI_EDITS
BUILD_BUGGY = "Adding TaskStore.search and the search subcommand.\n\n" + _store_edit(BUGGY_MATCH) + "\n" + CLI_EDITS
BUILD_FIX_CASE = "The match must ignore case.\n\n" + _block("src/tasklist/store.py", BUGGY_MATCH, GOOD_MATCH)
BUILD_FIX_REVIEW = \
    "Print how many tasks matched, like list does.\n\n" + _block(
        "src/tasklist/cli.py",
        "    tasks = store.search(args.word, include_done=args.all)\n    if not tasks:\n        print(\"no match\")\n"
        "        return 0\n    for task in tasks:\n        print(format_task(task))\n    return 0\n",
        "    tasks = store.search(args.word, include_done=args.all)\n    if not tasks:\n        print(\"no match\")\n"
        "        return 0\n    for task in tasks:\n        print(format_task(task))\n"
        '    print(f"{len(tasks)} match(es)")\n    return 0\n')


def build_hostile(outside_rel: str = "../outside/pwned.txt", symlink_rel: str = "linked/pwned.txt") -> str:
    """Edits a hostile (or confused) model might send: out of the repo, into .git/, into anvil's own
    settings (the test command that judges the work), through a symlink."""
    return ("Setting things up.\n\n"
            + _block(outside_rel, "", "owned\n") + "\n"
            + _block(".git/config", "", "[core]\n\thooksPath = /tmp/evil\n") + "\n"
            + _block(".anvil/config.yaml", "", 'test_command: "true"\n') + "\n"
            + _block(symlink_rel, "", "owned through a symlink\n"))


TESTS = _block("tests/test_search.py", "", '''from tasklist.cli import main


def run(tmp_path, capsys, *argv):
    code = main(["--file", str(tmp_path / "tasks.json"), *argv])
    return code, capsys.readouterr().out


def test_search_ignores_case(tmp_path, capsys):
    run(tmp_path, capsys, "add", "Buy Milk")
    run(tmp_path, capsys, "add", "fix bike")
    code, out = run(tmp_path, capsys, "search", "milk")
    assert code == 0
    assert "Buy Milk" in out and "fix bike" not in out


def test_search_no_match(tmp_path, capsys):
    run(tmp_path, capsys, "add", "fix bike")
    assert run(tmp_path, capsys, "search", "milk") == (0, "no match\\n")


def test_search_all_includes_done(tmp_path, capsys):
    run(tmp_path, capsys, "add", "milk")
    run(tmp_path, capsys, "done", "1")
    assert run(tmp_path, capsys, "search", "milk")[1] == "no match\\n"
    assert "milk" in run(tmp_path, capsys, "search", "milk", "--all")[1]
''')

VALIDATE = {"criteria": [
    {"criterion": CRITERIA[0], "met": True, "evidence": "test_search_ignores_case passed: 'milk' finds 'Buy Milk'"},
    {"criterion": CRITERIA[1], "met": True, "evidence": "test_search_no_match passed: output is 'no match'"},
    {"criterion": CRITERIA[2], "met": True, "evidence": "test_search_all_includes_done passed"},
    {"criterion": CRITERIA[3], "met": True,
     "evidence": "the existing tests passed; only new lines are added to cli.py and store.py"}]}

REVIEW_OK = {"summary": "A small, tested change that does what the spec asks.", "findings": [
    {"severity": "nit", "file": "src/tasklist/cli.py", "line": 78, "evidence": 'print("no match")',
     "message": "an empty result could go to stderr; fine as is, list does the same"},
    {"severity": "major", "file": "src/tasklist/store.py", "line": 80, "evidence": "def search_all(self):",
     "message": "search_all duplicates query (this line is not in the diff: the finding is dropped)"}]}
REVIEW_BLOCKING = {"summary": "search prints no count line, unlike list.", "findings": [
    {"severity": "blocking", "file": "src/tasklist/cli.py", "line": 80,
     "evidence": "for task in tasks:\n        print(format_task(task))",
     "message": "search must end with a count line like list does: print how many tasks matched"}]}

SHIP = {"subject": "feat(cli): add a search command that ignores case",
        "body": "tasks search WORD lists the tasks whose title contains WORD, ignoring case;\n"
                "--all includes finished tasks. TaskStore.search does the matching."}


def example_answers(*, failing_first_build: bool = False, blocking_review: bool = False,
                    hostile_build: bool = False) -> dict[str, list[str]]:
    """The answers of every stage for REQUEST on examples/python-cli (see the module docstring)."""
    build = [BUILD_GOOD]
    if failing_first_build:
        build = [BUILD_BUGGY, BUILD_FIX_CASE]
    if hostile_build:
        build = [build_hostile(), *build]
    if blocking_review:
        build = [*build, BUILD_FIX_REVIEW]
    review = [json.dumps(REVIEW_BLOCKING), json.dumps(REVIEW_OK)] if blocking_review else [json.dumps(REVIEW_OK)]
    return {
        "clarify": [json.dumps(SPEC)],
        "plan": [json.dumps(PLAN)],
        "build": build,
        "test": [TESTS],
        "validate": [json.dumps(VALIDATE)],
        "review": review,
        "ship": [json.dumps(SHIP)],
    }
