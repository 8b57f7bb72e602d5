"""The test verdict from the runner's own report, not from the exit code alone (DESIGN.md 14).

Code under test decides its exit code (`os._exit(0)` in a conftest.py), so
"exit 0" proves nothing. pytest is given `--junitxml=<run folder>/junit.xml`
(through PYTEST_ADDOPTS, so `python -m pytest`, tox or make all get it) and the
counts in that file decide; other runners are read from their summary lines:
node's TAP (`# pass N` / `# fail N`), unittest (`Ran N tests` ... `OK`),
`go test` (`ok  pkg` / `FAIL`), `cargo test` (`test result: ok. N passed`).
Anything else is judged by its exit code and marked `unverified`.

Failures whatever the exit code: no test ran, a runner that should have written
its report wrote none, or a test file this run added is not among those run.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PYTEST_WORD = re.compile(r"(?:^|[\s/;&|(])(?:py\.test|pytest)(?:\s|$|;|&|\|)|-m\s+pytest\b")
_TAP_COUNT = re.compile(r"^#\s*(tests|pass|fail|cancelled|skipped|todo)\s+(\d+)\s*$", re.M)
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in [\d.]+s\s*$", re.M)
_UNITTEST_END = re.compile(r"^(OK|FAILED)\b(?: \((.*)\))?\s*$", re.M)
_GO_PKG = re.compile(r"^(ok|FAIL|\?)\s+(\S+)(?:\s+(.*))?$", re.M)
_GO_FAIL = re.compile(r"^--- FAIL: ", re.M)
_CARGO_RESULT = re.compile(r"^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored", re.M)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    source: str  # junit | tap | unittest | go | cargo | exit-code
    verified: bool  # False: only the exit code said so
    total: int | None = None
    failed: int | None = None
    skipped: int | None = None
    reason: str = ""  # why it failed although the exit code may say otherwise
    ran_files: tuple[str, ...] = field(default=(), repr=False)

    def ran(self, path: str) -> bool:
        """Whether a test of `path` is in the runner's report (junit only: the other sources name no files)."""
        return _ran(path, self.ran_files)

    def summary(self) -> str:
        if self.total is None:
            counts = "unverified: exit code only" if not self.verified else self.source
        else:
            counts = f"{self.total} test(s), {self.failed or 0} failed" + (
                f", {self.skipped} skipped" if self.skipped else "") + f"; from {self.source}"
        return counts + (f"; {self.reason}" if self.reason else "")

    def to_json(self) -> dict[str, object]:
        return {"passed": self.passed, "source": self.source, "verified": self.verified, "total": self.total,
                "failed": self.failed, "skipped": self.skipped, "reason": self.reason}


def is_pytest(command: str) -> bool:
    return bool(_PYTEST_WORD.search(command))


def pytest_env(junit_path: Path, base_addopts: str | None) -> dict[str, str]:
    """PYTEST_ADDOPTS that make any pytest the command starts write its junit report to `junit_path`."""
    opts = f"--junitxml={junit_path} -o junit_family=xunit1"
    return {"PYTEST_ADDOPTS": f"{base_addopts} {opts}".strip() if base_addopts else opts}


def _junit_file(classname: str, file_attr: str | None) -> str:
    if file_attr:
        return file_attr
    # "tests.test_search" -> tests/test_search.py; a class inside it: "tests.test_search.TestX"
    parts = classname.split(".")
    while parts and parts[-1][:1].isupper():
        parts.pop()
    return "/".join(parts) + ".py" if parts else ""


def from_junit(path: Path) -> Verdict | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    total = failed = skipped = 0
    files: set[str] = set()
    for case in root.iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        f = _junit_file(case.get("classname", ""), case.get("file"))
        if f:
            files.add(f)
    # Errors outside any test case (a collection error) count as failures too.
    for suite in root.iter("testsuite"):
        errors = int(suite.get("errors", "0") or 0)
        cases_with_error = sum(1 for c in suite.iter("testcase") if c.find("error") is not None)
        failed += max(0, errors - cases_with_error)
    return Verdict(passed=failed == 0 and total > skipped, source="junit", verified=True, total=total,
                   failed=failed, skipped=skipped, ran_files=tuple(sorted(files)))


def from_output(output: str) -> Verdict | None:
    """The runner's own summary lines: cargo, go, unittest, TAP; None when none is there."""
    cargo = _CARGO_RESULT.findall(output)
    if cargo:
        passed_n = sum(int(p) for _, p, _, _ in cargo)
        failed_n = sum(int(f) for _, _, f, _ in cargo)
        ignored = sum(int(i) for _, _, _, i in cargo)
        return Verdict(failed_n == 0 and passed_n > 0, "cargo", True, passed_n + failed_n + ignored, failed_n,
                       ignored)
    go = _GO_PKG.findall(output)
    if go and any(k in ("ok", "FAIL") for k, _, _ in go):
        ok_pkgs = [p for k, p, rest in go if k == "ok" and "[no tests to run]" not in (rest or "")]
        fail_pkgs = [p for k, p, _ in go if k == "FAIL"] + ([""] if _GO_FAIL.search(output) else [])
        return Verdict(not fail_pkgs and bool(ok_pkgs), "go", True, None, len(fail_pkgs) or 0)
    ran = _UNITTEST_RAN.findall(output)
    if ran:
        end = _UNITTEST_END.findall(output)
        n = int(ran[-1])
        ok = bool(end) and end[-1][0] == "OK"
        return Verdict(ok and n > 0, "unittest", True, n, 0 if ok else None)
    counts = {k: int(v) for k, v in _TAP_COUNT.findall(output)}
    if "pass" in counts and "fail" in counts:
        total = counts.get("tests", counts["pass"] + counts["fail"])
        return Verdict(counts["fail"] == 0 and counts["pass"] > 0, "tap", True, total, counts["fail"],
                       counts.get("skipped", 0) + counts.get("todo", 0))
    return None


def _ran(path: str, ran_files: Sequence[str]) -> bool:
    # pytest names files from its rootdir, which may be a subfolder of the worktree
    return any(r == path or path.endswith("/" + r) or r.endswith("/" + path) for r in ran_files)


def judge(command: str, exit_code: int | None, output: str, *, junit_path: Path | None = None,
          new_test_files: Sequence[str] = ()) -> Verdict:
    """The verdict on one run of the test command (`exit_code` None: it timed out)."""
    exit_ok = exit_code == 0
    v = from_junit(junit_path) if junit_path is not None and junit_path.is_file() else None
    if junit_path is not None and (v is not None or is_pytest(command)):
        if v is None:
            return Verdict(False, "junit", True, reason="pytest wrote no junit report (it exited before the end "
                           f"of the session, exit code {exit_code})")
    else:
        v = from_output(output)
    if v is None:
        return Verdict(exit_ok, "exit-code", False, reason="" if exit_ok else f"exit code {exit_code}")
    reason = ""
    if not exit_ok:
        reason = f"exit code {exit_code}"
    elif v.total == 0 or (v.total is not None and v.total == (v.skipped or 0)) or (v.source == "go" and not v.passed
                                                                                  and not v.failed):
        reason = "no test ran"
    elif v.failed:
        reason = f"{v.failed} failed (the exit code said 0)"
    missing = [f for f in new_test_files if v.source == "junit" and not _ran(f, v.ran_files)]
    if missing and not reason:
        reason = "the run's new tests were not run: " + ", ".join(missing)
    return Verdict(v.passed and exit_ok and not reason, v.source, True, v.total, v.failed, v.skipped, reason,
                   v.ran_files)
