"""Git for the pipeline: a worktree per run, diffs, commits, push (DESIGN.md 9, ship).

Everything goes through the `git` CLI. The run works in its own worktree on a
new branch `anvil/<slug>` under `<repo>/.anvil/runs/<run-id>/worktree`, so the
user's current branch, index and uncommitted files are never touched. Commits
never depend on the user's git identity or signing setup.

Hooks never run on anvil's own git commands (`-c core.hooksPath=/dev/null`):
a model may have edited a file under the repository's hooks path, and
post-checkout, pre-commit, post-commit, reference-transaction and pre-push all
fire on what anvil does (worktree add, commit, reset, push). A user who wants
their hooks sets `git: {run_hooks: true}` in $ANVIL_HOME/config.yaml (never a
repository's file); the runner passes that on with `set_run_hooks`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from anvil.errors import EXIT_INTERNAL, AnvilError, UserError
from anvil.run.store import ensure_runs_dir

GIT_TIMEOUT = 120.0
PUSH_TIMEOUT = 300.0
FALLBACK_NAME = "anvil"
FALLBACK_EMAIL = "anvil@localhost"
CONVENTIONAL_TYPES = ("feat", "fix", "docs", "style", "refactor", "perf", "test", "build", "ci", "chore", "revert")
_CONVENTIONAL = re.compile(r"^({})(\([\w./-]+\))?!?: \S".format("|".join(CONVENTIONAL_TYPES)))


class GitError(AnvilError):
    """A git command failed; the message names the command and git's own words."""

    exit_code = EXIT_INTERNAL


_run_hooks = False  # one setting per process: the user's own layer's `git.run_hooks` (set_run_hooks)
NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def set_run_hooks(enabled: bool) -> None:
    """Let the repository's git hooks run on anvil's git commands (the user's `git.run_hooks: true`)."""
    global _run_hooks
    _run_hooks = bool(enabled)


def hook_args() -> tuple[str, ...]:
    return () if _run_hooks else NO_HOOKS


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never hang on a credential prompt
    env.setdefault("LC_ALL", "C")
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    if extra:
        env.update(extra)
    return env


def _shown(args: Sequence[str]) -> str:
    """The command for messages: `-c key=value` pairs left out, first words only."""
    words, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "-c":
            skip = True
        else:
            words.append(a)
    return "git " + " ".join(words[:3])


def git(args: Sequence[str], cwd: Path, *, check: bool = True, input: str | None = None,
        timeout: float = GIT_TIMEOUT, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["git", *hook_args(), *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, input=input, timeout=timeout,
                              env=_env(env))
    except FileNotFoundError:
        raise UserError("git is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`{_shown(args)}` took longer than {timeout:g}s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"`{_shown(args)}` failed: {detail[-1] if detail else 'exit ' + str(proc.returncode)}")
    return proc


def _out(args: Sequence[str], cwd: Path) -> str:
    return git(args, cwd).stdout.strip()


def identity_args(cwd: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """`-c user.name=... -c user.email=...` when the user has no identity configured."""
    env = os.environ if env is None else env
    args: list[str] = []
    for key, var, fallback in (("user.name", "NAME", FALLBACK_NAME), ("user.email", "EMAIL", FALLBACK_EMAIL)):
        have_env = env.get(f"GIT_AUTHOR_{var}") and env.get(f"GIT_COMMITTER_{var}")
        if not have_env and git(["config", "--get", key], cwd, check=False).returncode != 0:
            args += ["-c", f"{key}={fallback}"]
    return args


# -- names -----------------------------------------------------------------

def slugify(text: str, max_len: int = 40) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    slug = ""
    for w in words:
        cand = f"{slug}-{w}" if slug else w
        if len(cand) > max_len:
            break
        slug = cand
    return slug or (words[0][:max_len] if words else "change")


def branch_exists(repo_root: Path, branch: str) -> bool:
    return git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], repo_root, check=False).returncode == 0


def branch_name(request: str, repo_root: Path | None = None) -> str:
    """`anvil/<slug>`, made unique against the repository's branches with -2, -3..."""
    base = f"anvil/{slugify(request)}"
    if repo_root is None or not branch_exists(repo_root, base):
        return base
    n = 2
    while branch_exists(repo_root, f"{base}-{n}"):
        n += 1
    return f"{base}-{n}"


def default_branch(repo_root: Path, remote: str = "origin") -> str:
    """The branch a run starts from: the remote's HEAD, else main/master, else the current branch."""
    p = git(["symbolic-ref", "--quiet", "--short", f"refs/remotes/{remote}/HEAD"], repo_root, check=False)
    if p.returncode == 0 and p.stdout.strip():
        return p.stdout.strip().split("/", 1)[-1]
    for name in ("main", "master"):
        if branch_exists(repo_root, name):
            return name
    p = git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo_root, check=False)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "main"


def current_branch(repo_root: Path) -> str | None:
    p = git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo_root, check=False)
    return p.stdout.strip() or None


def rev_parse(cwd: Path, ref: str) -> str:
    p = git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd, check=False)
    if p.returncode != 0:
        raise UserError(f"git cannot find {ref!r} in this repository",
                        hint="commit at least once, or name an existing base branch")
    return p.stdout.strip()


# -- worktrees -------------------------------------------------------------

def worktree_path(repo_root: Path, run_id: str) -> Path:
    return Path(repo_root) / ".anvil" / "runs" / run_id / "worktree"


def create_worktree(repo_root: Path, run_id: str, base_ref: str, branch: str) -> Path:
    """A new worktree for the run on a new `branch` from `base_ref`; reused if it already exists."""
    repo_root = Path(repo_root)
    path = worktree_path(repo_root, run_id)
    if (path / ".git").exists():
        return path  # a resumed run keeps its worktree
    base_sha = rev_parse(repo_root, base_ref)
    git(["worktree", "prune"], repo_root, check=False)  # forget worktree folders deleted by hand
    ensure_runs_dir(repo_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if branch_exists(repo_root, branch):
        git(["worktree", "add", "--quiet", str(path), branch], repo_root)
    else:
        git(["worktree", "add", "--quiet", "-b", branch, str(path), base_sha], repo_root)
    return path


MAX_BRANCH_TRIES = 100


def claim_worktree(repo_root: Path, run_id: str, base_sha: str, wanted: str,
                   take_spare: Callable[[Path], bool] | None = None) -> tuple[Path, str]:
    """A new worktree for a new run, on a branch no other run has: (path, branch).

    The name is taken by creating it (`git worktree add -b` or, in a spare worktree that
    `take_spare` moved into place, `git checkout -b`, both fail if the branch exists, and
    git's ref lock lets only one of two racing runs create it), never checked then created:
    the loser of a race moves on to `-2`, `-3`... and so never shares the winner's branch.
    A run killed after its worktree was made gets the same worktree and branch back.
    """
    repo_root = Path(repo_root)
    path = worktree_path(repo_root, run_id)
    if (path / ".git").exists():
        head = git(["symbolic-ref", "--quiet", "--short", "HEAD"], path, check=False)
        if head.returncode == 0:
            return path, head.stdout.strip()
        spare = True  # a spare taken by a run killed before its branch was made
    else:
        git(["worktree", "prune"], repo_root, check=False)
        ensure_runs_dir(repo_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        spare = take_spare(path) if take_spare is not None else False
    m = re.match(r"^(.*?)(?:-(\d+))?$", wanted)
    stem = m.group(1) if m and m.group(2) else wanted
    n = int(m.group(2)) if m and m.group(2) else 1
    last = ""
    for _ in range(MAX_BRANCH_TRIES):
        branch = stem if n == 1 else f"{stem}-{n}"
        if spare:
            p = git(["checkout", "--quiet", "-b", branch, base_sha], path, check=False)
        else:
            p = git(["worktree", "add", "--quiet", "-b", branch, str(path), base_sha], repo_root, check=False)
        if p.returncode == 0:
            return path, branch
        last = ((p.stderr or p.stdout).strip().splitlines() or [f"exit {p.returncode}"])[-1]
        if not (branch_exists(repo_root, branch) or "already exists" in last or "lock" in last):
            raise GitError(f"`git {'checkout' if spare else 'worktree add'}` failed: {last}")
        if not spare and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        n += 1
    raise GitError(f"no free branch name after {MAX_BRANCH_TRIES} tries from {wanted!r}: {last}")


def remove_worktree(repo_root: Path, worktree: Path) -> None:
    """Remove the worktree folder (the branch and its commits stay)."""
    if Path(worktree).exists():
        git(["worktree", "remove", "--force", str(worktree)], repo_root, check=False)
    git(["worktree", "prune"], repo_root, check=False)


# -- diffs and commits -----------------------------------------------------

# Build and test by-products never belong in a run's commits, even in a repo
# whose .gitignore forgot them.
JUNK_PATHSPECS = tuple(f":(exclude,glob){p}" for p in (
    "**/__pycache__/**", "**/*.pyc", "**/.pytest_cache/**", "**/node_modules/**", "**/.mypy_cache/**",
    "**/.ruff_cache/**", "**/*.egg-info/**", "**/.DS_Store", "**/.coverage", "**/.coverage.*", "**/htmlcov/**",
    "**/coverage.xml", "**/.tox/**", "**/.nox/**", "**/.hypothesis/**",
))


def _stage_all(worktree: Path) -> None:
    git(["add", "-A", "--", ".", *JUNK_PATHSPECS], worktree)


def diff(worktree: Path, base_ref: str, *, stat: bool = False, paths: Sequence[str] = (),
         context: int | None = None) -> str:
    """Everything the run changed against `base_ref`: committed, staged, unstaged and new files
    (only under `paths` when given; `context` lines around each hunk, git's 3 by default)."""
    _stage_all(worktree)
    args = ["diff", "--cached", "--no-color", "--no-ext-diff"] + ([f"-U{context}"] if context is not None else [])
    args += ["--stat"] if stat else ["--binary"]
    return git([*args, base_ref, "--", *paths], worktree).stdout


def changed_files(worktree: Path, base_ref: str) -> list[str]:
    _stage_all(worktree)
    out = git(["diff", "--cached", "--name-only", "--no-renames", base_ref, "--"], worktree).stdout
    return [line for line in out.splitlines() if line]


def head(cwd: Path) -> str:
    return _out(["rev-parse", "HEAD"], cwd)


def commit(worktree: Path, message: str, *, verify: bool = False, paths: Sequence[str] | None = None) -> str | None:
    """Commit the worktree's changes; the new sha, or None when there was nothing to commit.

    `paths` limits the commit to those files (e.g. the ones the edits
    changed), leaving anything else a test run wrote behind uncommitted.
    """
    if paths is not None:
        git(["reset", "-q"], worktree)  # unstage what diff()/changed_files() staged
        if paths:
            git(["add", "-A", "--", *paths], worktree)
    else:
        _stage_all(worktree)
    if git(["diff", "--cached", "--quiet"], worktree, check=False).returncode == 0:
        return None
    from anvil.ui.safe import printable

    args = [*identity_args(worktree), "-c", "commit.gpgsign=false", "commit", "--quiet", "--file", "-"]
    if not verify and not _run_hooks:
        args.append("--no-verify")
    # The message quotes the model: no escape sequence may reach whoever runs `git log` in a terminal.
    git(args, worktree, input=printable(message))
    return head(worktree)


def conventional_subject(request: str, subject: str | None = None, max_len: int = 72) -> str:
    """A Conventional Commits subject: the model's if it is one, else derived from the request."""
    text = (subject or "").strip().splitlines()[0].strip() if (subject or "").strip() else ""
    if not _CONVENTIONAL.match(text):
        low = request.lower()
        kind = ("fix" if re.search(r"\b(fix|bug|crash|broken|error)\b", low) else
                "docs" if re.search(r"\b(doc|docs|readme|documentation)\b", low) else
                "test" if re.match(r"\s*(add|write)?\s*tests?\b", low) else
                "refactor" if re.search(r"\b(refactor|rename|clean ?up)\b", low) else "feat")
        body = (text or request).strip().rstrip(".")
        body = body[0].lower() + body[1:] if body[:2].isalpha() and not body[:2].isupper() else body
        text = f"{kind}: {body}"
    if len(text) > max_len:
        text = text[: max_len - 3].rstrip() + "..."
    return text


def commit_message(request: str, *, subject: str | None = None, body: str = "",
                   models: Mapping[str, str | None] | None = None, run_id: str | None = None) -> str:
    """Subject, body, then one trailer per stage naming its model (`Anvil-Model-Plan: ...`)."""
    lines = [conventional_subject(request, subject), ""]
    if body.strip():
        lines += [body.strip(), ""]
    trailers = [f"Anvil-Model-{stage.capitalize()}: {model}" for stage, model in (models or {}).items() if model]
    if run_id:
        trailers.append(f"Anvil-Run: {run_id}")
    lines += trailers
    return "\n".join(lines).rstrip() + "\n"


def commit_trailers(cwd: Path, rev: str = "HEAD") -> dict[str, str]:
    out = git(["log", "-1", "--format=%(trailers:only,unfold)", rev], cwd).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


# -- remotes ---------------------------------------------------------------

def remote_url(repo_root: Path, remote: str) -> str | None:
    p = git(["remote", "get-url", remote], repo_root, check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def push(worktree: Path, remote: str, branch: str, *, timeout: float = PUSH_TIMEOUT) -> None:
    """Push `branch` to `remote` (a name or a URL/path) and set it as upstream."""
    p = git(["push", "--set-upstream", remote, f"{branch}:refs/heads/{branch}"], worktree, check=False,
            timeout=timeout)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise UserError(f"git push to {remote!r} failed: {last}",
                        hint="check the remote name/URL and your push credentials; the branch is kept locally")
