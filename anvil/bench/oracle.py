"""The oracle model: it knows the gold patch, and may only quote what anvil showed it.

It measures the pipeline's own ceiling: with a model that knows the answer, how many tasks
can anvil land? Each stage gets a sensible structured answer (a spec, a plan naming the gold
files, a clean review, a commit message). Build is where honesty matters: every SEARCH text
(one-shot) or `old` text (the `edit` tool) must be found verbatim in what the request showed
(prompts and tool results, `wire.shown_text`). A hunk whose lines were not shown is read
with `read_file` when the request offers that tool; otherwise the oracle says which region
it could not see and leaves it out. It never reads the repository itself.

Stateless: each answer is derived from the request alone (its own earlier tool calls are read
back from the conversation), so a retried or resumed stage gets a consistent answer.
`notes` collects what the oracle could not do, for the bench's result row.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from anvil.bench.patches import FilePatch, Hunk, parse_patch
from anvil.bench.wire import last_user_text, offered_tools, past_calls, shown_text
from anvil.demo.scripted_run import stage_of
from anvil.providers.scripted.model import ScriptedAnswer, ScriptedToolCall
from anvil.providers.scripted.reply import RecordedRequest

READ_MARGIN = 6  # lines read around a hunk the oracle was not shown
MAX_CONTEXT_GROWTH = 12  # lines added above a SEARCH text that is not unique in the shown file
_CRITERIA = re.compile(r"(?m)^- (.+)$")


@dataclass(frozen=True)
class Edit:
    path: str
    old: str  # '' creates the file
    new: str


@dataclass
class Gold:
    """What the oracle is given: the fix, and the tests that check it (names only)."""

    patch: str
    summary: str  # a line for the spec and the commit message
    tests: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[FilePatch]:
        return parse_patch(self.patch)


def _views(shown: str, path: str) -> list[str]:
    """The fenced views of `path` in the prompt (`path` then a ``` block), newest last."""
    pat = re.compile(rf"(?m)^{re.escape(path)}\n```[^\n]*\n(.*?)\n```")
    return [m.group(1) + "\n" for m in pat.finditer(shown)]


def _unique_search(old: str, view: str | None) -> str:
    """`old`, grown upwards from the shown view until it occurs once there (when a view exists)."""
    if view is None or view.count(old) <= 1:
        return old
    lines = view.splitlines(keepends=True)
    at = view.find(old)
    first = view[:at].count("\n")
    for grow in range(1, MAX_CONTEXT_GROWTH + 1):
        if first - grow < 0:
            break
        candidate = "".join(lines[first - grow:first]) + old
        if view.count(candidate) == 1:
            return candidate
    return old


class Oracle:
    """A responder's brain: `answer(request) -> ScriptedAnswer` (see the module docstring)."""

    def __init__(self, gold: Gold) -> None:
        self.gold = gold
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self.tool_calls = 0
        self.turns = 0

    def note(self, text: str) -> None:
        with self._lock:
            if text not in self.notes:
                self.notes.append(text)

    # ------------------------------------------------------------ stages

    def answer(self, req: RecordedRequest) -> ScriptedAnswer:
        with self._lock:
            self.turns += 1
        stage = stage_of(req) or ""
        handler = getattr(self, f"_{stage}", None)
        got = handler(req) if handler is not None else ScriptedAnswer(text="NONE")
        with self._lock:
            self.tool_calls += len(got.tool_calls)
        return got

    def _changed_files(self) -> list[FilePatch]:
        return [f for f in self.gold.files if f.path]

    def _clarify(self, req: RecordedRequest) -> ScriptedAnswer:
        spec = {"goal": self.gold.summary,
                "acceptance_criteria": ["The behaviour the request describes is fixed",
                                        "Existing behaviour is otherwise unchanged"],
                "assumptions": [], "open_questions": []}
        return ScriptedAnswer(text=json.dumps(spec))

    def _plan(self, req: RecordedRequest) -> ScriptedAnswer:
        files = self._changed_files()
        plan = {"files_to_read": [],
                "files_to_change": [{"path": f.path, "reason": "the fix changes it", "new": f.created}
                                    for f in files],
                "steps": [{"description": f"Change {f.path} as the fix needs", "files": [f.path]} for f in files],
                "tests_to_add": self.gold.tests[:10] or ["the existing tests cover the change"],
                "risks": ["none beyond the change itself"], "rollback": "revert the commit"}
        return ScriptedAnswer(text=json.dumps(plan))

    def _test(self, req: RecordedRequest) -> ScriptedAnswer:
        return ScriptedAnswer(text="NONE: the task's own tests check this change.")

    def _validate(self, req: RecordedRequest) -> ScriptedAnswer:
        text = shown_text(req)
        part = text.split("## Acceptance criteria", 1)[-1].split("\n## ", 1)[0]
        criteria = [{"criterion": c.strip(), "met": True, "evidence": "the diff makes the planned change"}
                    for c in _CRITERIA.findall(part)]
        return ScriptedAnswer(text=json.dumps({"criteria": criteria}))

    def _review(self, req: RecordedRequest) -> ScriptedAnswer:
        return ScriptedAnswer(text=json.dumps({"summary": "The change does what the plan says.", "findings": []}))

    def _ship(self, req: RecordedRequest) -> ScriptedAnswer:
        subject = "fix: " + " ".join(self.gold.summary.split())
        subject = subject if len(subject) <= 68 else subject[:65].rstrip() + "..."
        return ScriptedAnswer(text=json.dumps({"subject": subject, "body": "The change the request asks for."}))

    # ------------------------------------------------------------ build

    def _build(self, req: RecordedRequest) -> ScriptedAnswer:
        shown, latest = shown_text(req), last_user_text(req)
        tools = offered_tools(req)
        done = {(c.arguments.get("path"), c.arguments.get("old", c.arguments.get("content")))
                for c in past_calls(req) if c.name in ("edit", "write_file")}
        reads = {(c.arguments.get("path"), c.arguments.get("start"), c.arguments.get("end"))
                 for c in past_calls(req) if c.name == "read_file"}
        edits: list[Edit] = []
        unseen: list[tuple[str, Hunk]] = []
        for fp in self.gold.files:
            if fp.deleted:
                self.note(f"{fp.old_path}: the fix deletes this file; edit blocks cannot")
                continue
            views = _views(shown, fp.path)
            for hunk in fp.hunks:
                edit = self._edit_for(fp, hunk, shown, latest, views[-1] if views else None)
                if edit is None:
                    continue
                if isinstance(edit, Edit):
                    edits.append(edit)
                else:
                    unseen.append((fp.path, hunk))
        if tools and "read_file" in tools:
            for path, hunk in unseen:
                start = max(1, hunk.old_start - READ_MARGIN)
                end = hunk.old_start + hunk.old_len + READ_MARGIN
                if (path, start, end) not in reads:
                    return ScriptedAnswer(tool_calls=(ScriptedToolCall("read_file",
                                                                       {"path": path, "start": start, "end": end}),))
        for path, hunk in unseen:
            self.note(f"{path}:{hunk.old_start}-{hunk.old_start + max(hunk.old_len - 1, 0)} was never shown: "
                      "the oracle cannot quote it")
        if tools and "edit" in tools:
            calls = []
            for e in edits:
                if (e.path, e.old or e.new) in done:
                    continue
                if not e.old and "write_file" in tools:
                    calls.append(ScriptedToolCall("write_file", {"path": e.path, "content": e.new}))
                else:
                    calls.append(ScriptedToolCall("edit", {"path": e.path, "old": e.old, "new": e.new}))
            if calls:
                return ScriptedAnswer(tool_calls=tuple(calls))
            return ScriptedAnswer(text=self._summary(edits, unseen))
        blocks = "\n".join(f"{e.path}\n```\n<<<<<<< SEARCH\n{e.old}=======\n{e.new}>>>>>>> REPLACE\n```\n"
                           for e in edits)
        return ScriptedAnswer(text=self._summary(edits, unseen) + ("\n\n" + blocks if blocks else ""))

    def _edit_for(self, fp: FilePatch, hunk: Hunk, shown: str, latest: str, view: str | None) -> Edit | str | None:
        """The edit for one hunk; "unseen" when its lines were not shown; None when nothing is left to do."""
        old, new = hunk.old_text, hunk.new_text
        if fp.created:
            if view is not None and new in view:
                return None  # created on an earlier attempt
            return Edit(fp.path, "", new)
        if not old.strip():
            self.note(f"{fp.path}:{hunk.old_start}: a hunk without context lines cannot be anchored")
            return None
        if view is not None:  # the prompt shows the file (as it is now: the newest view)
            if old in view:
                return Edit(fp.path, _unique_search(old, view), new)
            if new.strip() and new in view:
                return None  # applied on an earlier attempt
        if old in shown:  # a tool result, or a view in another shape
            return Edit(fp.path, old, new)
        if new.strip() and new in latest:
            return None
        return "unseen"

    @staticmethod
    def _summary(edits: list[Edit], unseen: list[tuple[str, Hunk]]) -> str:
        if unseen and not edits:
            where = ", ".join(f"{p} near line {h.old_start}" for p, h in unseen)
            return f"I cannot make this change: the lines it needs were not shown to me ({where})."
        line = f"{len(edits)} edit(s) for the fix."
        if unseen:
            line += " Not shown, so left out: " + ", ".join(f"{p} near line {h.old_start}" for p, h in unseen)
        return line
