"""`anvil resume RUN`: continue a run from its first unfinished stage.

The run's burns, escalations, spend and the outputs of its finished stages
come back from its state, so nothing already paid for is asked again. The
budget is the run's own (`--budget` replaces it), as are `--pr` and `--local`.
"""

from __future__ import annotations

import sys

from anvil.errors import EXIT_STAGE_EXHAUSTED, NotARepoError, UserError


def run(run_id: str, yes: bool = False, budget: float | None = None, json_output: bool = False) -> int:
    from anvil.commands.run import execute, load_run_config, run_secrets
    from anvil.paths import find_repo_root
    from anvil.run.store import RunStore

    repo_root = find_repo_root()
    if repo_root is None:
        raise NotARepoError("anvil resume")
    store = RunStore(repo_root)
    run_obj = store.load(run_id)
    state = run_obj.state
    status = state.effective_status()
    if status == "done":
        raise UserError(f"run {run_obj.id} is already done (branch {state.branch})",
                        hint="`anvil show " + run_obj.id + "` shows what it did")
    if status == "running":
        raise UserError(f"run {run_obj.id} is still running (process {state.pid})",
                        hint="wait for it, or stop that process first")
    opts = dict(state.options)
    if budget is not None:
        opts["budget"] = str(budget)
    config = load_run_config(repo_root, budget=opts.get("budget"), local=bool(opts.get("local")))
    run_obj = store.load(run_obj.id, secrets=run_secrets(config))
    run_obj.state.options = opts
    if state.exit_code == EXIT_STAGE_EXHAUSTED:
        # The user asked for another go: the stage's retries start over, at the escalated tier.
        for esc in run_obj.state.escalation.values():
            esc["retries"] = 0
    first = run_obj.state.first_unfinished()
    print(f"anvil: resuming run {run_obj.id} at {first} ({status}): {run_obj.state.request}", file=sys.stderr)
    run_obj.event("run.resume_requested", status=status, first=first, budget=opts.get("budget"))
    return execute(run_obj, config, repo_root, yes=yes or bool(opts.get("yes")), pr=bool(opts.get("pr")),
                   remote=opts.get("remote"), json_output=json_output)
