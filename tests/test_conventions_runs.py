"""Conventions across runs (in-process runner, scripted server, real git, SQLite and `anvil` subprocess):
run 1's review flags an `assert` used for validation, run 2's flags it again and it is proposed; the
model-written check is promoted through `anvil conventions promote` (a refused first answer, then one that
flags the cases and not their fixes); run 3's validate catches the same line without a model and review,
told the convention is enforced, runs once: its tokens in the ledger are lower than run 1's."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from anvil.demo.scripted_run import CLI_EDITS, GOOD_MATCH, ScriptedPipeline, _block, _store_edit, example_answers
from anvil.memory.store import MemoryStore
from tests.e2e_helpers import ANVIL, InProcess, make_env

pytestmark = pytest.mark.e2e

ASSERT_LINE = '        assert word, "empty search word"\n'
BUILD_ASSERT = "Adding TaskStore.search.\n\n" + _store_edit(ASSERT_LINE + GOOD_MATCH) + "\n" + CLI_EDITS
BUILD_FIX = "Raise ValueError instead.\n\n" + _block(
    "src/tasklist/store.py", ASSERT_LINE, '        if not word:\n            raise ValueError("empty search word")\n')
FLAG = {"summary": "assert used to validate an argument", "findings": [
    {"severity": "blocking", "file": "src/tasklist/store.py", "line": 80, "evidence": ASSERT_LINE.strip(),
     "rule": "no-assert-for-validation",
     "message": "assert is stripped under python -O: raise ValueError for a bad argument"}]}
CLEAN = {"summary": "fine", "findings": []}


def reviewer(req) -> str:
    """Flags the assert whenever the diff it is shown has it (as a real reviewer would)."""
    return json.dumps(FLAG if "assert word" in req.body.decode() else CLEAN)


def pipeline() -> ScriptedPipeline:
    answers = example_answers()
    answers.update(build=[BUILD_ASSERT, BUILD_FIX], review=[reviewer])
    answers["conventions"] = [json.dumps({"kind": "regex", "pattern": "search"}),  # flags the fix too: refused
                              json.dumps({"kind": "regex", "pattern": r"^\s*assert\b"})]
    return ScriptedPipeline(answers)


def ledger(ip: InProcess, run_id: str) -> list[tuple[str, int]]:
    con = sqlite3.connect(ip.home / "ledger.db")
    try:
        return [(s, int(i) + int(o)) for s, i, o in con.execute(
            "SELECT stage, input_tokens, output_tokens FROM attempts WHERE run_id = ? ORDER BY id", (run_id,))]
    finally:
        con.close()


def tokens(rows: list[tuple[str, int]], stage: str) -> int:
    return sum(t for s, t in rows if s == stage)


def test_a_recurring_review_complaint_becomes_a_check_validate_runs(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    try:
        runs = []
        for _ in range(2):
            p = pipeline()
            r = ip.runner(p)
            r.execute()
            assert r.run.state.status == "done"
            assert p.count("review") == 2 and p.count("build") == 2  # flagged, fixed, passed
            runs.append(r.run.id)
        store = MemoryStore.for_repo(ip.repo)
        [c] = store.conventions.all()
        assert c.status == "proposed" and c.runs == 2 and c.key == "python/assert/assert-valid"
        originals, fixed = store.conventions.cases(c.key)
        assert originals == [ASSERT_LINE.strip()] and "raise ValueError" in fixed[0]
        store.close()

        env = make_env(ip.home)
        promote = subprocess.run([ANVIL, "conventions", "promote", str(c.id), "--trust-repo", "--json"],
                                 cwd=ip.repo, env=env, capture_output=True, text=True, timeout=120)
        assert promote.returncode == 0, promote.stderr
        shown = json.loads(promote.stdout)
        assert shown["status"] == "promoted" and shown["check"]["pattern"] == r"^\s*assert\b"
        assert shown["check"]["written_by"] == "scripted-premium" and "2 call(s)" in shown["cost"]
        con = sqlite3.connect(ip.home / "ledger.db")
        assert con.execute("SELECT COUNT(*) FROM attempts WHERE stage = 'conventions'").fetchone()[0] == 2
        con.close()

        p3 = pipeline()
        third = ip.runner(p3)
        third.execute()
        assert third.run.state.status == "done"
        events = [json.loads(x) for x in (third.run.dir / "events.jsonl").read_text().splitlines()]
        caught = [e for e in events if e.get("kind") == "validate.conventions"]
        assert caught and caught[0]["failed"] == ["convention python/assert/assert-valid"]
        assert p3.count("build") == 2 and p3.count("review") == 1  # validate sent it back, not review
        assert p3.count("conventions") == 0
        review_body = ip.requests("review")[-1]
        assert "Conventions already enforced" in review_body and "python/assert/assert-valid" in review_body
        first, last = ledger(ip, runs[0]), ledger(ip, third.run.id)
        assert tokens(last, "review") < tokens(first, "review")
        assert (ip.repo / ".anvil").exists()
        disabled = subprocess.run([ANVIL, "conventions", "disable", "python/assert/assert-valid"],
                                  cwd=ip.repo, env=env, capture_output=True, text=True, timeout=60)
        assert disabled.returncode == 0, disabled.stderr
        listed = subprocess.run([ANVIL, "conventions", "list", "--json"], cwd=ip.repo, env=env,
                                capture_output=True, text=True, timeout=60)
        assert json.loads(listed.stdout)[0]["status"] == "disabled"
    finally:
        ip.close()


def test_auto_promote_writes_the_check_at_the_end_of_the_run_that_proposes_it(tmp_path, monkeypatch):
    ip = InProcess(tmp_path, monkeypatch)
    policy = "conventions: {auto_promote: true}\n"
    try:
        ids = []
        for _ in range(2):
            r = ip.runner(pipeline(), policy=policy)
            r.execute()
            ids.append(r.run.id)
        store = MemoryStore.for_repo(ip.repo)
        [c] = store.conventions.enforced()
        store.close()
        assert c.pattern == r"^\s*assert\b" and c.written_by == "scripted-premium"
        assert [s for s, _ in ledger(ip, ids[1])].count("conventions") == 2  # refused, then accepted
        assert "conventions" not in [s for s, _ in ledger(ip, ids[0])]
        p3 = pipeline()
        ip.runner(p3, policy=policy).execute()
        assert p3.count("review") == 1 and p3.count("conventions") == 0
    finally:
        ip.close()
