"""End to end: a hostile model answer (an edit to ../outside, to .git/config, through a symlink that
leaves the tree) is refused and reported; nothing is written outside; the run goes on."""

from __future__ import annotations

import json

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from tests.e2e_helpers import git, start

pytestmark = pytest.mark.e2e


def test_hostile_edits_are_refused_and_nothing_is_written_outside(tmp_path):
    outside = tmp_path / "outside_dir"
    outside.mkdir()
    pipeline = ScriptedPipeline(example_answers(hostile_build=True))
    e2e = start(tmp_path, pipeline, symlinks={"linked": str(outside)})
    git_config = (e2e.repo / ".git" / "config").read_text()
    try:
        e2e.init()
        out = e2e.run_ok()
    finally:
        e2e.server.stop()
    run_id = out["run_id"]

    # nothing written outside the worktree, into .git, or through the symlink
    assert list(outside.iterdir()) == []
    assert not list(tmp_path.rglob("pwned.txt"))
    assert (e2e.repo / ".git" / "config").read_text() == git_config
    assert "hooksPath" not in git(["config", "--list", "--show-origin"], e2e.repo)

    events = [json.loads(line) for line in (e2e.run_dir(run_id) / "events.jsonl").read_text().splitlines()]
    refused = [e for e in events if e["kind"] == "build.refused"]
    assert sorted(e["path"] for e in refused) == sorted(["../outside/pwned.txt", ".git/config", ".anvil/config.yaml",
                                                         "linked/pwned.txt"])
    state = e2e.state(run_id)
    assert len(state["stages"]["build"]["data"]["refused"]) == 4
    assert "true" not in (e2e.repo / ".anvil" / "config.yaml").read_text().split("test_command:")[1].splitlines()[0]
    assert state["stages"]["test"]["data"]["result"]["command"].startswith("python")  # the real tests judged it
    # the refusal went back to the model, whose next answer was applied
    second_build = [r for r in e2e.server.requests if "anvil stage: build" in r.body.decode()][1]
    assert "REFUSED" in second_build.body.decode()
    files = set(git(["diff", "--name-only", f"main..{out['branch']}"], e2e.repo).split())
    assert files == {"src/tasklist/cli.py", "src/tasklist/store.py", "tests/test_search.py"}
