"""The pipeline's ceiling: the oracle model on the SWE-bench Lite dev tasks (flask, requests, pytest).

    python benchmarks/bench_oracle.py [--mirrors DIR] [--out DIR] [--workers 2] [--no-tests]

Two benches through the real `anvil bench` CLI (each task a real `anvil run` in its own clone):

1. every task with `--verify diff` (the final diff against the gold patch, whitespace aside):
   how many tasks can anvil land with a model that knows the answer but may only quote what
   anvil showed it?
2. pytest's tasks with `--verify tests`: the gold tests (test_patch) and their real FAIL_TO_PASS /
   PASS_TO_PASS ids in a venv per environment commit (benchmarks/bench_swebench.yaml; built on
   first use, cached in ~/.cache/anvil/bench-envs).

Repositories: bare mirrors with full history of pallets/flask, psf/requests and pytest-dev/pytest,
named <owner>+<name> (or <owner>+<name>/repo) in --mirrors. Dollars are the scripted catalogue's
prices (cheap $0.5/$2, premium $3/$15 per million tokens in/out). Prints per task: resolved, $,
wall time, model turns, tool calls, tokens, and for each failure its stage and reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (a worktree under wt/ has it one level further up)
DATA = next((p / "shared" / "bench" / "swebench-lite-dev.jsonl" for p in (ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "bench").is_dir()), ROOT.parent / "shared" / "bench" / "swebench-lite-dev.jsonl")
ANVIL = str(Path(sys.executable).with_name("anvil"))


def bench(args: list[str], out: Path) -> list[dict]:
    t0 = time.monotonic()
    p = subprocess.run([ANVIL, "bench", *args, "--out", str(out), "--json"], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit(f"anvil bench failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    print(f"  ({time.monotonic() - t0:.0f} s wall; exit {p.returncode})", file=sys.stderr)
    return json.loads(p.stdout)["rows"]


def show(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'task':28} {'result':11} {'$':>8} {'run':>6} {'verify':>6} {'turns':>5} {'tools':>5} "
          f"{'tokens in/out':>15}  why")
    for r in sorted(rows, key=lambda r: r["task"]):
        notes = r.get("model_notes") or {}
        why = "" if r["resolved"] else f"{r['failure_stage']}: {r['failure_reason'][:90]}"
        if notes.get("not_shown") and not r["resolved"]:
            why += " | not shown: " + "; ".join(notes["not_shown"])[:160]
        if r.get("verify", {}).get("fail_to_pass"):
            why = f"F2P {r['verify']['fail_to_pass']} P2P {r['verify']['pass_to_pass']}" + (f" | {why}" if why else "")
        tok = f"{r['tokens']['input']:,}/{r['tokens']['output']:,}"
        print(f"{r['task']:28} {r['status']:11} {float(r['dollars']):8.4f} {r['run_s']:5.1f}s {r['verify_s']:5.1f}s "
              f"{notes.get('turns', 0):5} {notes.get('tool_calls', 0):5} {tok:>15}  {why}")
    done = [r for r in rows if r["status"] != "error"]
    resolved = sum(r["resolved"] for r in done)
    dollars = sum(float(r["dollars"]) for r in done)
    slowest = max((r["run_s"] for r in rows), default=0)
    print(f"resolved {resolved}/{len(done)} (errors {len(rows) - len(done)}), ${dollars:.4f} in all, "
          f"${dollars / max(len(done), 1):.4f} per task, slowest `anvil run` {slowest:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="/tmp/anvil-bench-oracle")
    ap.add_argument("--workers", default="2")
    ap.add_argument("--no-tests", action="store_true", help="skip the --verify tests bench of pytest's tasks")
    ap.add_argument("--only", default="", help="only these task ids (comma-separated), in both benches")
    a = ap.parse_args()
    out = Path(a.out)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    common = [a.data, "--repos", a.mirrors, "--model", "oracle", "--workers", a.workers]
    only = [i for i in a.only.split(",") if i]
    print("1. every task, --verify diff", file=sys.stderr)
    show("oracle, --verify diff (the gold patch's files, whitespace aside)",
         bench([*common, "--verify", "diff", *(["--only", ",".join(only)] if only else [])], out / "diff"))
    if a.no_tests:
        return
    ids = [json.loads(line)["instance_id"] for line in Path(a.data).read_text().splitlines()
           if line.strip() and json.loads(line)["repo"] == "pytest-dev/pytest"]
    ids = [i for i in ids if i in only] if only else ids
    print("2. pytest's tasks, --verify tests (environments are built on first use: minutes)", file=sys.stderr)
    show("oracle, --verify tests (test_patch applied, FAIL_TO_PASS and PASS_TO_PASS run in a real venv)",
         bench([*common, "--verify", "tests", "--config", str(ROOT / "benchmarks" / "bench_swebench.yaml"),
                "--only", ",".join(ids)], out / "tests"))


if __name__ == "__main__":
    main()
