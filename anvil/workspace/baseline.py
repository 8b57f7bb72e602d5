"""Validation commands on the base commit, so only the failures a change adds count (DESIGN.md 14).

`mypy .` with 323 errors on the untouched repository and 323 after the change
says nothing about the change. Each lint / type / format command is run once
on a clean checkout of the base commit (a detached worktree, removed after),
and its result cached per base sha and command under `.anvil/cache/baseline/`.
A command that fails on the base and after the change fails *newly* only with
output lines the base did not have (line and column numbers ignored, since an
edit shifts them); otherwise its failure is pre-existing and reported, not sent
back to build.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anvil.workspace import gitops, spares
from anvil.workspace.testrun import CommandResult, run_command

CACHE = Path(".anvil") / "cache" / "baseline"
_POSITION = re.compile(r"(?<=[:(])\d+(?:[:,]\d+)?(?=[:)\s,]|$)")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s*(?:s|ms|seconds?)\b")
_NOISE = re.compile(r"^\s*(?:\$ |\[(?:passed|failed|TIMED OUT)|found \d+ error|\d+ errors? in)", re.I)


@dataclass(frozen=True)
class Baseline:
    command: str
    passed: bool
    lines: frozenset[str]  # normalised output lines


def _norm(line: str, root: str) -> str:
    line = line.replace(root, "").strip()
    return _DURATION.sub("<t>", _POSITION.sub("N", line))


def output_lines(output: str, root: Path) -> frozenset[str]:
    r = str(Path(root).resolve())
    return frozenset(n for n in (_norm(x, r) for x in output.splitlines()) if n and not _NOISE.match(n))


def _key(base_sha: str, command: str) -> str:
    return hashlib.sha256(f"{base_sha}\0{command}".encode()).hexdigest()[:24]


def baseline(repo_root: Path, base_sha: str, command: str, *, timeout: float,
             source_roots: Sequence[str] = (), spare_worktrees: int = 0) -> Baseline:
    """The command's result on the base commit (cached)."""
    path = Path(repo_root) / CACHE / f"{_key(base_sha, command)}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return Baseline(command, bool(doc["passed"]), frozenset(doc["lines"]))
        except (ValueError, KeyError, OSError):
            pass  # a broken cache entry: run it again
    tmp = Path(tempfile.mkdtemp(prefix="anvil-baseline-"))
    tree = tmp / "base"
    try:
        if spares.take(repo_root, tree):  # a parked run's checkout: only the files that differ are written
            spares.checkout_detached(tree, base_sha)
        else:
            gitops.git(["worktree", "add", "--detach", "--quiet", str(tree), base_sha], repo_root)
        res = run_command(command, tree, timeout, source_roots=source_roots)
        result = Baseline(command, res.passed, output_lines(res.output, tree))
    finally:
        if not spares.park(repo_root, tree, spare_worktrees):
            gitops.git(["worktree", "remove", "--force", str(tree)], repo_root, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"command": command, "base": base_sha, "passed": result.passed,
                                "lines": sorted(result.lines)}), encoding="utf-8")
    return result


@dataclass(frozen=True)
class Judged:
    """A validation command after the change, judged against its base."""

    result: CommandResult
    base_passed: bool
    new_lines: tuple[str, ...]  # output lines the base did not have (only when both failed)

    @property
    def passed(self) -> bool:
        return self.result.passed or (not self.base_passed and not self.new_lines)

    @property
    def pre_existing(self) -> bool:
        return not self.result.passed and not self.base_passed

    def summary(self) -> str:
        if self.result.passed:
            return self.result.summary()
        if self.passed:
            return f"`{self.result.command}` fails on the base commit too (pre-existing; no new failures)"
        if self.pre_existing:
            return f"`{self.result.command}`: {len(self.new_lines)} new failure line(s) (it also fails on the base)"
        return self.result.summary()

    def report(self) -> str:
        if self.passed:
            return ""
        if self.pre_existing:
            return (f"$ {self.result.command}\nNew since the base commit (the rest failed there too):\n"
                    + "\n".join(self.new_lines[:60]))
        return self.result.report


def judge(result: CommandResult, base: Baseline, root: Path) -> Judged:
    if result.passed or base.passed:
        return Judged(result, base.passed, ())
    new = sorted(output_lines(result.output, root) - base.lines)
    return Judged(result, False, tuple(new))
