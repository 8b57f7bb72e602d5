"""A whole bench: tasks x policies, a few at a time, each finished pair written as it lands.

`bench.json` in the folder records what was run (tasks file, policies, model, verify mode,
shard), so `--resume` continues the same bench and `bench merge` knows its shards. Killed at
any point, the rows already written stand; `--resume` runs the rest (and what errored).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from anvil.bench.policies import Policy
from anvil.bench.progress import BenchProgress
from anvil.bench.results import ResultRow, ResultStore
from anvil.bench.task import Task
from anvil.bench.taskrun import BenchSetup, run_task
from anvil.errors import UserError

MANIFEST = "bench.json"


@dataclass
class BenchOutcome:
    rows: list[ResultRow]  # every row of the folder (earlier runs included)
    ran: int  # pairs run by this call

    @property
    def errors(self) -> list[ResultRow]:
        return [r for r in self.rows if not r.done]


def check_tasks(tasks: list[Task], setup: BenchSetup) -> None:
    """What the model and verification need from every task, checked before anything runs."""
    if setup.model == "scripted":
        missing = [t.id for t in tasks if not t.script]
        if missing:
            raise UserError(f"--model scripted needs scripted answers; none for {', '.join(missing[:5])}",
                            hint="give the task a `script:` file, or use --model oracle")
    if setup.model in ("oracle", "noisy") or setup.verify == "diff":
        missing = [t.id for t in tasks if not t.gold_patch.strip()]
        if missing:
            raise UserError(f"the oracle and --verify diff need a gold patch; none for {', '.join(missing[:5])}")


def write_manifest(out: Path, manifest: dict[str, object], resume: bool) -> None:
    path = out / MANIFEST
    if path.is_file() and resume:
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("model", "verify"):
            if old.get(key) != manifest.get(key):
                raise UserError(f"--resume: this bench ran with {key}={old.get(key)}, not {manifest.get(key)}")
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def run_bench(tasks: list[Task], policies: list[Policy], setup: BenchSetup, *, workers: int = 1,
              resume: bool = False, stream: TextIO = sys.stderr) -> BenchOutcome:
    store = ResultStore(setup.out)
    existing = store.rows()
    if existing and not resume:
        raise UserError(f"{setup.out} already holds bench results",
                        hint="add --resume to continue that bench, or give another --out")
    done = {r.key for r in existing if r.done}
    todo = [(t, p) for t in tasks for p in policies if (t.id, p.name) not in done]
    if resume and done:
        print(f"anvil bench: resuming: {len(done)} done, {len(todo)} to run", file=stream)
    progress = BenchProgress(stream, len(todo), already=[r for r in existing if r.done])
    pending: set[Future[ResultRow]] = set()
    queue = list(todo)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bench") as pool:
            while queue or pending:
                while queue and len(pending) < max(1, workers):
                    task, policy = queue.pop(0)
                    pending.add(pool.submit(run_task, setup, task, policy))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    row = fut.result()
                    store.append(row)
                    progress.update(row)
    finally:
        queue.clear()
        progress.close()
    return BenchOutcome(store.rows(), len(todo))
