"""anvil bench's parts: task formats, selection and shards, patches, statistics, the picture, merging."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from anvil.bench.merge import merge
from anvil.bench.patches import parse_patch, patch_files
from anvil.bench.report import report_csv, report_json
from anvil.bench.results import ResultRow, ResultStore, read_rows
from anvil.bench.stats import pairs, summarise, wilson
from anvil.bench.svg import frontier_svg
from anvil.bench.task import Task, load_tasks, parse_shard, select
from anvil.errors import UserError


def git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def row(task: str, policy: str, resolved: bool, dollars: str = "0.01", **kw) -> ResultRow:
    return ResultRow(task=task, policy=policy, status="resolved" if resolved else "unresolved", resolved=resolved,
                     dollars=dollars, failure_stage=None if resolved else kw.pop("stage", "build"), **kw)


# ------------------------------------------------------------ statistics


def test_wilson_interval_matches_known_values():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(22, 26)
    assert (lo, hi) == (pytest.approx(0.6649, abs=1e-3), pytest.approx(0.9387, abs=1e-3))
    assert wilson(5, 5)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)


def test_summaries_pairs_and_json_order():
    rows = [row("t1", "A", True, "0.10"), row("t1", "B", True, "0.02"), row("t2", "A", True, "0.10"),
            row("t2", "B", False, "0.03", stage="test"), row("t3", "A", False, "0.20"), row("t3", "B", False, "0"),
            ResultRow(task="t4", policy="B", status="error", failure_stage="setup")]
    a, b = summarise(rows)
    assert (a.tasks, a.resolved, a.dollars, a.per_resolved) == (3, 2, Decimal("0.40"), Decimal("0.20"))
    assert (b.tasks, b.resolved, b.errors, dict(b.failures)) == (3, 1, 1, {"test": 1, "build": 1})
    (p,) = pairs(rows)
    assert (p.both, p.only_a, p.only_b, p.neither) == (1, 1, 0, 1)
    doc = report_json(rows, None)
    assert list(doc) == ["policies", "pairs", "svg", "rows"]
    assert list(doc["policies"]["A"])[:2] == ["tasks", "resolved"] and doc["policies"]["A"]["tasks"] == 3
    assert doc["policies"]["B"]["dollars_per_resolved"] == "0.05" and len(doc["rows"]) == 7
    assert report_csv(rows).splitlines()[1].startswith("A,3,2,0,")


def test_the_picture_has_one_point_per_policy():
    rows = [row("t1", "cheap", True, "0.01"), row("t1", "premium", True, "0.30"), row("t2", "premium", False, "0.2")]
    svg = ET.fromstring(frontier_svg(summarise(rows)))
    ns = "{http://www.w3.org/2000/svg}"
    groups = svg.findall(f"{ns}g")
    assert [g.get("data-policy") for g in groups] == ["cheap", "premium"]
    cheap, premium = (g.find(f"{ns}circle") for g in groups)
    assert float(cheap.get("cx")) < float(premium.get("cx"))  # cheaper is further left
    assert float(cheap.get("cy")) < float(premium.get("cy"))  # 100 % is higher than 50 %


# ------------------------------------------------------------ results and merging


def test_results_keep_the_latest_row_and_survive_a_cut_line(tmp_path):
    store = ResultStore(tmp_path)
    store.append(ResultRow(task="t1", policy="A", status="error"))
    store.append(row("t1", "A", True))
    with open(store.path, "a") as f:
        f.write('{"task": "t2", "pol')  # a kill mid-write
    rows = read_rows(store.path)
    assert [(r.task, r.status) for r in rows] == [("t1", "resolved")]


def test_merge_joins_rows_and_ledgers_once(tmp_path):
    from anvil.ledger.db import AttemptRow, Ledger

    shards = []
    for i in range(2):
        d = tmp_path / f"shard{i}"
        (d / "home").mkdir(parents=True)
        ResultStore(d).append(row(f"t{i}", "A", i == 0))
        with Ledger(d / "home" / "ledger.db") as led:
            led.record(AttemptRow(ts="2026-12-01T00:00:00.000000Z", run_id=f"run{i}", repo="r", stage="build",
                                  attempt=1, chain_pos=0, provider="p", provider_kind="openai", model="m",
                                  requested_model="m", served_model="m", outcome="ok", error_kind=None,
                                  http_status=200, error_message=None, input_tokens=10, cache_read_tokens=0,
                                  cache_write_tokens=0, output_tokens=5, reasoning_tokens=0, latency_s=0.1,
                                  ttft_s=None, dollars=Decimal("0.5"), cost_source="override", prices_version=None,
                                  request_id=None, task=f"t{i}"))
        shards.append(d)
    out = tmp_path / "merged"
    assert merge(shards, out) == (2, 2)
    assert merge(shards, out) == (2, 0)  # again: no ledger row twice
    import sqlite3

    con = sqlite3.connect(out / "home" / "ledger.db")
    assert sorted(con.execute("SELECT task, run_id FROM attempts")) == [("t0", "run0"), ("t1", "run1")]
    with pytest.raises(UserError):
        merge([tmp_path / "nothing"], out)


# ------------------------------------------------------------ tasks


def test_shards_partition_the_tasks_deterministically():
    tasks = [Task(id=f"t{i}", kind="yaml", request="r", source=Path(".")) for i in range(7)]
    slices = [select(tasks, shard=(i, 3)) for i in range(3)]
    assert sorted(t.id for s in slices for t in s) == sorted(t.id for t in tasks)
    assert [t.id for t in slices[1]] == ["t1", "t4"] and select(tasks, shard=(1, 3)) == slices[1]
    assert [t.id for t in select(tasks, only=["t3", "t5"], limit=1)] == ["t3"]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(UserError):
            parse_shard(bad)
    with pytest.raises(UserError):
        select(tasks, only=["nope"])


def test_swebench_tasks_find_their_mirror(tmp_path):
    repo = tmp_path / "repos" / "acme+widget"
    repo.mkdir(parents=True)
    git(["init", "-q"], repo)
    (repo / "a.py").write_text("x = 1\n")
    git(["add", "-A"], repo)
    git(["commit", "-qm", "i"], repo)
    sha = git(["rev-parse", "HEAD"], repo).strip()
    line = {"instance_id": "acme__widget-1", "repo": "acme/widget", "base_commit": sha, "problem_statement":
            "Widget breaks\n\nmore", "patch": "diff --git a/a.py b/a.py\n", "test_patch": "",
            "FAIL_TO_PASS": '["t.py::test_a"]', "PASS_TO_PASS": "[]", "version": "1.0"}
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (task,) = load_tasks(path, tmp_path / "repos")
    assert task.source == repo and task.fail_to_pass == ["t.py::test_a"] and task.summary == "Widget breaks"
    with pytest.raises(UserError, match="--repos"):
        load_tasks(path, None)
    with pytest.raises(UserError, match="no repository"):
        load_tasks(path, tmp_path)


def test_own_yaml_errors_name_the_key(tmp_path):
    (tmp_path / "repo").mkdir()
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks:\n  - {id: a, repo: repo, request: r, verfiy: 'x'}\n")
    with pytest.raises(UserError, match=r"tasks\.0\.verfiy"):
        load_tasks(path)
    path.write_text("tasks:\n  - {id: a, repo: repo, request: r, verify: 'true'}\n"
                    "  - {id: a, repo: repo, request: r, verify: 'true'}\n")
    with pytest.raises(UserError, match="unique"):
        load_tasks(path)


def test_polyglot_exercise_becomes_a_task_with_the_example_as_gold(tmp_path):
    ex = tmp_path / "python" / "exercises" / "practice" / "two-fer"
    (ex / ".meta").mkdir(parents=True)
    (ex / ".docs").mkdir()
    (ex / ".docs" / "instructions.md").write_text("Return 'One for X, one for me.'\n")
    (ex / ".meta" / "config.json").write_text(json.dumps({"files": {
        "solution": ["two_fer.py"], "test": ["two_fer_test.py"], "example": [".meta/example.py"]}}))
    (ex / "two_fer.py").write_text("def two_fer(name='you'):\n    pass\n")
    (ex / ".meta" / "example.py").write_text("def two_fer(name='you'):\n    return f'One for {name}, one for me.'\n")
    (ex / "two_fer_test.py").write_text("from two_fer import two_fer\n\ndef test_it():\n    assert two_fer('Al')\n")
    (task,) = load_tasks(tmp_path)
    assert task.id == "python/two-fer" and "One for X" in task.request and task.exclude == (".meta",)
    (fp,) = parse_patch(task.gold_patch)
    assert fp.path == "two_fer.py" and "    pass" in fp.hunks[0].old_text and "return f'One" in fp.hunks[0].new_text
    assert "two_fer_test.py" in task.verify_commands[0]


def test_patch_parsing():
    text = ("diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -3,2 +3,3 @@ def f():\n a\n-b\n+c\n+d\n"
            "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hi\n")
    x, new = parse_patch(text)
    hunk = x.hunks[0]
    assert (x.path, hunk.old_start, hunk.old_text, hunk.new_text) == ("x.py", 3, "a\nb\n", "a\nc\nd\n")
    assert new.created and new.hunks[0].new_text == "hi\n"
    assert patch_files(text) == ["x.py", "new.txt"]


def test_environment_specs_and_pytest_statuses(tmp_path):
    from anvil.bench.envs import BenchConfig, Environments, EnvironmentSpec
    from anvil.bench.verify import parse_statuses

    cfg = BenchConfig(environments={"a/b": EnvironmentSpec(setup="one"), "a/b@2.0": EnvironmentSpec(setup="two")})
    envs = Environments(cfg, {})
    task = Task(id="t", kind="swebench", request="r", source=tmp_path, repo_name="a/b", version="2.0")
    assert envs.spec_for(task).setup == "two"
    task.version = "1.0"
    assert envs.spec_for(task).setup == "one"
    task.repo_name = "c/d"
    assert envs.spec_for(task) is None and envs.get(task) is None
    out = ("PASSED t.py::test_a\nFAILED t.py::test_b[x y] - AssertionError: no\nERROR t.py::test_c\n"
           "XFAIL t.py::test_d - reason\n")
    st = parse_statuses(out)
    assert (st["t.py::test_a"], st["t.py::test_b[x y]"], st["t.py::test_c"], st["t.py::test_d"]) == (
        "PASSED", "FAILED", "ERROR", "XFAIL")
