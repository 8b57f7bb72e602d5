"""The test runner: real subprocesses, process-group kills, model-sized reports, worktree imports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anvil.workspace import gitops
from anvil.workspace.testreport import build_report, failing_tests, failure_blocks, signature
from anvil.workspace.testrun import command_env, run_command
from tests.pipeline_helpers import copy_example, sh

PY = sys.executable

FAILING_TEST = '''
def add(a, b):
    return a - b

def test_ok():
    assert 1 == 1

def test_add():
    result = add(2, 2)
    assert result == {expected}
'''


def _pytest_project(root: Path, expected: int = 4) -> Path:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "test_math.py").write_text(FAILING_TEST.format(expected=expected))
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_pytest_failure_is_parsed_and_logged(tmp_path: Path) -> None:
    _pytest_project(tmp_path)
    log = tmp_path / "run" / "test.log"
    r = run_command(f"{PY} -m pytest -q -p no:cacheprovider", tmp_path, 60, log_path=log)
    assert not r.passed and r.exit_code == 1 and not r.timed_out
    assert r.failing_tests == ["tests/test_math.py::test_add"]
    assert "E       assert 0 == 4" in r.report
    assert "_ test_add _" in r.report
    assert "failing: tests/test_math.py::test_add" in r.report.splitlines()[1]
    assert log.read_text() == r.output and "1 failed, 1 passed" in log.read_text()
    assert r.signature and len(r.signature) == 12
    assert "failing test" in r.summary()


def test_passing_command(tmp_path: Path) -> None:
    _pytest_project(tmp_path)
    (tmp_path / "tests" / "test_math.py").write_text("def test_ok():\n    assert True\n")
    r = run_command(f"{PY} -m pytest -q -p no:cacheprovider", tmp_path, 60)
    assert r.passed and r.exit_code == 0 and r.signature == "" and r.failing_tests == []
    assert "passed" in r.summary()


def test_same_failure_twice_has_the_same_signature(tmp_path: Path) -> None:
    _pytest_project(tmp_path)
    cmd = f"{PY} -m pytest -q -p no:cacheprovider"
    a = run_command(cmd, tmp_path, 60)
    (tmp_path / "tests" / "test_math.py").write_text("\n\n" + FAILING_TEST.format(expected=4))  # lines move
    b = run_command(cmd, tmp_path, 60)
    assert a.signature == b.signature
    (tmp_path / "tests" / "test_math.py").write_text(FAILING_TEST.format(expected=5))  # a different failure
    c = run_command(cmd, tmp_path, 60)
    assert c.signature != a.signature


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    cmd = "sleep 60 & echo $! > child.pid; sleep 60"
    t = time.monotonic()
    r = run_command(cmd, tmp_path, 1.0, kill_grace=1.0)
    assert time.monotonic() - t < 10
    assert r.timed_out and not r.passed and r.exit_code is None
    assert "timed out" in r.summary() and "TIMED OUT" in r.report and r.signature
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_term_ignoring_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('up', flush=True)\ntime.sleep(60)\n")
    t = time.monotonic()
    r = run_command(f"{PY} {script}", tmp_path, 1.0, kill_grace=0.5)
    assert r.timed_out and time.monotonic() - t < 10
    assert "up" in r.output


def test_background_leftovers_do_not_hang_or_survive(tmp_path: Path) -> None:
    t = time.monotonic()
    r = run_command("sleep 60 & echo $! > bg.pid; echo finished", tmp_path, 30)
    assert time.monotonic() - t < 10
    assert r.passed and "finished" in r.output
    bg = int((tmp_path / "bg.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(bg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(bg)


def test_missing_command(tmp_path: Path) -> None:
    r = run_command("definitely-not-a-command-xyz", tmp_path, 10)
    assert not r.passed and r.exit_code == 127 and "not found" in r.output


def test_big_output_is_truncated_for_the_model_but_logged_in_full(tmp_path: Path) -> None:
    _pytest_project(tmp_path)
    (tmp_path / "tests" / "test_noise.py").write_text(
        "def test_noise():\n    for i in range(3000):\n        print('noise line', i)\n    assert False, 'boom'\n")
    log = tmp_path / "test.log"
    r = run_command(f"{PY} -m pytest -q -p no:cacheprovider -rA", tmp_path, 60, log_path=log, max_report_chars=6000)
    assert len(r.report) <= 6000
    assert len(log.read_text()) > 30000
    assert "lines omitted" in r.report
    assert "E       assert 0 == 4" in r.report  # a failure block from the middle survives
    assert "2 failed, 1 passed" in r.report.rstrip().splitlines()[-1]  # the tail
    assert set(r.failing_tests) == {"tests/test_math.py::test_add", "tests/test_noise.py::test_noise"}


def test_node_test_failures(tmp_path: Path) -> None:
    if not subprocess.run(["which", "node"], capture_output=True).returncode == 0:
        pytest.skip("node not installed")
    (tmp_path / "package.json").write_text('{"type": "module"}\n')
    (tmp_path / "a.test.js").write_text(
        "import test from 'node:test';\nimport assert from 'node:assert';\n"
        "test('adds', () => assert.strictEqual(1 + 1, 2));\n"
        "test('breaks', () => assert.strictEqual(1 + 1, 3));\n")
    r = run_command("node --test", tmp_path, 60)
    assert not r.passed and r.failing_tests == ["breaks"]
    blocks = failure_blocks(r.output)
    assert any("not ok 2 - breaks" in b and "2 !== 3" in b for b in blocks)
    again = run_command("node --test", tmp_path, 60)
    assert again.signature == r.signature  # durations differ, the signature does not


GO_OUTPUT = """=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
    calc_test.go:14: Sub(3, 1) = 4, want 2
    calc_test.go:15: second complaint
--- FAIL: TestSub (0.00s)
FAIL
FAIL\texample.com/calc\t0.003s
"""

CARGO_OUTPUT = """running 2 tests
test tests::adds ... ok
test tests::subtracts ... FAILED

failures:

---- tests::subtracts stdout ----
thread 'tests::subtracts' panicked at src/lib.rs:12:9:
assertion `left == right` failed
  left: 4
 right: 2

failures:
    tests::subtracts

test result: FAILED. 1 passed; 1 failed; 0 ignored
"""


def test_go_and_cargo_output_parsing() -> None:
    assert failing_tests(GO_OUTPUT) == ["TestSub"]
    (go_block,) = failure_blocks(GO_OUTPUT)
    assert "Sub(3, 1) = 4, want 2" in go_block and "--- FAIL: TestSub" in go_block
    assert failing_tests(CARGO_OUTPUT) == ["tests::subtracts"]
    (cargo_block,) = failure_blocks(CARGO_OUTPUT)
    assert cargo_block.startswith("---- tests::subtracts stdout ----") and "left: 4" in cargo_block
    moved = CARGO_OUTPUT.replace("src/lib.rs:12:9", "src/lib.rs:30:9")
    assert signature(moved, failing_tests(moved)) == signature(CARGO_OUTPUT, failing_tests(CARGO_OUTPUT))


def test_build_report_short_output_is_kept_whole() -> None:
    assert build_report("a\nb\n", header="$ x") == "$ x\na\nb"


def test_pythonpath_puts_worktree_source_roots_first(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    env = command_env(tmp_path, (), {"PYTHONPATH": "/elsewhere"})
    parts = env["PYTHONPATH"].split(os.pathsep)
    assert parts == [str((tmp_path / "src").resolve()), str(tmp_path.resolve()), "/elsewhere"]
    flat = tmp_path / "flat"
    flat.mkdir()
    assert command_env(flat, (), {})["PYTHONPATH"] == str(flat.resolve())
    first = command_env(tmp_path, ("lib", "src"), {})["PYTHONPATH"].split(os.pathsep)[0]
    assert first == str((tmp_path / "src").resolve())  # "lib" does not exist: skipped


def _venv_with_editable_install(tmp_path: Path, project: Path) -> Path:
    venv = tmp_path / "venv"
    sh([PY, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    vpy = venv / "bin" / "python"
    # make this interpreter's pytest and setuptools importable there too, wherever the base python lacks them
    here = [p for p in sys.path if p.endswith("site-packages")]
    site = sh([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip()
    Path(site, "zz_host_site.pth").write_text("\n".join(here) + "\n")
    # build with this interpreter's setuptools (the venv's bundled one may be too old for PEP 660)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(here)}
    res = subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "-e", str(project)], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    return vpy


@pytest.mark.e2e
def test_tests_run_against_the_worktree_not_an_editable_install_of_the_checkout(tmp_path: Path) -> None:
    user = copy_example("python-cli", tmp_path / "user")
    vpy = _venv_with_editable_install(tmp_path, user)
    # the editable install really points at the user's checkout
    where = sh([str(vpy), "-c", "import tasklist.model as m; print(m.__file__)"], tmp_path).strip()
    assert where.startswith(str(user / "src"))

    wt = gitops.create_worktree(user, "r1", "main", "anvil/upper-x")
    model = wt / "src" / "tasklist" / "model.py"
    model.write_text(model.read_text().replace('"[x]" if task.done', '"[X]" if task.done'))
    test = wt / "tests" / "test_store.py"
    test.write_text(test.read_text().replace('"  3 [x] ! ship it  #work"', '"  3 [X] ! ship it  #work"'))
    cmd = f"{vpy} -m pytest -q -p no:cacheprovider tests/test_store.py"

    # without the source roots first, the user's checkout is what gets tested
    plain = subprocess.run(cmd, shell=True, cwd=wt, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert plain.returncode == 1 and "[x]" in plain.stdout

    r = run_command(cmd, wt, 120)
    assert r.passed, r.report
    assert (user / "src" / "tasklist" / "model.py").read_text().count('"[x]"') == 1  # user tree untouched


def test_runaway_output_is_capped_in_memory_but_logged(tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text("for i in range(20000):\n    print('line', i)\n")
    log = tmp_path / "t.log"
    r = run_command(f"{PY} loud.py", tmp_path, 60, log_path=log, max_output_bytes=50_000)
    assert r.passed
    assert len(r.output) < 60_000 and "bytes of output skipped" in r.output
    assert "line 0\n" in r.output and "line 19999" in r.output
    assert log.stat().st_size > 150_000


NODE_SPEC_OUTPUT = """\u2714 adds (0.5ms)
\u2716 breaks (1.2ms)
  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

  2 !== 3

\u2139 tests 2
\u2139 fail 1

\u2716 failing tests:

\u2716 breaks (1.2ms)
  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:
"""


def test_node_spec_reporter_output_parsing() -> None:
    assert failing_tests(NODE_SPEC_OUTPUT) == ["breaks"]
    assert signature(NODE_SPEC_OUTPUT, ["breaks"]) == signature(NODE_SPEC_OUTPUT.replace("1.2ms", "9.9ms"), ["breaks"])


def test_wait_exit_wakes_on_exit_without_polling(monkeypatch) -> None:
    """Popen.wait(timeout) sleeps up to 50 ms between looks; a command must not end that late."""
    from anvil.workspace.testrun import wait_exit

    def no_polling(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s to poll")

    monkeypatch.setattr(time, "sleep", no_polling)
    proc = subprocess.Popen(["sh", "-c", "read -t 0.2 x; exit 3"], stdin=subprocess.PIPE)
    assert wait_exit(proc, 10) == 3
    slow = subprocess.Popen(["sh", "-c", "exec cat"], stdin=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(slow, 0.1)
    finally:
        slow.kill()
        slow.wait()
