"""The test stage's evidence that the plan's test files ran: the passing run's junit report is enough;
only when the runner's report names no files is the command run again on the planned files."""

from __future__ import annotations

import sys

import pytest

from anvil.demo.scripted_run import ScriptedPipeline, example_answers
from tests.e2e_helpers import InProcess, git

pytestmark = pytest.mark.e2e

# A test command that logs each invocation, then runs pytest; `--no-junit` keeps anvil's
# PYTEST_ADDOPTS (--junitxml) from it, so its only report is pytest's -q output, which names no files.
RUNNER = """\
import os, sys
import pytest
args = sys.argv[1:]
with open({calls!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
if "--no-junit" in args:
    args.remove("--no-junit")
    os.environ.pop("PYTEST_ADDOPTS", None)
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *args]))
"""


def run_with(tmp_path, monkeypatch, flags: str):
    ip = InProcess(tmp_path, monkeypatch)
    calls = tmp_path / "calls.txt"
    (ip.repo / "runtests.py").write_text(RUNNER.format(calls=str(calls)))
    git(["add", "runtests.py"], ip.repo)
    git(["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "runner"], ip.repo)
    (ip.repo / ".anvil" / "config.yaml").write_text(
        f'test_command: "{sys.executable} runtests.py{flags}"\nsource_roots: [src]\ndefault_branch: main\n')
    try:
        runner = ip.runner(ScriptedPipeline(example_answers()))
        runner.execute()
        st = runner.run.state
    finally:
        ip.close()
    assert st.status == "done", st.error
    return st.stage("test").data, calls.read_text().splitlines()


def test_a_planned_test_file_in_the_junit_report_is_not_run_a_second_time(tmp_path, monkeypatch):
    data, calls = run_with(tmp_path, monkeypatch, "")
    assert calls == [""]  # one command: the planned tests/test_search.py is in junit.xml
    assert data["test_files"] == ["tests/test_search.py"] and data["new_tests_ran"] is True
    assert data["result"]["verdict"]["source"] == "junit"
    assert data["command_seconds"] == pytest.approx(data["result"]["duration"], abs=0.01)


def test_a_planned_test_file_no_report_names_is_run_on_its_own(tmp_path, monkeypatch):
    data, calls = run_with(tmp_path, monkeypatch, " --no-junit")
    assert calls == ["--no-junit", "--no-junit tests/test_search.py"]
    assert data["result"]["verdict"]["source"] == "exit-code" and data["new_tests_ran"] is True
    # both commands' time is the stage's command time, not the pipeline's overhead
    assert data["command_seconds"] > data["result"]["duration"] + 0.05
    assert data["command_cpu_seconds"] > 0
