"""Money in flight: SIGKILL `anvil run` at many points, resume, and count what the ledger missed.

For each kill point (the middle of each stage's streamed model call, and the middle of the test
command) a fresh copy of examples/python-cli runs against the scripted vendor server; anvil is
SIGKILLed there, then `anvil resume` finishes the run. Reported:

- calls unrecorded: calls the server answered (or was answering) with no ledger row for the
  run, counted right after the kill (what `cost report` and the budget cannot see);
- calls paid twice: calls beyond an uninterrupted run's, other than the one cut off by the
  kill (a finished call bought again on resume: e.g. the test stage's tests thrown away);
- test commands left running: the kill's test command still alive 5 s after anvil died.

    python benchmarks/kills.py                    # this checkout's `anvil`
    python benchmarks/kills.py --anvil /path/to/other/venv/bin/anvil   # e.g. main, for "before"
    python benchmarks/kills.py --rounds 2 --json

Needs the repo's test extras (the scripted server and the e2e helpers come from this checkout;
only the `anvil` under test changes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers, stage_of  # noqa: E402
from anvil.providers.scripted.reply import RecordedRequest, Reply  # noqa: E402
from tests import e2e_helpers  # noqa: E402

STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")
STREAM_SECONDS = 3.0  # a killed stage's answer streams over this long; the kill lands in its middle


class SlowStage(ScriptedPipeline):
    """The scripted pipeline, with one stage's first answer streamed slowly (to be killed in)."""

    slow: str | None = None

    def __call__(self, req: RecordedRequest) -> Reply:
        reply = super().__call__(req)
        if self.slow and stage_of(req) == self.slow and self.count(self.slow) == 1 and reply.chunks:
            return replace(reply, chunk_delay=STREAM_SECONDS / max(len(reply.chunks), 1))
        return reply


@dataclass
class Outcome:
    point: str
    answered_at_kill: int
    rows_at_kill: int
    calls_total: int
    resumed_ok: bool
    paid_twice: int
    command_left_running: bool

    @property
    def unrecorded(self) -> int:
        return max(self.answered_at_kill - self.rows_at_kill, 0)


def _rows(home: Path, run_id: str) -> int:
    db = home / "ledger.db"
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ?", (run_id,)).fetchone()[0]
    finally:
        con.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def one(tmp: Path, point: str, anvil: str, reference_calls: int) -> Outcome:
    tmp.mkdir(parents=True)
    pipeline = SlowStage(example_answers())
    pipeline.slow = point if point in STAGES else None
    e2e = e2e_helpers.start(tmp, pipeline)
    marker = tmp / "command-started"
    try:
        e2e_helpers.ANVIL = anvil
        e2e.init()
        if point == "test-command":
            sleeper = tmp / "sleeper.py"
            sleeper.write_text(textwrap.dedent(f"""
                import os, pathlib, subprocess, sys, time
                m = pathlib.Path({str(marker)!r})
                if not m.exists():
                    m.write_text(str(os.getpid()))
                    time.sleep(120)
                sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]))
            """))
            cfg = e2e.repo / ".anvil" / "config.yaml"
            lines = [x for x in cfg.read_text().splitlines() if not x.startswith("test_command")]
            cfg.write_text("\n".join(lines) + f"\ntest_command: {json.dumps(sys.executable + ' ' + str(sleeper))}\n")
        proc = e2e.popen("run", REQUEST, "--yes")
        if point == "test-command":
            _wait(marker.exists, 120)
            time.sleep(0.3)
        else:
            _wait(lambda: pipeline.count(point) >= 1, 120)
            time.sleep(STREAM_SECONDS / 2)
        answered = len(pipeline.calls)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        runs = [r for r in os.listdir(e2e.repo / ".anvil" / "runs") if r[0].isdigit()]
        run_id = runs[0]
        rows = _rows(e2e.home, run_id)
        left = False
        if point == "test-command" and marker.exists():
            pid = int(marker.read_text())
            left = not _wait(lambda: not _alive(pid), 5.0)
            if left:
                os.kill(pid, signal.SIGKILL)
        r = e2e.anvil("resume", run_id, "--json", timeout=300)
        in_flight = 1 if point in STAGES else 0
        calls = len(pipeline.calls)
        return Outcome(point, answered, rows, calls, r.code == 0,
                       max(calls - reference_calls - in_flight, 0), left)
    finally:
        e2e.server.stop()


def reference(tmp: Path, anvil: str) -> int:
    tmp.mkdir(parents=True)
    pipeline = ScriptedPipeline(example_answers())
    e2e = e2e_helpers.start(tmp, pipeline)
    try:
        e2e_helpers.ANVIL = anvil
        e2e.init()
        e2e.run_ok()
        return len(pipeline.calls)
    finally:
        e2e.server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anvil", default=str(Path(sys.executable).with_name("anvil")), help="the anvil to test")
    ap.add_argument("--rounds", type=int, default=1, help="kills per point")
    ap.add_argument("--points", default=",".join([*STAGES, "test-command"]))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    points = [p for p in args.points.split(",") if p]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="anvil-kills-") as td:
        ref = reference(Path(td) / "ref", args.anvil)
        for n in range(args.rounds):
            for point in points:
                o = one(Path(td) / f"{point}-{n}-{len(outcomes)}", point, args.anvil, ref)
                outcomes.append(o)
                print(f"{point:13} unrecorded {o.unrecorded}  paid twice {o.paid_twice}  "
                      f"command left running {o.command_left_running}  resumed {'ok' if o.resumed_ok else 'FAILED'}",
                      file=sys.stderr)
    summary = {"anvil": args.anvil, "reference_calls": ref, "kills": len(outcomes),
               "calls_unrecorded": sum(o.unrecorded for o in outcomes),
               "calls_paid_twice": sum(o.paid_twice for o in outcomes),
               "test_commands_left_running": sum(o.command_left_running for o in outcomes),
               "resumes_failed": sum(not o.resumed_ok for o in outcomes)}
    if args.json:
        summary["outcomes"] = [dict(o.__dict__, unrecorded=o.unrecorded) for o in outcomes]
        print(json.dumps(summary, indent=2))
    else:
        print(f"kills tried {summary['kills']} / calls unrecorded {summary['calls_unrecorded']} / "
              f"calls paid twice {summary['calls_paid_twice']} / test commands left running "
              f"{summary['test_commands_left_running']} / resumes failed {summary['resumes_failed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
