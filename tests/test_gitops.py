"""Git for the pipeline: worktrees, diffs, commits with trailers, push to a bare repo, PRs."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.errors import UserError
from anvil.workspace import gitops
from anvil.workspace.github import PullRequest, github_repo_from_url, open_pull_request, pr_body
from tests.pipeline_helpers import FakeGitHub, make_repo, sh


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    # the user is mid-work on another branch, with staged, unstaged and untracked changes
    sh(["git", "checkout", "-q", "-b", "feature"], root)
    (root / "README.md").write_text("# demo\nstaged\n")
    sh(["git", "add", "README.md"], root)
    (root / "src" / "app.py").write_text("def f():\n    return 'dirty'\n")
    (root / "notes.txt").write_text("mine\n")
    return root


def _user_view(root: Path) -> tuple[str, str, str]:
    return (sh(["git", "symbolic-ref", "--short", "HEAD"], root), sh(["git", "status", "--porcelain"], root),
            sh(["git", "diff", "HEAD"], root))


def test_worktree_run_never_touches_the_users_checkout(repo: Path) -> None:
    before = _user_view(repo)
    branch = gitops.branch_name("Add a --json flag to the list command!", repo)
    assert branch == "anvil/add-a-json-flag-to-the-list-command"
    wt = gitops.create_worktree(repo, "20261122-0812-ab12", "main", branch)
    assert wt == repo / ".anvil" / "runs" / "20261122-0812-ab12" / "worktree"
    assert (wt / "src" / "app.py").read_text() == "def f():\n    return 1\n"  # the base, not the dirty file
    assert gitops.current_branch(wt) == branch

    (wt / "src" / "app.py").write_text("def f():\n    return 2\n")
    (wt / "src" / "new.py").write_text("X = 1\n")
    (wt / "README.md").unlink()
    assert gitops.changed_files(wt, "main") == ["README.md", "src/app.py", "src/new.py"]
    patch = gitops.diff(wt, "main")
    assert "+    return 2" in patch and "+X = 1" in patch and "deleted file" in patch
    assert "src/app.py" in gitops.diff(wt, "main", stat=True)

    msg = gitops.commit_message("add a --json flag", body="Adds --json.",
                                models={"plan": "claude-opus-4-5", "build": "qwen2.5-coder-7b", "review": None},
                                run_id="20261122-0812-ab12")
    sha = gitops.commit(wt, msg)
    assert sha and len(sha) == 40
    assert gitops.commit(wt, msg) is None  # nothing left to commit
    log = sh(["git", "log", "-1", "--format=%s%n%b", branch], repo)
    assert log.startswith("feat: add a --json flag\n")
    assert gitops.commit_trailers(repo, branch) == {
        "Anvil-Model-Plan": "claude-opus-4-5", "Anvil-Model-Build": "qwen2.5-coder-7b",
        "Anvil-Run": "20261122-0812-ab12"}

    assert _user_view(repo) == before  # branch, index, working files: all as the user left them
    assert (repo / "notes.txt").read_text() == "mine\n"

    gitops.remove_worktree(repo, wt)
    assert not wt.exists()
    assert gitops.branch_exists(repo, branch)  # the branch and its commit stay
    assert gitops.branch_name("Add a --json flag to the list command!", repo) == branch + "-2"
    assert _user_view(repo) == before


def test_create_worktree_is_idempotent_for_resume(repo: Path) -> None:
    wt = gitops.create_worktree(repo, "r1", "main", "anvil/x")
    (wt / "keep.txt").write_text("work in progress\n")
    assert gitops.create_worktree(repo, "r1", "main", "anvil/x") == wt
    assert (wt / "keep.txt").exists()


def test_bad_base_ref_is_a_user_error(repo: Path) -> None:
    with pytest.raises(UserError, match="cannot find"):
        gitops.create_worktree(repo, "r2", "no-such-branch", "anvil/y")


def test_commit_without_any_git_identity_or_with_signing_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.gitconfig
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    sh(["git", "config", "commit.gpgsign", "true"], repo)  # would fail without a key
    sh(["git", "config", "user.useConfigOnly", "true"], repo)  # make git refuse to guess
    assert gitops.identity_args(repo) == ["-c", "user.name=anvil", "-c", "user.email=anvil@localhost"]
    wt = gitops.create_worktree(repo, "r", "main", "anvil/z")
    (wt / "a.txt").write_text("a\n")
    gitops.commit(wt, gitops.commit_message("fix the crash on empty input"))
    out = sh(["git", "log", "-1", "--format=%an <%ae>|%s", "anvil/z"], repo)
    assert out.strip() == "anvil <anvil@localhost>|fix: fix the crash on empty input"


def test_user_identity_is_used_when_configured(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert gitops.identity_args(repo) == []  # conftest sets GIT_AUTHOR_*/GIT_COMMITTER_*


def test_default_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r1", branch="trunk")
    assert gitops.default_branch(repo) == "trunk"
    sh(["git", "branch", "master"], repo)
    assert gitops.default_branch(repo) == "master"
    bare = tmp_path / "origin.git"
    sh(["git", "init", "-q", "--bare", "-b", "trunk", str(bare)], tmp_path)
    sh(["git", "remote", "add", "origin", str(bare)], repo)
    sh(["git", "push", "-q", "origin", "trunk"], repo)
    sh(["git", "remote", "set-head", "origin", "trunk"], repo)
    assert gitops.default_branch(repo) == "trunk"


def test_conventional_subject() -> None:
    assert gitops.conventional_subject("Add a --json flag.") == "feat: add a --json flag"
    assert gitops.conventional_subject("x", "fix(cli): handle empty input") == "fix(cli): handle empty input"
    assert gitops.conventional_subject("Fix the bug in parse") == "fix: fix the bug in parse"
    assert gitops.conventional_subject("update the README") == "docs: update the README"
    assert gitops.conventional_subject("x", "Handle empty input") == "feat: handle empty input"
    assert len(gitops.conventional_subject("add " + "very " * 40 + "long")) <= 72


def test_push_to_a_local_bare_remote(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    sh(["git", "init", "-q", "--bare", str(bare)], tmp_path)
    sh(["git", "remote", "add", "upstream", str(bare)], repo)
    wt = gitops.create_worktree(repo, "r", "main", "anvil/push-me")
    (wt / "p.txt").write_text("p\n")
    sha = gitops.commit(wt, gitops.commit_message("add p"))
    gitops.push(wt, "upstream", "anvil/push-me")
    assert sh(["git", "rev-parse", "anvil/push-me"], bare).strip() == sha
    with pytest.raises(UserError, match="push"):
        gitops.push(wt, str(tmp_path / "missing.git"), "anvil/push-me")


@pytest.mark.parametrize("url,expected", [
    ("https://github.com/acme/tool.git", "acme/tool"),
    ("https://github.com/acme/tool", "acme/tool"),
    ("git@github.com:acme/tool.git", "acme/tool"),
    ("ssh://git@github.com/acme/my.tool.git", "acme/my.tool"),
    ("/srv/git/tool.git", None),
    (None, None),
])
def test_github_repo_from_url(url: str | None, expected: str | None) -> None:
    assert github_repo_from_url(url) == expected


def test_open_pull_request_via_the_rest_api() -> None:
    token = "ghp_" + "A" * 36
    with FakeGitHub() as api:
        pr = open_pull_request(repo="acme/tool", head="anvil/x", base="main", title="feat: x", body="## Summary",
                               token=token, api_url=api.url + "/")
    assert pr == PullRequest("https://github.example/acme/tool/pull/7", 7, "api")
    (req,) = api.requests
    assert req["path"] == "/repos/acme/tool/pulls"
    assert req["headers"]["Authorization"] == f"Bearer {token}"
    assert req["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert req["json"] == {"title": "feat: x", "head": "anvil/x", "base": "main", "body": "## Summary", "draft": False}


def test_pull_request_that_already_exists_is_found() -> None:
    existing = [{"number": 3, "html_url": "https://github.example/acme/tool/pull/3"}]
    with FakeGitHub(status=422, existing=existing) as api:
        pr = open_pull_request(repo="acme/tool", head="anvil/x", base="main", title="t", body="b",
                               token="t0ken-value-123", api_url=api.url)
    assert pr.number == 3 and pr.existed
    assert api.requests[1]["path"].startswith("/repos/acme/tool/pulls?head=acme%3Aanvil%2Fx")


def test_rejected_token_is_a_clean_error_without_the_token() -> None:
    token = "ghp_" + "B" * 36
    with FakeGitHub(status=401) as api:
        with pytest.raises(UserError) as err:
            open_pull_request(repo="acme/tool", head="h", base="main", title="t", body="b", token=token,
                              api_url=api.url)
    assert "401" in err.value.message and token not in err.value.message + (err.value.hint or "")


def test_no_token_and_no_gh_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="GITHUB_TOKEN"):
        open_pull_request(repo="a/b", head="h", base="main", title="t", body="b", env={"PATH": str(tmp_path)})


def test_gh_cli_is_used_without_a_token(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gh.log"
    gh = bindir / "gh"
    gh.write_text(f"#!/bin/sh\necho \"$@\" > {log}\ncat >> {log}\necho https://github.com/a/b/pull/12\n")
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    pr = open_pull_request(repo="a/b", head="anvil/h", base="main", title="feat: t", body="BODY", cwd=tmp_path,
                           env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert pr == PullRequest("https://github.com/a/b/pull/12", 12, "gh")
    recorded = log.read_text()
    assert "pr create --head anvil/h --base main --title feat: t --body-file - --repo a/b" in recorded
    assert "BODY" in recorded


def test_pr_body_has_summary_tests_and_cost_table() -> None:
    rows = [{"stage": "plan", "model": "claude-opus-4-5", "tokens": 5200, "cost": Decimal("0.0712")},
            {"stage": "build", "model": "qwen2.5-coder", "tokens": 9000, "cost": Decimal("0")},
            {"stage": "ship", "model": "mystery", "tokens": 300, "cost": None}]
    body = pr_body("Adds --json.", "12 passed in 0.3s", rows, run_id="20261122-0812-ab12")
    assert "## Summary\n\nAdds --json." in body and "12 passed" in body
    assert "| plan | claude-opus-4-5 | 5200 | $0.0712 |" in body
    assert "| ship | mystery | 300 | unpriced |" in body
    assert "**unpriced**" in body  # the total is not a guess when a call was unpriced
    full = pr_body("s", "t", rows[:2])
    assert "**$0.0712**" in full


def test_build_junk_is_never_committed(repo: Path) -> None:
    wt = gitops.create_worktree(repo, "junk", "main", "anvil/junk")
    (wt / "src" / "__pycache__").mkdir()
    (wt / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (wt / "node_modules" / "x").mkdir(parents=True)
    (wt / "node_modules" / "x" / "index.js").write_text("x")
    (wt / "src" / "app.py").write_text("def f():\n    return 3\n")
    assert gitops.changed_files(wt, "main") == ["src/app.py"]
    gitops.commit(wt, "feat: three\n")
    files = sh(["git", "show", "--name-only", "--format=", "anvil/junk"], repo).split()
    assert files == ["src/app.py"]


def test_push_and_open_pr_against_a_bare_remote_and_a_loopback_api(repo: Path, tmp_path: Path) -> None:
    from anvil.workspace.github import push_and_open_pr

    # a local bare repo whose path looks like a GitHub URL, so the owner/name is read from the remote
    bare = tmp_path / "github.com" / "acme" / "tool.git"
    bare.parent.mkdir(parents=True)
    sh(["git", "init", "-q", "--bare", str(bare)], tmp_path)
    sh(["git", "remote", "add", "origin", str(bare)], repo)
    wt = gitops.create_worktree(repo, "pr", "main", "anvil/pr-me")
    (wt / "p.txt").write_text("p\n")
    sha = gitops.commit(wt, gitops.commit_message("add p", models={"build": "m"}))
    body = pr_body("Adds p.", "1 passed", [{"stage": "build", "model": "m", "tokens": 10, "cost": Decimal("0")}])
    with FakeGitHub() as api:
        pr = push_and_open_pr(worktree=wt, repo_root=repo, branch="anvil/pr-me", base="main", remote="origin",
                              title="feat: add p", body=body, api_url=api.url, env={"GITHUB_TOKEN": "tok-123456789"})
    assert sh(["git", "rev-parse", "anvil/pr-me"], bare).strip() == sha
    assert pr.number == 7 and pr.url.endswith("/acme/tool/pull/7")
    (req,) = api.requests
    assert req["path"] == "/repos/acme/tool/pulls" and req["json"]["head"] == "anvil/pr-me"
    assert "| build | m | 10 | $0.0000 |" in req["json"]["body"]


def test_worktree_deleted_by_hand_is_recreated_on_its_branch(repo: Path) -> None:
    import shutil

    wt = gitops.create_worktree(repo, "gone", "main", "anvil/gone")
    (wt / "x.txt").write_text("x\n")
    gitops.commit(wt, "feat: x\n")
    shutil.rmtree(wt)
    again = gitops.create_worktree(repo, "gone", "main", "anvil/gone")
    assert (again / "x.txt").read_text() == "x\n"  # the branch's commits are back


JSON_FLAG_ANSWER = '''I'll add the flag and a test.

src/tasklist/cli.py
```python
<<<<<<< SEARCH
    ls.add_argument("-t", "--tag", help="only tasks with this tag")
=======
    ls.add_argument("-t", "--tag", help="only tasks with this tag")
    ls.add_argument("--json", action="store_true", help="print the tasks as a JSON array")
>>>>>>> REPLACE
```

src/tasklist/cli.py
```python
<<<<<<< SEARCH
    tasks = store.query(include_done=args.all, tag=args.tag)
    if not tasks:
=======
    tasks = store.query(include_done=args.all, tag=args.tag)
    if args.json:
        import json
        print(json.dumps([t.to_dict() for t in tasks]))
        return 0
    if not tasks:
>>>>>>> REPLACE
```

tests/test_json.py
```python
<<<<<<< SEARCH
=======
import json

from tasklist.cli import main


def test_list_json(tmp_path, capsys):
    path = str(tmp_path / "t.json")
    main(["--file", path, "add", "milk"])
    capsys.readouterr()
    assert main(["--file", path, "list", "--json"]) == 0
    assert [t["title"] for t in json.loads(capsys.readouterr().out)] == ["milk"]
>>>>>>> REPLACE
```
'''


def test_mechanics_end_to_end_on_the_python_example(tmp_path: Path) -> None:
    """Run store + worktree + edits + test command + commit + push + PR, without any model."""
    import sys

    from anvil.run.store import RunStore
    from anvil.workspace.edits import apply_edits, parse_edit_blocks
    from anvil.workspace.testrun import run_command
    from tests.pipeline_helpers import copy_example

    user = copy_example("python-cli", tmp_path / "user")
    (user / "notes.txt").write_text("uncommitted\n")
    bare = tmp_path / "github.com" / "acme" / "tasks.git"
    bare.parent.mkdir(parents=True)
    sh(["git", "init", "-q", "--bare", str(bare)], tmp_path)
    sh(["git", "remote", "add", "origin", str(bare)], user)
    before = _user_view(user)

    run = RunStore(user).create("add a --json flag to the list command")
    run.state.branch = gitops.branch_name(run.state.request, user)
    run.state.base_ref = gitops.default_branch(user)
    wt = gitops.create_worktree(user, run.id, run.state.base_ref, run.state.branch)
    report = apply_edits(wt, parse_edit_blocks(JSON_FLAG_ANSWER))
    assert report.ok, report.feedback()
    assert report.changed_files == ["src/tasklist/cli.py", "tests/test_json.py"]
    run.write_artifact("build.patch", gitops.diff(wt, run.state.base_ref))

    result = run_command(f"{sys.executable} -m pytest -q -p no:cacheprovider", wt, 120,
                         log_path=run.dir / "test.log")
    assert result.passed, result.report
    sha = gitops.commit(wt, gitops.commit_message(run.state.request, models={"build": "scripted"}, run_id=run.id))
    with FakeGitHub() as api:
        from anvil.workspace.github import push_and_open_pr

        pr = push_and_open_pr(worktree=wt, repo_root=user, branch=run.state.branch, base="main", remote="origin",
                              title="feat: add a --json flag", body=pr_body("s", result.summary(), []),
                              api_url=api.url, env={"GITHUB_TOKEN": "x" * 20})
    run.state.pr_url, run.state.status = pr.url, "done"
    run.save()

    assert sh(["git", "rev-parse", run.state.branch], bare).strip() == sha
    assert "passed" in api.requests[0]["json"]["body"]
    assert gitops.commit_trailers(user, run.state.branch)["Anvil-Run"] == run.id
    assert _user_view(user) == before  # the user's checkout never moved
    assert sorted(run.artifacts()) == ["build.patch", "test.log"]


def test_commit_only_the_given_paths(repo: Path) -> None:
    wt = gitops.create_worktree(repo, "paths", "main", "anvil/paths")
    (wt / "src" / "app.py").write_text("def f():\n    return 4\n")
    (wt / "tasks.json").write_text("[]\n")  # written by a test run, not by an edit
    (wt / ".coverage").write_text("x")
    gitops.changed_files(wt, "main")  # stages everything (but junk)
    gitops.commit(wt, "feat: four\n", paths=["src/app.py"])
    files = sh(["git", "show", "--name-only", "--format=", "anvil/paths"], repo).split()
    assert files == ["src/app.py"]
    assert (wt / "tasks.json").exists()  # left alone, uncommitted
