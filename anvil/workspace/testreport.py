"""Make test output model-sized: failing tests, failure blocks, head and tail, a signature.

Recognises pytest, node --test (TAP and spec reporters), go test and cargo
test. Anything else still gets head + tail and a signature from the last
lines, so "the same failure twice" is detectable for any test command.
"""

from __future__ import annotations

import hashlib
import re

_PYTEST_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")
_PYTEST_RULE = re.compile(r"^={5,}.*={5,}$|^={10,}$")
_PYTEST_FAILED = re.compile(r"^(FAILED|ERROR) (\S+?)(?: - .*)?$")
_TAP_NOT_OK = re.compile(r"^\s*not ok \d+ - (.+?)(?:\s+#.*)?$")
_SPEC_FAIL = re.compile(r"^\s*\u2716 (.+?)(?: \([\d.]+m?s\))?$")
_GO_FAIL = re.compile(r"^\s*--- FAIL: (\S+)")
_CARGO_FAILED = re.compile(r"^test (\S+) \.\.\. FAILED$")
_CARGO_SECTION = re.compile(r"^---- (\S+) stdout ----$")

# Things that change between two runs of the same failure.
_NOISE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),
    (re.compile(r"\b\d+(\.\d+)?\s*(ms|s|sec|seconds)\b"), "T"),
    (re.compile(r"duration_ms: [\d.]+"), "duration_ms: T"),
    (re.compile(r"(/tmp|/var/folders|/private/var)/\S+"), "/TMP"),
    (re.compile(r"\bpid \d+\b"), "pid N"),
]


def failing_tests(output: str) -> list[str]:
    """Names of the failing tests, in the order they were reported, without duplicates."""
    found: list[str] = []
    for line in output.splitlines():
        line = line.rstrip()
        for pattern in (_PYTEST_FAILED, _TAP_NOT_OK, _GO_FAIL, _CARGO_FAILED):
            m = pattern.match(line)
            if m:
                name = m.group(2) if pattern is _PYTEST_FAILED else m.group(1)
                if name not in found:
                    found.append(name)
                break
        else:
            m = _SPEC_FAIL.match(line)
            if m and m.group(1) not in found and m.group(1) != "failing tests:":
                found.append(m.group(1))
    return found


def failure_blocks(output: str, *, max_block_lines: int = 40) -> list[str]:
    """The parts of the output that explain the failures."""
    lines = output.splitlines()
    blocks: list[list[str]] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        m = _PYTEST_SECTION.match(line)
        if m:
            j = i + 1
            while j < len(lines) and not _PYTEST_SECTION.match(lines[j].rstrip()) \
                    and not _PYTEST_RULE.match(lines[j].rstrip()):
                j += 1
            blocks.append(_focus_pytest(lines[i:j], max_block_lines))
            i = j
            continue
        if _TAP_NOT_OK.match(line):
            j = i + 1
            if j < len(lines) and lines[j].strip() == "---":
                while j < len(lines) and lines[j].strip() != "...":
                    j += 1
                j += 1
            blocks.append([ln for ln in lines[i:j] if not ln.strip().startswith(("stack:", "duration_ms"))])
            i = j
            continue
        if _GO_FAIL.match(line):
            k = i
            while k > 0 and lines[k - 1].startswith((" ", "\t")) and i - k < max_block_lines:
                k -= 1
            blocks.append(lines[max(0, k - 1) if k and lines[k - 1].startswith("=== RUN") else k:i + 1])
            i += 1
            continue
        if _CARGO_SECTION.match(line):
            j = i + 1
            while j < len(lines) and not _CARGO_SECTION.match(lines[j]) and not lines[j].startswith("failures:"):
                j += 1
            blocks.append(lines[i:j])
            i = j
            continue
        i += 1
    out = []
    for b in blocks:
        if len(b) > max_block_lines:
            half = max_block_lines // 2
            b = b[:half] + [f"... [{len(b) - max_block_lines} lines cut] ..."] + b[-half:]
        text = "\n".join(b).strip("\n")
        if text and text not in out:
            out.append(text)
    return out


def _focus_pytest(section: list[str], limit: int) -> list[str]:
    """A pytest failure section: the header, the `>` line and the `E ` lines matter most."""
    if len(section) <= limit:
        return section
    keep = {0}
    for k, line in enumerate(section):
        if line.startswith(("E ", ">")) or re.match(r"^\S+\.py:\d+: ", line):
            keep.update(range(max(0, k - 2), min(len(section), k + 2)))
    return [section[k] for k in sorted(keep)][:limit]


def error_lines(output: str) -> list[str]:
    """pytest's `E ` lines (the assertion and exception text)."""
    return [line.strip() for line in output.splitlines() if line.startswith("E ")]


_LOCATION = re.compile(r"[\w./\\:-]*\.\w+:\d+(:\d+)?")
_STACK = re.compile(r"^\s*(at |stack:|duration_ms|location:|Test\.|async |TestContext\.|[\w.]+ \(node:)")


def _block_messages(output: str) -> list[str]:
    """The failure blocks' text without locations or stack frames (an edit moves lines)."""
    out = []
    for block in failure_blocks(output):
        for line in block.splitlines():
            if line.strip() and not _STACK.match(line) and "node:internal" not in line:
                out.append(_LOCATION.sub("<loc>", line.strip()))
    return out


def normalize(text: str, cwd: str | None = None) -> str:
    if cwd:
        text = text.replace(cwd, "<root>")
    for pattern, repl in _NOISE:
        text = pattern.sub(repl, text)
    return text


def signature(output: str, tests: list[str], *, cwd: str | None = None, timed_out: bool = False) -> str:
    """A short fingerprint of a failure: the same tests failing the same way give the same value."""
    if timed_out:
        basis = "timeout\n" + "\n".join(sorted(tests))
    elif tests:
        errs = error_lines(output) or _block_messages(output)
        basis = "\n".join(sorted(tests)) + "\n" + "\n".join(sorted(normalize(e, cwd) for e in errs))
    else:
        tail = [normalize(line.strip(), cwd) for line in output.splitlines() if line.strip()][-20:]
        basis = "\n".join(tail)
    return hashlib.sha1(basis.encode("utf-8", "replace")).hexdigest()[:12]


def build_report(output: str, *, header: str, max_chars: int = 8000, head_lines: int = 30,
                 tail_lines: int = 60) -> str:
    """Output for the model: all of it when short, else head + failure blocks + tail, within `max_chars`."""
    body = output.rstrip("\n")
    if len(body) + len(header) + 1 <= max_chars:
        return f"{header}\n{body}" if body else header
    lines = body.splitlines()
    blocks = failure_blocks(output)
    head = lines[:head_lines]
    tail_n = tail_lines if not blocks else min(tail_lines, 30)
    # pytest's short summary is the tail worth having, however long the noise before it
    marks = [k for k, ln in enumerate(lines) if "short test summary info" in ln]
    if marks and len(lines) - marks[-1] <= tail_lines:
        tail_n = len(lines) - marks[-1] if blocks else max(tail_n, len(lines) - marks[-1])
    tail = lines[-tail_n:] if len(lines) > head_lines else []
    omitted = max(0, len(lines) - len(head) - len(tail))
    parts = [header, "\n".join(head), f"... [{omitted} lines omitted; full log kept in the run folder] ..."]
    head_text = "\n".join(head)
    blocks = [b for b in blocks if b not in head_text]
    if blocks:
        parts.append("--- failures ---")
    budget = max_chars - sum(len(p) + 1 for p in parts) - sum(len(t) + 1 for t in tail) - 40
    for n, b in enumerate(blocks):
        if len(b) + 1 > budget:
            parts.append(f"... [{len(blocks) - n} more failure block(s) cut] ...")
            break
        parts.append(b)
        budget -= len(b) + 1
    parts.append("--- end of output ---")
    report = "\n".join(parts) + "\n" + "\n".join(tail)
    if len(report) > max_chars:  # a giant tail line: cut the middle, keep both ends
        half = max_chars // 2 - 20
        report = report[:half] + "\n... [cut] ...\n" + report[-half:]
    return report
