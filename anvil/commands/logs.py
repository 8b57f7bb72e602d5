"""`anvil logs [RUN]`: where anvil writes what it did, so nobody has to guess.

Without RUN: the ledger, the embedded llama.cpp server's log, and this
repository's run folders (the newest first). With RUN: that run's
`events.jsonl`, its exchanges and artifacts. Paths on stdout, one per line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def _entry(what: str, path: Path) -> dict[str, Any]:
    return {"what": what, "path": str(path), "exists": path.exists(),
            "bytes": path.stat().st_size if path.is_file() else None}


def run(run_id: str | None = None, json_output: bool = False) -> int:
    from anvil.errors import NotARepoError
    from anvil.ledger.db import default_path
    from anvil.paths import anvil_home, find_repo_root
    from anvil.run.store import RunStore

    root = find_repo_root()
    entries: list[dict[str, Any]] = []
    if run_id is not None:
        if root is None:
            raise NotARepoError("`anvil logs RUN`")
        run = RunStore(root).load(run_id)
        entries.append(_entry("events", run.dir / "events.jsonl"))
        entries += [_entry("exchange", p) for p in run.exchanges()]
        entries += [_entry("artifact", run.dir / n) for n in run.artifacts()]
    else:
        logs = anvil_home() / "logs"
        entries.append(_entry("ledger", default_path()))
        entries.append(_entry("llama.cpp server", logs / "llamacpp.log"))
        if root is not None:
            store = RunStore(root)
            entries.append(_entry("runs", store.root))
            for rid in sorted(store.ids(), reverse=True)[:10]:
                entries.append(_entry(f"run {rid} events", store.root / rid / "events.jsonl"))
    if json_output:
        from anvil.ui.output import print_json

        print_json({"logs": entries})
        return 0
    for e in entries:
        note = "" if e["exists"] else "  (not created yet)"
        print(f"{e['what']:<28} {e['path']}{note}")
    if run_id is None and root is None:
        print("not inside a git repository: run folders are listed from inside one", file=sys.stderr)
    return 0
