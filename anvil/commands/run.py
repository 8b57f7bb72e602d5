"""`anvil run "request"`: the whole pipeline in a fresh run (and the code `anvil resume` shares).

stdout gets the result (branch, commit, PR, cost; or `--json`), stderr the
live progress and the end-of-run table. A failed run ends with what happened
and the `anvil resume RUN` command that continues it.
"""

from __future__ import annotations

import signal
import sys
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, AnvilError, NotARepoError, UserError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.routing.availability import Availability
    from anvil.run.events import Progress
    from anvil.run.store import Run, RunState


def load_run_config(repo_root: Path, *, budget: float | None = None, local: bool = False, trust_repo: bool = False,
                    yes: bool = False) -> Config:
    from anvil.commands.trust import load_checked

    overrides: dict[str, Any] = {}
    if budget is not None:
        try:
            amount = Decimal(str(budget))
        except InvalidOperation:
            raise UserError(f"--budget must be a number of dollars, not {budget!r}") from None
        if amount <= 0:
            raise UserError("--budget must be more than 0 dollars")
        overrides["budget.max_dollars"] = str(amount)
    config = load_checked(repo_root, overrides=overrides or None, trust_repo=trust_repo, yes=yes)
    if local:
        from anvil.local.routing import local_only_overrides
        from anvil.routing.availability import check_providers

        extra = local_only_overrides(config, check_providers(config))
        config = load_checked(repo_root, overrides={**overrides, **extra}, yes=yes)
    return config


def run_secrets(config: Config) -> list[str]:
    """The keys this run may use, and every credential in the environment (GITHUB_TOKEN, ...), so the
    run folder, the commands' output and the prompts can redact them wherever they appear."""
    import os

    from anvil.keys import resolve_key
    from anvil.workspace.env import catalogue_key_variables, removed_values

    found = removed_values(os.environ, drop=catalogue_key_variables(config.catalogue))
    for name, entry in config.catalogue.providers.items():
        try:
            key = resolve_key(name, entry)
        except Exception:  # a loose key file: availability reports it; nothing to redact
            key = None
        if key and key not in found:
            found.append(key)
    return found


def check_chains(config: Config, availability: dict[str, Availability]) -> None:
    """Every stage must have at least one usable model before anything is paid for."""
    from anvil.routing.resolver import resolve_stage
    from anvil.run.runner import STAGES
    from anvil.run.stage_llm import NoModelForStage

    for stage in STAGES:
        res = resolve_stage(stage, config, availability)
        if not res.chain:
            raise NoModelForStage(res.no_model_message(), hint=res.no_model_hint())


def execute(run: Run, config: Config, repo_root: Path, *, yes: bool, pr: bool, remote: str | None,
            json_output: bool, availability: dict[str, Availability] | None = None, progress: Progress | None = None,
            demo: bool = False) -> int:
    """Run (or resume) `run` to its end; print the result; raise AnvilError with the resume hint on failure.

    `progress` replaces the live display (`anvil demo` draws its own); `demo` marks the ledger rows."""
    from anvil.ledger.opening import open_ledger
    from anvil.run.runner import STAGES, Runner, RunOptions
    from anvil.ui.progress import make_progress, print_summary

    interactive = not yes and sys.stdin.isatty() and sys.stderr.isatty()
    options = RunOptions(yes=yes, pr=pr, remote=remote, interactive=interactive, demo=demo)
    ledger = open_ledger()  # a damaged ledger or an unreachable team ledger: a clean error, not a traceback
    progress = progress if progress is not None else make_progress(sys.stderr, STAGES)
    from anvil.telemetry import from_env

    telemetry = from_env()

    timeout = float(config.policy.stage("clarify").question_timeout)

    def prompt_user(question: str) -> str:
        return progress.prompt(question, timeout=timeout)

    error: BaseException | None = None
    previous = _sigterm_as_interrupt()
    try:
        runner = Runner(config, repo_root, run, options=options, progress=progress, ledger=ledger,
                        availability=availability, prompt_user=prompt_user if interactive else None,
                        telemetry=telemetry)
        runner.execute()
    except (AnvilError, KeyboardInterrupt) as exc:
        error = exc
    except Exception as exc:  # a bug in anvil: state saved, traceback in events.jsonl, a clean exit
        error = AnvilError(f"internal error: {type(exc).__name__}: {exc}", exit_code=EXIT_INTERNAL,
                           hint=f"this is a bug in anvil; the traceback is in {run.dir / 'events.jsonl'}")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        progress.close()
        try:
            rows = ledger.attempts(run.id)
            read = sum(int(r.get("cache_read_tokens") or 0) for r in rows)
            total = sum(int(r.get("input_tokens") or 0) for r in rows)
            run.state.cache = {"input_tokens": total, "cache_read_tokens": read,
                                       "share": round(read / total, 4) if total else 0.0}
            run.save()
        except Exception:  # the summary line is an aid; a ledger problem is reported elsewhere
            pass
        ledger.close()
        telemetry.close()
    state = run.state
    print_summary(state, sys.stderr, title=f"run {run.id}")
    cache = state.cache
    if cache.get("input_tokens"):
        print(f"prompt cache: {cache['share']:.0%} of {cache['input_tokens']:,} input tokens read from cache",
              file=sys.stderr)
    if json_output:
        from anvil.ui.output import print_json

        print_json(result_json(run))
    if error is None:
        if not json_output:
            ship = state.stage("ship").data
            print(f"branch: {state.branch}")
            print(f"commit: {ship.get('sha') or '(nothing to commit)'}")
            if state.pr_url:
                print(f"pull request: {state.pr_url}")
            print(f"cost: {_money(state)}")
            print(f"run: {run.id}")
        return 0
    if isinstance(error, KeyboardInterrupt):
        stopped = AnvilError(f"run {run.id} interrupted during {state.stage_reached() or 'setup'}",
                             hint=f"continue it with `anvil resume {run.id}`", exit_code=EXIT_INTERRUPTED)
    else:
        assert isinstance(error, AnvilError)
        hint = (error.hint or "").replace("anvil resume RUN", f"anvil resume {run.id}")
        resume = f"continue it with `anvil resume {run.id}`"
        stage = next((n for n, s in state.stages.items() if s.status in ("failed", "interrupted")), None)
        stopped = AnvilError(f"run {run.id} stopped{f' in {stage}' if stage else ''}: {error.message}",
                             hint=f"{hint}; then {resume}" if hint and "anvil resume" not in hint
                             else (hint or resume), exit_code=error.exit_code)
    stopped.json_printed = json_output  # the run's JSON (status, exit_code, error) is the --json answer
    raise stopped from None


def starting_point(repo_root: Path, base_ref: str, base_sha: str, *, explicit: bool) -> str | None:
    """One line when the run does not start from what the user has checked out: another branch, or
    uncommitted changes (the run's worktree starts from the base commit; neither is in it)."""
    from anvil.workspace import gitops

    branch = gitops.current_branch(repo_root)
    status = gitops.git(["status", "--porcelain", "--untracked-files=normal"], repo_root, check=False).stdout
    dirty = [line for line in status.splitlines() if line[3:].strip() and not line[3:].startswith(".anvil/")]
    head = gitops.git(["rev-parse", "HEAD"], repo_root, check=False).stdout.strip()
    left_out = []
    if head != base_sha:
        left_out.append(f"your branch {branch!r}" if branch else f"your checkout {head[:7]}")
    if dirty:
        left_out.append(f"{len(dirty)} uncommitted file{'s' if len(dirty) != 1 else ''}")
    if not left_out:
        return None
    verb = "are" if len(left_out) > 1 or len(dirty) > 1 else "is"
    return (f"starting from {base_ref}@{base_sha[:7]}; {' and '.join(left_out)} {verb} not included"
            + ("" if explicit else "; use --base to start elsewhere (commit first to include changes)"))


def _sigterm_as_interrupt() -> Any:
    """SIGTERM (a CI cancel, `kill`) stops the run like Ctrl-C: state saved, resume command printed."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _money(state: RunState) -> str:
    if state.spend is None:
        known = state.spend_known
        return f"${Decimal(known).quantize(Decimal('0.0001'))} + {state.unpriced_attempts} unpriced call(s)"
    return f"${state.spend.quantize(Decimal('0.0001'))}"


def result_json(run: Run) -> dict[str, Any]:
    from anvil.ui.progress import summary_rows

    st = run.state
    return {"run_id": run.id, "status": st.status, "exit_code": st.exit_code, "error": st.error,
            "request": st.request, "branch": st.branch, "base": st.base_ref,
            "commit": st.stage("ship").data.get("sha"), "pr_url": st.pr_url, "spend": st.spend,
            "spend_known": st.spend_known, "unpriced_attempts": st.unpriced_attempts,
            "stages": summary_rows(st), "burns": st.burns, "escalation": st.escalation,
            "cache": st.cache, "run_dir": str(run.dir)}


def run(request: str, yes: bool = False, budget: float | None = None, pr: bool = False, remote: str | None = None,
        base: str | None = None, local: bool = False, json_output: bool = False, trust_repo: bool = False,
        task: str | None = None) -> int:
    from anvil.paths import find_repo_root
    from anvil.routing.availability import check_providers
    from anvil.run.store import RunStore
    from anvil.workspace import gitops

    repo_root = find_repo_root()
    if repo_root is None:
        raise NotARepoError("anvil run")
    if request == "-":
        request = sys.stdin.read()
    request = " ".join(request.split())
    if not request:
        raise UserError("the request is empty", hint='anvil run "add a --json flag to the list command"')
    config = load_run_config(repo_root, budget=budget, local=local, trust_repo=trust_repo, yes=yes)
    base_ref = base or config.repo.default_branch or gitops.default_branch(repo_root, remote or config.repo.remote)
    base_sha = gitops.rev_parse(repo_root, base_ref)  # a clear error before anything is created
    if pr:
        from anvil.workspace.github import check_pr_ready

        check_pr_ready(repo_root, remote or config.repo.remote)
    availability = check_providers(config)
    check_chains(config, availability)
    options = {"yes": yes, "budget": None if budget is None else str(budget), "pr": pr, "remote": remote,
               "base": base_ref, "local": local}
    if task:  # `anvil bench` labels its runs: every ledger row of this run carries the task id
        options["task"] = task
    run_obj = RunStore(repo_root).create(request, options, secrets=run_secrets(config))
    run_obj.state.base_ref = base_ref
    run_obj.save()
    print(f"anvil: run {run_obj.id} on {base_ref}: {request}", file=sys.stderr)
    note = starting_point(repo_root, base_ref, base_sha, explicit=base is not None)
    if note:
        print(f"anvil: {note}", file=sys.stderr)
    return execute(run_obj, config, repo_root, yes=yes, pr=pr, remote=remote, json_output=json_output,
                   availability=availability)
