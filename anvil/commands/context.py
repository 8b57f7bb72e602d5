"""`anvil context "request" [--budget N] [--json]`: what the plan stage would see.

Shows the ranked files with their scores and why they rank (path named,
traceback, defines a named identifier, repository-map neighbour), the
chunks chosen for the pack and the tokens used out of the budget, so a user
can see why a model missed a file. Results on stdout; index diagnostics
(files indexed, reused or re-chunked, time) on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHOWN_FILES = 20


def run(request: str, budget: int = 8000, json_output: bool = False) -> int:
    from anvil.errors import NotARepoError, UserError

    if budget < 1:
        raise UserError(f"--budget must be a positive number of tokens, got {budget}")
    if not request.strip():
        raise UserError("the request is empty", hint='anvil context "describe the change or the bug"')
    from anvil.retrieval import NotAGitRepo
    from anvil.retrieval.retriever import Retriever

    try:
        retriever = Retriever.open(Path.cwd())
    except NotAGitRepo:
        raise NotARepoError("`anvil context`") from None
    pack = retriever.query(request, budget)
    st = retriever.stats
    for warning in st.warnings:
        print(f"anvil: warning: {warning}", file=sys.stderr)
    state = "reused" if st.reused_search else f"{st.rechunked} file(s) chunked"
    print(
        f"index: {st.files} files, {st.chunks} chunks ({state}) in {st.seconds:.2f}s; "
        f"query {pack.stats.get('query_seconds', 0.0):.3f}s",
        file=sys.stderr,
    )
    if json_output:
        from anvil.ui.output import print_json

        print_json(pack.to_dict())
        return 0
    _print_human(pack)
    return 0


def _print_human(pack) -> None:
    out = sys.stdout.write
    packed = set(pack.packed_paths())
    if not pack.files:
        out("No file matches the request (no shared words with any indexed file).\n")
        return
    out(f"Ranked files (top {min(SHOWN_FILES, len(pack.files))} of {len(pack.files)}; * = in the pack):\n")
    width = max(len(f.path) for f in pack.files[:SHOWN_FILES])
    for i, f in enumerate(pack.files[:SHOWN_FILES], 1):
        mark = "*" if f.path in packed else " "
        why = f"  ({'; '.join(f.reasons)})" if f.reasons else ""
        out(f"{i:>3}. {mark} {f.path:<{width}}  {f.score:6.3f}{why}\n")
    out(f"\nChunks in the pack ({len(pack.chunks)}):\n")
    for c in pack.chunks:
        where = f"{c.path}:{c.start_line}-{c.end_line}"
        out(f"  {where:<{width + 10}} {c.symbol or '(' + c.kind + ')':<40} {c.tokens:>6} tokens\n")
    out(f"\nTokens used: {pack.tokens_used} of {pack.budget_tokens} (estimate: characters / 4)\n")
