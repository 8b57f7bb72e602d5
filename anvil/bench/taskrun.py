"""One task under one policy: an isolated copy, the real `anvil run`, verification, one result row.

Where things go (`OUT` is `--out`):

    OUT/work/<policy>/<task>/repo      the task's own clone (its run folder: repo/.anvil/runs/<id>/)
    OUT/work/<policy>/<task>/verify    the checkout the verification runs in
    OUT/work/<policy>/<task>/run.out   `anvil run`'s stdout (its --json result) and run.err
    OUT/home/                          ANVIL_HOME of offline models: their models.yaml and the ledger

ANVIL_HOME: with an offline model (`--model scripted|oracle|noisy`) every run of a bench shares
one ANVIL_HOME in the bench folder: its models.yaml names the bench's model server, and its
ledger holds exactly this bench's calls (so `bench merge` can join shards' ledgers and the
user's own ledger never sees scripted spend). With your configured models (no `--model`) the
runs use your ANVIL_HOME, keys and ledger as `anvil run` would; every row carries the task id
either way (`anvil cost report --by task`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from anvil.bench.envs import Environments
from anvil.bench.oracle import Gold, Oracle
from anvil.bench.policies import Policy
from anvil.bench.repos import RepoError, checkout, diff, final_commit
from anvil.bench.results import ResultRow
from anvil.bench.server import BenchServer, responder_for
from anvil.bench.task import Task
from anvil.bench.verify import CannotVerify, Verdict, VerifyMode, verify_diff, verify_tests
from anvil.demo.scripted_run import KEY_ENV, ScriptedPipeline
from anvil.ledger.db import dec_text, from_pico
from anvil.ledger.migrations import unpriced_sql

ModelMode = Literal["scripted", "oracle", "noisy"]
RUN_TIMEOUT = 1800.0
NO_ENVIRONMENT = "skipped: no environment"


@dataclass
class BenchSetup:
    """What every task run of one bench shares."""

    out: Path
    anvil: str  # the anvil console script
    model: ModelMode | None
    verify: VerifyMode
    envs: Environments
    server: BenchServer | None = None
    home: Path | None = None  # ANVIL_HOME of offline runs
    noise: float = 0.25
    seed: int = 0
    timeout: float = RUN_TIMEOUT
    shard: str = ""
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def ledger_path(self) -> Path:
        if self.home is not None:
            return self.home / "ledger.db"
        from anvil.ledger.db import default_path

        return default_path()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def clean_env(setup: BenchSetup, key: str | None) -> dict[str, str]:
    """The environment of one `anvil run`: offline runs get no real key and the bench's ANVIL_HOME."""
    env = {k: v for k, v in setup.base_env.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.pop("PYTHONPATH", None)
    if setup.model is not None:
        env = {k: v for k, v in env.items()
               if not k.endswith(("_API_KEY", "_TOKEN")) and not k.startswith("ANVIL_")}
        assert setup.home is not None and key is not None
        env.update({"ANVIL_HOME": str(setup.home), KEY_ENV: key})
    env["NO_COLOR"] = "1"
    env["PATH"] = f"{Path(setup.anvil).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    for var, value in (("GIT_AUTHOR_NAME", "anvil bench"), ("GIT_AUTHOR_EMAIL", "bench@anvil.invalid"),
                       ("GIT_COMMITTER_NAME", "anvil bench"), ("GIT_COMMITTER_EMAIL", "bench@anvil.invalid")):
        env.setdefault(var, value)
    return env


# ------------------------------------------------------------ the model of one run


@dataclass
class RunModel:
    key: str | None
    brain: Any = None  # the Oracle / NoisyOracle, for its notes

    def notes(self) -> dict[str, Any]:
        if self.brain is None:
            return {}
        oracle = getattr(self.brain, "oracle", self.brain)
        out: dict[str, Any] = {"turns": oracle.turns, "tool_calls": oracle.tool_calls, "not_shown": list(oracle.notes)}
        if hasattr(self.brain, "injected"):
            from anvil.bench.noisy import describe

            out["injected"] = describe(self.brain.injected)
        return out


def model_for(setup: BenchSetup, task: Task) -> RunModel:
    if setup.model is None:
        return RunModel(None)
    assert setup.server is not None
    if setup.model == "scripted":
        assert task.script is not None
        return RunModel(setup.server.register(ScriptedPipeline(answers=task.script)))
    oracle = Oracle(Gold(task.gold_patch, task.summary, task.fail_to_pass))
    brain: Any = oracle
    if setup.model == "noisy":
        from anvil.bench.noisy import NoisyOracle

        brain = NoisyOracle(oracle, setup.noise, seed=zlib.crc32(f"{setup.seed}:{task.id}".encode()))
    return RunModel(setup.server.register(responder_for(brain)), brain)


# ------------------------------------------------------------ the repository's settings


def test_command_for(setup: BenchSetup, task: Task, repo: Path) -> tuple[str | None, list[str], str]:
    """(the run's test command, source roots, what to record when there is none)."""
    if task.kind == "swebench":
        spec = setup.envs.spec_for(task)
        if spec is None:
            return None, [], NO_ENVIRONMENT if setup.verify == "diff" else "not configured: no environment"
        if spec.run_test_command:
            env = setup.envs.get(task)
            assert env is not None
            return f"PATH={env.venv / 'bin'}:$PATH {spec.run_test_command}", [], ""
        return None, [], "not configured in the bench environment"
    if task.test_command is not None:
        return task.test_command, [], ""
    from anvil.config.detect import detect

    found = detect(repo)
    return found.test_command, list(found.source_roots), "none detected"


def write_settings(repo: Path, policy: Policy, test_command: str | None, roots: list[str]) -> list[Path]:
    """The repo's `.anvil/`: config.yaml (base branch, test command) and the policy's files."""
    from anvil.bench.repos import BASE_BRANCH

    folder = repo / ".anvil"
    folder.mkdir(exist_ok=True)
    config = {"default_branch": BASE_BRANCH, "test_command": test_command, "source_roots": roots}
    written = [folder / "config.yaml"]
    written[0].write_text("# written by anvil bench\n" + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    for name, src in policy.files.items():
        shutil.copyfile(src, folder / name)
        written.append(folder / name)
    return written


def approve_settings(repo: Path, env: dict[str, str]) -> bool:
    """Approve the `.anvil/` files the bench wrote, where anvil has repository trust
    (`anvil.config.trust.approve(repo_root)`, recorded in the run's ANVIL_HOME). False when this
    anvil has no trust layer (then the files are read as they are)."""
    import importlib.util

    if importlib.util.find_spec("anvil.config.trust") is None:
        return False
    code = "import sys, pathlib; from anvil.config.trust import approve; approve(pathlib.Path(sys.argv[1]))"
    p = subprocess.run([sys.executable, "-c", code, str(repo)], env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RepoError(f"could not approve the bench's .anvil/ files: {p.stderr.strip()[-300:]}")
    return True


# ------------------------------------------------------------ the ledger


def ledger_totals(path: Path, run_id: str) -> dict[str, Any]:
    """Dollars, tokens, calls and attempts of one run, by stage, from the ledger (the source of truth)."""
    if not path.is_file():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT stage, COUNT(*), SUM(outcome = 'ok'), SUM(input_tokens), SUM(cache_read_tokens), "
            f"SUM(cache_write_tokens), SUM(output_tokens), COALESCE(SUM(pico_usd), 0), SUM({unpriced_sql()}) "
            "FROM attempts WHERE run_id = ? GROUP BY stage ORDER BY MIN(id)", (run_id,)).fetchall()
    finally:
        con.close()
    out: dict[str, Any] = {"by_stage": {}, "tokens": {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0},
                           "calls": 0, "attempts": 0, "pico": 0, "unpriced": 0}
    for stage, n, ok, inp, cr, cw, outp, pico, unpriced in rows:
        out["by_stage"][stage] = dec_text(from_pico(int(pico)) or Decimal(0))
        for k, v in (("input", inp), ("cache_read", cr), ("cache_write", cw), ("output", outp)):
            out["tokens"][k] += int(v or 0)
        out["calls"] += int(ok or 0)
        out["attempts"] += int(n)
        out["pico"] += int(pico)
        out["unpriced"] += int(unpriced or 0)
    return out


# ------------------------------------------------------------ one task


def _run_anvil(setup: BenchSetup, task: Task, repo: Path, env: dict[str, str], work: Path) -> tuple[int | None, str]:
    """`anvil run` on the task; (exit code or None when it timed out, stdout)."""
    with open(work / "run.err", "w", encoding="utf-8") as err:
        proc = subprocess.Popen([setup.anvil, "run", "-", "--yes", "--json", "--task", task.id], cwd=repo, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(task.request, timeout=setup.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # anvil saves its state on SIGTERM
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            (work / "run.out").write_text(out or "", encoding="utf-8")
            return None, out or ""
    (work / "run.out").write_text(out, encoding="utf-8")
    return proc.returncode, out


def _state(result: dict[str, Any]) -> dict[str, Any]:
    path = Path(str(result.get("run_dir") or "")) / "state.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _commands(state: dict[str, Any], none_reason: str) -> dict[str, str]:
    stages = state.get("stages") or {}
    test = ((stages.get("test") or {}).get("data") or {}).get("result") or {}
    validate = ((stages.get("validate") or {}).get("data") or {}).get("result") or {}
    out = {"test": none_reason if test.get("command") is None and test else (test.get("summary") or "not run")}
    if not test:
        out["test"] = "not reached"
    cmds = validate.get("commands") or []
    out["validate"] = ("; ".join(f"{c['command']}: {'ok' if c['passed'] else 'failed'}" for c in cmds) if cmds
                       else (none_reason if none_reason == NO_ENVIRONMENT else "none configured"))
    return out


def run_task(setup: BenchSetup, task: Task, policy: Policy) -> ResultRow:
    """Run, verify, and describe one (task, policy); never raises for the task's own failures."""
    work = setup.out / "work" / policy.name / task.slug
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    row = ResultRow(task=task.id, policy=policy.name, status="error", model=setup.model or "configured",
                    verify_mode=setup.verify, shard=setup.shard)
    t0 = time.monotonic()
    model = RunModel(None)
    try:
        repo = work / "repo"
        base = checkout(task.source, task.base, repo, exclude=task.exclude)
        test_cmd, roots, none_reason = test_command_for(setup, task, repo)
        write_settings(repo, policy, test_cmd, roots)
        model = model_for(setup, task)
        env = clean_env(setup, model.key)
        approve_settings(repo, env)
        t_run = time.monotonic()
        code, out = _run_anvil(setup, task, repo, env, work)
        row.run_s = round(time.monotonic() - t_run, 2)
        try:
            result = json.loads(out) if out.strip() else {}
        except ValueError:
            result = {}
        if not result.get("run_id"):
            err = (work / "run.err").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            said = [line for line in err if line.startswith("anvil: error:")] or err[-1:] or [f"exit {code}"]
            row.failure_stage, row.failure_reason = "setup", f"anvil run did not start: {said[-1]}"[:500]
            return row
        _fill_from_run(row, result, _state(result), setup, none_reason)
        if code is None:
            row.status, row.failure_stage = "unresolved", "timeout"
            row.failure_reason = f"the run took longer than {setup.timeout:.0f} s"
            return row
        head = final_commit(repo, result.get("branch")) if result.get("status") == "done" else None
        if head is None:
            row.status = "unresolved"
            return row
        (work / "final.patch").write_text(diff(repo, base, head), encoding="utf-8")
        t_verify = time.monotonic()
        verdict = _verify(setup, task, repo, base, head, work)
        row.verify_s = round(time.monotonic() - t_verify, 2)
        row.verify = verdict.to_json()
        row.resolved = verdict.resolved
        row.status = "resolved" if verdict.resolved else "unresolved"
        if not verdict.resolved:
            row.failure_stage = "verify"
            row.failure_reason = _verify_reason(verdict)
        return row
    except CannotVerify as exc:
        row.status, row.failure_stage, row.failure_reason = "error", "verify", str(exc)[:500]
        return row
    except Exception as exc:  # noqa: BLE001 - a task that cannot run is a row, not the end of the bench
        row.status, row.failure_stage = "error", row.failure_stage or "setup"
        row.failure_reason = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:500]
        return row
    finally:
        row.model_notes = model.notes()
        if model.key and setup.server is not None:
            setup.server.unregister(model.key)
        row.wall_s = round(time.monotonic() - t0, 2)
        row.finished_at = _now()


def _fill_from_run(row: ResultRow, result: dict[str, Any], state: dict[str, Any], setup: BenchSetup,
                   none_reason: str) -> None:
    row.run_id = result["run_id"]
    row.exit_code = result.get("exit_code")
    stages = state.get("stages") or {}
    row.models_by_stage = {name: list(s.get("models") or []) for name, s in stages.items() if s.get("models")}
    row.burns = len(result.get("burns") or [])
    row.commands = _commands(state, none_reason)
    if result.get("status") != "done":
        failed = next((n for n, s in stages.items() if s.get("status") == "failed"), None)
        row.failure_stage = failed or str(result.get("status") or "run")
        row.failure_reason = str(result.get("error") or "")[:500]
    totals = ledger_totals(setup.ledger_path, row.run_id or "")
    if totals:
        row.dollars = dec_text(from_pico(totals["pico"]) or Decimal(0))
        row.dollars_by_stage = totals["by_stage"]
        row.tokens, row.calls, row.attempts = totals["tokens"], totals["calls"], totals["attempts"]
        row.unpriced_calls = totals["unpriced"]


def _verify(setup: BenchSetup, task: Task, repo: Path, base: str, head: str, work: Path) -> Verdict:
    if setup.verify == "diff":
        return verify_diff(task, repo, base, head, work)
    # the checks run with the runs' environment, less the bench's model key
    env = clean_env(setup, "none" if setup.model else None)
    env.pop(KEY_ENV, None)
    return verify_tests(task, repo, head, work, setup.envs, env)


def _verify_reason(verdict: Verdict) -> str:
    d = verdict.detail
    if verdict.mode == "diff":
        return "the final diff differs from the gold patch in " + ", ".join(d.get("differ") or [])
    if d.get("error"):
        return str(d["error"])
    if "fail_to_pass" in d:
        return f"FAIL_TO_PASS {d['fail_to_pass']}, PASS_TO_PASS {d['pass_to_pass']} passed"
    failed = [c["command"] for c in d.get("commands") or [] if c["exit_code"] != 0]
    return "verify command failed: " + "; ".join(failed)
