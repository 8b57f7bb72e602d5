"""Did the run solve the task? Two ways to tell.

- `tests` (the default): a fresh checkout of the run's final commit, the task's hidden files
  or test_patch added, then its checks: SWE-bench's FAIL_TO_PASS and PASS_TO_PASS test ids
  (every one must pass) in the repository's environment, or the task's verify commands
  (each must exit 0).
- `diff`: the gold patch's files, as the run left them, against the same files with the gold
  patch applied to the base commit, whitespace ignored (blank lines and indentation included).
  For repositories whose test environment cannot be built here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from anvil.bench.envs import Environment, Environments, run_logged
from anvil.bench.patches import patch_files
from anvil.bench.repos import RepoError, add_worktree, apply_patch, git
from anvil.bench.task import Task

VerifyMode = Literal["tests", "diff"]
VERIFY_TIMEOUT = 900.0
_STATUS = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (.+)$")
PASSING = frozenset({"PASSED", "XFAIL"})


class CannotVerify(Exception):
    """Verification could not run (no environment, no gold patch, a test patch that does not apply)."""


@dataclass
class Verdict:
    resolved: bool
    mode: VerifyMode
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "resolved": self.resolved, **self.detail}


def _normalise(text: str | None) -> str | None:
    if text is None:
        return None
    return "\n".join("".join(line.split()) for line in text.splitlines() if line.strip())


def _show(repo: Path, commit: str, path: str) -> str | None:
    try:
        return git(["show", f"{commit}:{path}"], repo)
    except RepoError:
        return None


def verify_diff(task: Task, repo: Path, base: str, head: str, work: Path) -> Verdict:
    if not task.gold_patch.strip():
        raise CannotVerify(f"task {task.id} has no gold patch to compare with (--verify diff)")
    gold_tree = add_worktree(repo, base, work / "gold")
    try:
        apply_patch(gold_tree, task.gold_patch)
    except RepoError as exc:
        raise CannotVerify(f"the gold patch does not apply to the base commit: {exc.message}") from None
    differ = []
    files = [f for f in patch_files(task.gold_patch) if f]
    for rel in files:
        want = (gold_tree / rel).read_text(encoding="utf-8", errors="replace") if (gold_tree / rel).is_file() else None
        if _normalise(want) != _normalise(_show(repo, head, rel)):
            differ.append(rel)
    git(["worktree", "remove", "--force", str(gold_tree)], repo, check=False)
    return Verdict(not differ, "diff", {"files": files, "differ": differ})


def parse_statuses(output: str) -> dict[str, str]:
    """pytest -rA's short summary: test id -> PASSED / FAILED / ERROR / XFAIL / XPASS / SKIPPED."""
    out: dict[str, str] = {}
    for line in output.splitlines():
        m = _STATUS.match(line.strip())
        if m:
            status, rest = m.groups()
            out[rest] = status
            out.setdefault(rest.split(" - ", 1)[0], status)
            # SWE-bench stores ids cut at the first blank (`test_x[a b]` is `test_x[a`), as its log
            # parser reads them: the first word is the id too
            out.setdefault(rest.split()[0], status)
    return out


def _run_ids(env: Environment, checkout: Path, ids: list[str], base_env: dict[str, str], log: Path) -> dict[str, str]:
    """Run the test files the ids live in (SWE-bench's ids may be cut at a blank, so they cannot all
    be selected by name) and read every id's outcome from the `-rA` summary."""
    files = sorted({i.split("::", 1)[0] for i in ids})
    cmd = env.spec.test + " " + " ".join(shlex.quote(f) for f in files)
    start = log.stat().st_size if log.is_file() else 0
    env.run(cmd, checkout, base_env, log, VERIFY_TIMEOUT)
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        return parse_statuses(f.read())


def verify_tests(task: Task, repo: Path, head: str, work: Path, envs: Environments,
                 base_env: dict[str, str]) -> Verdict:
    tree = add_worktree(repo, head, work / "verify")
    log = work / "verify.log"
    log.write_text("", encoding="utf-8")
    for rel, content in task.verify_files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(content, encoding="utf-8")
    try:
        apply_patch(tree, task.test_patch)
    except RepoError as exc:
        return Verdict(False, "tests", {"error": f"the test patch does not apply to the result: {exc.message}",
                                        "log": str(log)})
    env = envs.get(task)
    if task.fail_to_pass or task.pass_to_pass:
        if env is None:
            raise CannotVerify(f"no environment for {task.repo_name} in the bench config: its tests cannot run "
                               "here (add one to --config, or use --verify diff)")
        # an id that names no file (SWE-bench keeps a few log-parsing leftovers such as "[100%]") can
        # select no test: it is left out and said so, never counted as a failure or a pass
        f2p_ids = [t for t in task.fail_to_pass if (tree / t.split("::", 1)[0]).is_file()]
        p2p_ids = [t for t in task.pass_to_pass if (tree / t.split("::", 1)[0]).is_file()]
        unselectable = [t for t in task.fail_to_pass + task.pass_to_pass if t not in f2p_ids and t not in p2p_ids]
        with env.locked():
            if env.spec.install:
                env.run(env.spec.install, tree, base_env, log, VERIFY_TIMEOUT)
            statuses = _run_ids(env, tree, f2p_ids + p2p_ids, base_env, log)
        f2p = [t for t in f2p_ids if statuses.get(t) in PASSING]
        p2p = [t for t in p2p_ids if statuses.get(t) in PASSING]
        failing = [t for t in f2p_ids + p2p_ids if statuses.get(t) not in PASSING][:20]
        resolved = bool(f2p_ids) and len(f2p) == len(f2p_ids) and len(p2p) == len(p2p_ids)
        detail: dict[str, Any] = {"fail_to_pass": f"{len(f2p)}/{len(f2p_ids)}",
                                  "pass_to_pass": f"{len(p2p)}/{len(p2p_ids)}", "failing": failing, "log": str(log)}
        if unselectable:
            detail["unselectable"] = unselectable
        return Verdict(resolved, "tests", detail)
    if not task.verify_commands:
        raise CannotVerify(f"task {task.id} says nothing to verify with (no verify command, no tests)")
    results = []
    for cmd in task.verify_commands:
        code = (env.run(cmd, tree, base_env, log, VERIFY_TIMEOUT) if env is not None
                else run_logged(cmd, tree, base_env, log, VERIFY_TIMEOUT))
        results.append({"command": cmd, "exit_code": code})
    return Verdict(all(r["exit_code"] == 0 for r in results), "tests", {"commands": results, "log": str(log)})
