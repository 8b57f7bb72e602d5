"""The pipeline's own overhead: a whole `anvil run` on examples/python-cli against a zero-latency
scripted server, minus the time spent in model calls and in the repo's test command.

    python benchmarks/pipeline_overhead.py [--runs 3]

Each run is a real `anvil run` subprocess (CLI start-up, config, availability, resolver, walker,
adapters over loopback, ledger, run store, git worktree, edits, retrieval, commit) on a fresh
copy of the example repo. Model time is the ledger's latency of every attempt; command time is
what the test stage (and validate's commands) measured: every run of a command, the test stage's
second run of the planned test files included. Target (issue 16): overhead at most 0.5 s per run.

The overhead is wall time, so a loaded machine inflates it. Beside it, CPU time (user+sys): the anvil
process's own, read from /proc while it is a zombie (waited with WNOWAIT, so nothing of its children is
in it), and its reaped children's (git, the command guard, the test commands); the pipeline's CPU is the
process's own plus its children's minus the test commands' (the test stage measures those).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers  # noqa: E402
from tests.e2e_helpers import ANVIL, E2E, start  # noqa: E402


def timed_run(e2e: E2E, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """One `anvil` subprocess: its result, wall seconds, its own CPU seconds and its children's."""
    import threading

    tick = os.sysconf("SC_CLK_TCK")
    t0 = time.perf_counter()
    p = subprocess.Popen([ANVIL, *args], cwd=e2e.repo, env=e2e.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    streams: dict[str, str] = {}
    readers = [threading.Thread(target=lambda n=n, f=f: streams.__setitem__(n, f.read()))
               for n, f in (("out", p.stdout), ("err", p.stderr))]
    for t in readers:
        t.start()
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc still has its times
    wall = time.perf_counter() - t0
    fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) / tick for x in fields[11:15])
    code = p.wait()
    for t in readers:
        t.join()
    return subprocess.CompletedProcess(p.args, code, streams["out"], streams["err"]), wall, \
        utime + stime, cutime + cstime


def one_run(tmp: Path) -> dict[str, float]:
    e2e = start(tmp, ScriptedPipeline(example_answers()))
    try:
        e2e.init()
        r, wall, cpu_self, cpu_children = timed_run(e2e, "run", REQUEST, "--yes", "--json")
    finally:
        e2e.server.stop()
    if r.returncode != 0:
        raise SystemExit(f"run failed ({r.returncode}):\n{r.stderr}")
    out = json.loads(r.stdout)
    con = sqlite3.connect(e2e.home / "ledger.db")
    model = con.execute("SELECT COALESCE(SUM(latency_s), 0) FROM attempts WHERE run_id = ?",
                        (out["run_id"],)).fetchone()[0]
    con.close()
    state = json.loads((Path(out["run_dir"]) / "state.json").read_text())
    commands = sum(float(state["stages"][s]["data"].get("command_seconds", 0.0)) for s in ("test", "validate"))
    commands_cpu = float(state["stages"]["test"]["data"].get("command_cpu_seconds", 0.0))
    per_stage = {s["stage"]: s["seconds"] for s in out["stages"]}
    return {"wall": wall, "model": model, "commands": commands, "overhead": wall - model - commands,
            "cpu_self": cpu_self, "cpu_children": cpu_children, "cpu_commands": commands_cpu,
            "cpu_pipeline": cpu_self + cpu_children - commands_cpu,
            **{f"stage:{k}": v for k, v in per_stage.items()}}


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results = []
    for _i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_run(Path(tmp)))
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"anvil run on examples/python-cli, zero-latency scripted models, median of {args.runs} run(s):")
    print(f"  wall time              {med['wall']:.3f} s")
    print(f"  model calls (ledger)   {med['model']:.3f} s")
    print(f"  test/lint commands     {med['commands']:.3f} s")
    print(f"  pipeline overhead      {med['overhead']:.3f} s   (target <= 0.5 s; "
          f"best run {min(r['overhead'] for r in results):.3f} s: the machine's load shows in the median)")
    print(f"  CPU (user+sys): anvil process {med['cpu_self']:.3f} s, its child processes {med['cpu_children']:.3f} s "
          f"(test commands {med['cpu_commands']:.3f} s); pipeline CPU {med['cpu_pipeline']:.3f} s "
          "(own + children - test commands)")
    print("  per stage (wall, incl. model and commands): "
          + ", ".join(f"{k[6:]} {v:.2f}s" for k, v in med.items() if k.startswith("stage:")))
    each = ", ".join("{:.3f}".format(r["overhead"]) for r in results)
    print(f"  overhead per run: {each} s")
    each_cpu = ", ".join("{:.3f}".format(r["cpu_pipeline"]) for r in results)
    print(f"  pipeline CPU per run: {each_cpu} s")


if __name__ == "__main__":
    main()
