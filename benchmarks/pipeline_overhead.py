"""The pipeline's own overhead: a whole `anvil run` on examples/python-cli against a zero-latency
scripted server, minus the time spent in model calls and in the repo's test command.

    python benchmarks/pipeline_overhead.py [--runs 3]

Each run is a real `anvil run` subprocess (CLI start-up, config, availability, resolver, walker,
adapters over loopback, ledger, run store, git worktree, edits, retrieval, commit) on a fresh
copy of the example repo. Model time is the ledger's latency of every attempt; command time is
what the test stage (and validate's commands) measured. Target: overhead under 2 s per run.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil.demo.scripted_run import REQUEST, ScriptedPipeline, example_answers  # noqa: E402
from tests.e2e_helpers import start  # noqa: E402


def one_run(tmp: Path) -> dict[str, float]:
    e2e = start(tmp, ScriptedPipeline(example_answers()))
    try:
        e2e.init()
        t0 = time.perf_counter()
        r = e2e.anvil("run", REQUEST, "--yes", "--json")
        wall = time.perf_counter() - t0
    finally:
        e2e.server.stop()
    if r.code != 0:
        raise SystemExit(f"run failed ({r.code}):\n{r.stderr}")
    out = json.loads(r.stdout)
    con = sqlite3.connect(e2e.home / "ledger.db")
    model = con.execute("SELECT COALESCE(SUM(latency_s), 0) FROM attempts WHERE run_id = ?",
                        (out["run_id"],)).fetchone()[0]
    con.close()
    state = json.loads((Path(out["run_dir"]) / "state.json").read_text())
    commands = sum(float(state["stages"][s]["data"].get("command_seconds", 0.0)) for s in ("test", "validate"))
    per_stage = {s["stage"]: s["seconds"] for s in out["stages"]}
    return {"wall": wall, "model": model, "commands": commands, "overhead": wall - model - commands,
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
    print(f"  pipeline overhead      {med['overhead']:.3f} s   (target < 2 s; "
          f"best run {min(r['overhead'] for r in results):.3f} s: the machine's load shows in the median)")
    print("  per stage (wall, incl. model and commands): "
          + ", ".join(f"{k[6:]} {v:.2f}s" for k, v in med.items() if k.startswith("stage:")))
    each = ", ".join("{:.3f}".format(r["overhead"]) for r in results)
    print(f"  overhead per run: {each} s")


if __name__ == "__main__":
    main()
