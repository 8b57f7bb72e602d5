"""`anvil bench` end to end: the real CLI runs the real `anvil run` per task, in its own clone, against
the bench's loopback model server; verification runs the tests; shards merge; the report and the
picture come out; the ledger knows each call's task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ANVIL = str(Path(sys.executable).with_name("anvil"))
TASKS = ROOT / "examples" / "bench" / "tasks.yaml"
POLICIES = [ROOT / "examples" / "bench" / "policies" / name for name in ("premium-everywhere", "frugal")]


def anvil(*args: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ANVIL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ANVIL_", "PYTEST_")) and not k.endswith("_API_KEY")}
    e.update({"ANVIL_HOME": str(tmp_path / "user-home"), "NO_COLOR": "1"})
    return e


def test_two_policies_on_three_tasks_sharded_merged_and_reported(tmp_path, env):
    policy_args = [a for p in POLICIES for a in ("--policy", str(p))]
    shards = []
    for i in range(2):
        out = tmp_path / f"shard{i}"
        r = anvil("bench", str(TASKS), "--model", "scripted", *policy_args, "--shard", f"{i}/2", "--workers", "2",
                  "--out", str(out), "--json", env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "ETA" in r.stderr  # the live table, one line per finished task when piped
        shards.append(out)
    doc = json.loads(r.stdout)
    assert {row["task"] for row in doc["rows"]} == {"search-fixed-on-retry"}

    again = anvil("bench", str(TASKS), "--model", "scripted", *policy_args, "--shard", "0/2", "--out",
                  str(shards[0]), "--resume", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "4 done, 0 to run" in again.stderr, again.stderr  # nothing paid twice
    refused = anvil("bench", str(TASKS), "--model", "scripted", "--out", str(shards[0]), env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    merged = tmp_path / "merged"
    m = anvil("bench", "merge", *map(str, shards), "--out", str(merged), env=env, cwd=tmp_path)
    assert m.returncode == 0 and "6 result row(s)" in m.stdout, m.stderr
    rep = anvil("bench", "report", str(merged), "--json", env=env, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    report = json.loads(rep.stdout)
    premium, frugal = report["policies"]["premium-everywhere"], report["policies"]["frugal"]
    assert (premium["tasks"], premium["resolved"], frugal["tasks"], frugal["resolved"]) == (3, 2, 3, 1)
    assert frugal["failures_by_stage"] == {"test": 2} and frugal["dollars"] == "0"  # local models are free
    assert float(premium["dollars_per_resolved"]) > float(premium["dollars_per_task"]) > 0
    (pair,) = report["pairs"]
    assert pair["tasks"] == 3 and pair["both"] == 1 and pair["neither"] == 1 and pair["only_a"] + pair["only_b"] == 1

    rows = {(r["task"], r["policy"]): r for r in report["rows"]}
    ok = rows["search", "premium-everywhere"]
    assert ok["verify"]["commands"][0]["exit_code"] == 0 and "test_search_hidden" not in json.dumps(ok["commands"])
    assert ok["models_by_stage"]["build"] == ["scripted-premium"] and ok["calls"] >= 7
    assert sum(float(d) for d in ok["dollars_by_stage"].values()) == pytest.approx(float(ok["dollars"]))
    assert ok["tokens"]["input"] > 0 and ok["run_id"]
    retry = rows["search-fixed-on-retry", "frugal"]
    assert retry["status"] == "unresolved" and "retry budget" in retry["failure_reason"]
    run_dir = tmp_path / "shard1" / "work" / "frugal" / "search-fixed-on-retry" / "repo" / ".anvil" / "runs"
    assert (run_dir / retry["run_id"] / "state.json").is_file()  # the task's own run folder

    svg = ET.parse(merged / "frontier.svg").getroot()
    points = [g.get("data-policy") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert sorted(points) == ["frugal", "premium-everywhere"]

    cost = anvil("cost", "report", "--all", "--by", "task", "--json", env={**env, "ANVIL_HOME": str(merged / "home")},
                 cwd=tmp_path)
    assert cost.returncode == 0, cost.stderr
    by_task = {g["task"]: g for g in json.loads(cost.stdout)["rows"]}
    assert set(by_task) == {"search", "search-fixed-on-retry", "search-never-fixed"}
    total = sum(float(r["dollars"]) for r in report["rows"])
    assert sum(float(g["dollars"]) for g in by_task.values()) == pytest.approx(total)


BIG = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n\n" for i in range(900))  # ~40,000 characters


def test_the_oracle_never_lands_a_change_it_was_not_shown(tmp_path, env):
    """The fix is at the end of a file longer than build's view: the oracle may only land it by reading
    those lines through a tool; shown nothing, it must fail at build, saying what it could not see."""
    repo = tmp_path / "big"
    repo.mkdir()
    (repo / "big.py").write_text(BIG)
    n = BIG.splitlines().index("def helper_899(value):") + 1
    # trailing context too: a hunk with none is anchored to the end of the file by `git apply`
    gold = (f"diff --git a/big.py b/big.py\n--- a/big.py\n+++ b/big.py\n@@ -{n},4 +{n},4 @@\n"
            " def helper_899(value):\n-    return value * 899\n+    return value * 900\n \n \n")
    (tmp_path / "gold.patch").write_text(gold)
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n  - {id: big-file, repo: big, request: make helper_899 multiply by 900, gold_patch: gold.patch}\n")
    r = anvil("bench", str(tmp_path / "tasks.yaml"), "--model", "oracle", "--verify", "diff", "--out",
              str(tmp_path / "out"), "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["rows"]
    notes = row["model_notes"]
    if row["resolved"]:
        assert notes["tool_calls"] >= 1  # it read the region with read_file before editing it
    else:
        assert row["failure_stage"] == "build" and any(f"big.py:{n}" in x for x in notes["not_shown"]), row
        assert "return value * 900" not in (tmp_path / "out" / "work" / "default" / "big-file" / "run.out").read_text()


def test_noisy_model_runs_and_says_what_it_injected(tmp_path, env):
    r = anvil("bench", str(TASKS), "--model", "noisy", "--noise", "0.4", "--seed", "3", "--only", "search",
              "--out", str(tmp_path / "out"), "--json", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["rows"]
    assert row["status"] in ("resolved", "unresolved") and sum(row["model_notes"]["injected"].values()) >= 1
