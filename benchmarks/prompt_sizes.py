"""Prompt sizes per stage of one `anvil demo` run, read from the run folder's exchanges.

    python benchmarks/prompt_sizes.py [--anvil "anvil"] [--json]

Runs `anvil demo --dir <tmp>` with the given command (another checkout's anvil can be
compared this way), then sums, per stage, the characters sent: every message's text and
tool-call arguments, plus the tool schemas offered. Prints one row per stage: calls, the
characters of the largest request (and how many of them are the offered tools' schemas),
and the total over all of the stage's calls.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def request_chars(request: dict[str, Any]) -> int:
    total = 0
    for m in request.get("messages", []):
        total += len(m.get("content") or "")
        for c in m.get("tool_calls") or []:
            total += len(json.dumps(c.get("arguments", {})))
    total += sum(len(json.dumps(t)) for t in request.get("tools") or [])
    return total


def measure(anvil: str) -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "demo"
        subprocess.run([*shlex.split(anvil), "demo", "--dir", str(where), "--json"], check=True,
                       capture_output=True, text=True)
        out: dict[str, dict[str, int]] = {}
        for path in sorted(where.glob(".anvil/runs/*/exchanges/*.json")):
            ex = json.loads(path.read_text())
            row = out.setdefault(ex["stage"], {"calls": 0, "largest": 0, "total": 0, "tools": 0})
            n = request_chars(ex["request"])
            row["calls"] += 1
            if n > row["largest"]:
                row["largest"] = n
                row["tools"] = sum(len(json.dumps(t)) for t in ex["request"].get("tools") or [])
            row["total"] += n
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--anvil", default="anvil")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = measure(args.anvil)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'stage':<9} {'calls':>5} {'largest':>9} {'of it tools':>11} {'total':>9}")
    for stage, r in rows.items():
        print(f"{stage:<9} {r['calls']:>5} {r['largest']:>9,} {r['tools']:>11,} {r['total']:>9,}")
    print(f"{'all':<9} {sum(r['calls'] for r in rows.values()):>5} {'':>9} "
          f"{sum(r['total'] for r in rows.values()):>9,}")


if __name__ == "__main__":
    main()
