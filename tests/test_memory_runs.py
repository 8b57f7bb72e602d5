"""Memory across runs (in-process runner, scripted server, real git and SQLite): a finished run remembers
its passing test command and accepted review files; the next run's prompts start with the live facts; a
fact whose anchored function changed on main is stale and left out."""

from __future__ import annotations

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from anvil.memory.store import BLOCK_TITLE, MemoryStore
from tests.e2e_helpers import InProcess, git

pytestmark = pytest.mark.e2e


def test_runs_remember_inject_and_drop_drifted_facts(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    try:
        first = ip.runner(ScriptedPipeline(example_answers()))
        first.execute()
        assert first.run.state.status == "done"
        assert not any(BLOCK_TITLE in b for b in ip.requests("clarify"))  # nothing known yet
        store = MemoryStore.for_repo(ip.repo)
        kinds = {f.kind: f for f in store.facts()}
        assert "pytest" in kinds["test_command"].text and kinds["test_command"].source_run == first.run.id
        assert kinds["review_file"].anchors[0].file == "src/tasklist/cli.py"
        query = store.add("TaskStore.query filters done tasks first", "user", root=ip.repo,
                          anchors=[("src/tasklist/store.py", "TaskStore.query")])
        store.close()

        n, p = len(ip.requests("review")), len(ip.requests("plan"))
        second = ip.runner(ScriptedPipeline(example_answers()))
        second.execute()
        bodies = ip.requests("review")[n:] + ip.requests("plan")[p:]
        assert bodies and all(BLOCK_TITLE in b for b in bodies)
        assert "TaskStore.query filters done tasks first" in bodies[0] and "pytest" in bodies[0]

        # the anchored method changes on main: the next run marks the fact stale and does not show it
        path = ip.repo / "src/tasklist/store.py"
        path.write_text(path.read_text().replace("return sorted(found, key=sort_key)",
                                                  "return sorted(found, key=sort_key)  # by due date", 1))
        git(["commit", "-qam", "touch query"], ip.repo)
        n = len(ip.requests("review"))
        third = ip.runner(ScriptedPipeline(example_answers()))
        third.execute()
        review = ip.requests("review")[n:]
        assert review and BLOCK_TITLE in review[0] and "pytest" in review[0]
        assert "TaskStore.query filters done tasks first" not in review[0]
        store = MemoryStore.for_repo(ip.repo)
        assert store.get(query.id).status == "stale"
        store.close()
    finally:
        ip.close()
