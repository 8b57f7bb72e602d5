"""The runner in-process (real adapters over the scripted server, real git, real test command):
a stuck test failure escalating to the last tier then stopping with exit 4, and on_exhaust: skip."""

from __future__ import annotations

import pytest

from anvil.demo.scripted_run import BUILD_BUGGY, ScriptedPipeline, example_answers
from anvil.errors import EXIT_STAGE_EXHAUSTED
from anvil.run.stage_llm import StageExhausted
from tests.e2e_helpers import InProcess, git

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    yield ip.runner, ip.repo
    ip.close()


def test_the_same_failure_twice_is_stuck_escalates_to_the_top_then_stops_with_exit_4(env):
    make, repo = env
    answers = example_answers()
    answers["build"] = [BUILD_BUGGY, "No change needed, it is fine.\n\n" + BUILD_BUGGY.split("\n\n", 1)[1]
                        .split("src/tasklist/cli.py")[0].replace("def search", "def search_again")]
    pipeline = ScriptedPipeline(answers)
    runner = make(pipeline, "stages:\n  build: {retry_budget: 2}\n")
    with pytest.raises(StageExhausted) as exc:
        runner.execute()
    assert exc.value.exit_code == EXIT_STAGE_EXHAUSTED and exc.value.stage == "build"
    st = runner.run.state
    assert st.status == "failed" and st.exit_code == EXIT_STAGE_EXHAUSTED
    assert st.stages["test"].status == "failed" and "retry budget" in st.stages["test"].error
    builds = [m for s, m in pipeline.calls if s == "build"]
    # local, then one tier up (escalate_tier), then stuck (same failing test): straight to premium
    assert builds == ["scripted-local", "scripted-cheap", "scripted-premium"]
    esc = st.escalation["build"]
    assert esc["retries"] == 2 and esc["effort"] == "high" and "stuck" in esc["history"][1]
    assert (runner.run.dir / "test.log").read_text().count("test_search_ignores_case") >= 1
    # the user's tree is untouched, the run's worktree is kept for inspection and resume
    assert git(["status", "--porcelain", "--untracked-files=no"], repo) == ""
    assert (runner.run.dir / "worktree" / "src/tasklist/store.py").read_text().count("def search") >= 1


def test_on_exhaust_skip_lets_a_review_that_keeps_blocking_be_skipped(env):
    make, repo = env
    pipeline = ScriptedPipeline(example_answers(blocking_review=True))
    runner = make(pipeline, "stages:\n  review: {retry_budget: 0, on_exhaust: skip}\n")
    runner.execute()
    st = runner.run.state
    assert st.status == "done"
    assert st.stages["review"].status == "skipped" and "retry budget" in st.stages["review"].error
    assert st.stages["ship"].status == "done"
    assert [s for s, _ in pipeline.calls].count("review") == 1
    assert git(["log", "--format=%s", "-1", st.branch], repo).startswith("feat(cli)")
