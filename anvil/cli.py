"""The `anvil` command line: signatures and help only.

Plain click, not typer: typer (0.2x) coerces every parameter through a pydantic
TypeAdapter it builds at parse time, ~0.25 s of CPU before a command's first
line, and prints raw types (`<float>`, `{request}`) in help. Click parses with
its own small types and takes a metavar per parameter.

Each command is a thin function that imports its body from
`anvil.commands.<name>` when it runs, so `anvil --help` stays fast and a
command's heavy imports (httpx, rich, pydantic, tree-sitter) are paid only by
that command. Results go to stdout, progress and diagnostics to stderr.

To add a command: a function under `@app.command()` (or a group's) with its
click options, whose body is `_call("module", **kwargs)`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from anvil import __version__

JSON_HELP = "Print machine-readable JSON on stdout."
OFFLINE_HELP = "Do not probe local model servers."
TRUST_HELP = ("Approve this repository's .anvil/ files (as `anvil trust` does) before running; "
              "--yes alone does not approve them.")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class HelpGroup(click.Group):
    """A group that shows its help (exit 0) when called bare, and lists commands in the order written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("invoke_without_command", True)
        kwargs.setdefault("context_settings", CONTEXT)
        super().__init__(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("context_settings", CONTEXT)
        return super().command(*args, **kwargs)


def bare_help(ctx: click.Context) -> None:
    """A group called with no command prints its help and exits 0 (click 8.2's no_args_is_help exits 2)."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)


def json_option(f: Any) -> Any:
    return click.option("--json", "json_output", is_flag=True, help=JSON_HELP)(f)


def offline_option(f: Any) -> Any:
    return click.option("--offline", is_flag=True, help=OFFLINE_HELP)(f)


def trust_option(f: Any) -> Any:
    return click.option("--trust-repo", "trust_repo", is_flag=True, help=TRUST_HELP)(f)


def _call(module: str, **kwargs: Any) -> None:
    """Run `anvil.commands.<module>.run(**kwargs)`, turning user errors into clean exits."""
    from anvil.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, AnvilError

    json_output = bool(kwargs.get("json_output"))
    try:
        try:
            mod = importlib.import_module(f"anvil.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"anvil.commands.{module}":
                fail(f"`{module.replace('_', ' ')}` is not built yet in this version of anvil", None,
                     EXIT_INTERNAL, json_output)
                sys.exit(EXIT_INTERNAL)
            raise
        code = getattr(mod, kwargs.pop("_fn", "run"))(**kwargs)
    except AnvilError as exc:
        errors = getattr(exc, "errors", None) or []
        for line in errors:
            print(_printable(line), file=sys.stderr)
        message = exc.message if not errors else f"{len(errors)} error(s) in the configuration"
        fail(message, exc.hint, exc.exit_code, json_output and not exc.json_printed)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", None, EXIT_INTERRUPTED, json_output)
        sys.exit(EXIT_INTERRUPTED)
    if code:
        sys.exit(int(code))


def _printable(text: str) -> str:
    from anvil.ui.safe import printable

    return printable(text)


def fail(message: str, hint: str | None, exit_code: int, json_output: bool = False) -> None:
    """An error as one line on stderr (plus a hint); with --json also as an object on stdout.

    A message may quote a server's error body or a repo file: it never drives the terminal."""
    print(f"anvil: error: {_printable(message)}", file=sys.stderr)
    if hint:
        print(f"  hint: {_printable(hint)}", file=sys.stderr)
    if json_output:
        print_json_error(message, hint, exit_code)


def print_json_error(message: str, hint: str | None, exit_code: int) -> None:
    import json

    sys.stdout.write(json.dumps({"error": message, "exit_code": exit_code, "hint": hint}, indent=2) + "\n")
    sys.stdout.flush()


@click.group(cls=HelpGroup, help=(
    "A coding agent that routes each stage of the work to the cheapest model good enough "
    "for it, and knows what every call cost.\n\n"
    "Start with `anvil demo` (offline, no key), then `anvil init` in your repository."))
@click.version_option(__version__, "--version", "-V", message="anvil %(version)s", help="Print the version and exit.")
@click.pass_context
def app(ctx: click.Context) -> None:
    bare_help(ctx)





# ------------------------------------------------------------------ set-up


@app.command(short_help="Detect the repo's commands and providers; write .anvil/config.yaml.")
@click.option("--yes", "-y", is_flag=True, help="Never prompt; keep an existing config unless --force.")
@click.option("--force", is_flag=True, help="Overwrite an existing .anvil/config.yaml.")
@click.option("--policies", is_flag=True,
              help="Also write repo-local copies of stage-policy.yaml and models.yaml to edit.")
@click.option("--offline", is_flag=True,
              help="Do not probe local model servers, and do not run the detected commands on the base commit.")
@json_option
def init(yes: bool, force: bool, policies: bool, offline: bool, json_output: bool) -> None:
    """Detect the repo's languages, test/lint/type-check commands, default branch and usable providers;
    write .anvil/config.yaml."""
    _call("init", yes=yes, force=force, policies=policies, offline=offline, json_output=json_output)


@app.command(short_help="Live checks of each provider: key, endpoint, models.")
@trust_option
@json_option
def doctor(trust_repo: bool, json_output: bool) -> None:
    """Live checks of each provider: key present (and accepted), endpoint reachable, model listed.

    Exits 0 when at least one provider is usable, 3 when none is."""
    _call("doctor", json_output=json_output, trust_repo=trust_repo)


@app.command(short_help="Show what this repository's .anvil/ files set, and approve them.")
@click.option("--revoke", is_flag=True, help="Forget the approval of this repository's .anvil/ files.")
@click.option("--show", is_flag=True, help="Only show what the files set and whether they are approved.")
@json_option
def trust(revoke: bool, show: bool, json_output: bool) -> None:
    """Show what this repository's .anvil/ files set, and approve them (their hash is recorded in $ANVIL_HOME).

    Until then anvil reads only their stage routing (see README, "Trusting a repository's .anvil/")."""
    _call("trust", revoke=revoke, show=show, json_output=json_output)


@app.command(short_help="The model catalogue: tier, provider, context, price, availability.")
@offline_option
@json_option
def models(offline: bool, json_output: bool) -> None:
    """The model catalogue: tier, provider, context window, price, availability."""
    _call("models", offline=offline, json_output=json_output)


@app.group(cls=HelpGroup, short_help="Provider API keys in anvil's key file: set, list, path.")
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Provider API keys kept in anvil's key file ($ANVIL_HOME/keys.json, default ~/.anvil, mode 0600).

    An environment variable of the same name still wins over the file."""
    bare_help(ctx)


@keys.command("set", short_help="Store a provider's API key (prompted, never echoed).")
@click.argument("name", metavar="NAME")
def keys_set(name: str) -> None:
    """Store an API key under NAME (an environment variable name such as ANTHROPIC_API_KEY, or a provider
    name from `anvil models`). The key is read from the terminal without echo, or from stdin when piped."""
    _call("keys", action="set", name=name)


@keys.command("list", short_help="The names of the stored keys (never their values).")
@json_option
def keys_list(json_output: bool) -> None:
    """The names of the stored keys and whether the environment overrides them (values are never shown)."""
    _call("keys", action="list", json_output=json_output)


@keys.command("path", short_help="Where the key file is.")
def keys_path() -> None:
    """Print the path of the key file."""
    _call("keys", action="path")


# ------------------------------------------------------------------ policy


@app.group(cls=HelpGroup, short_help="Inspect and validate the stage policy and model catalogue.")
@click.pass_context
def policy(ctx: click.Context) -> None:
    """Inspect and validate the stage policy and model catalogue."""
    bare_help(ctx)


@policy.command("check", short_help="Validate stage-policy.yaml and models.yaml.")
@json_option
def policy_check(json_output: bool) -> None:
    """Validate the layered stage-policy.yaml and models.yaml; errors name file, line and key."""
    _call("policy", action="check", json_output=json_output)


@policy.command("explain", short_help="Each stage's chain of models, and why others were left out.")
@click.option("--stage", metavar="STAGE", help="Only this stage.")
@offline_option
@click.option("--estimate", is_flag=True, help="Forecast a run's tokens and dollars per stage.")
@json_option
def policy_explain(stage: str | None, offline: bool, estimate: bool, json_output: bool) -> None:
    """For each stage: the ordered chain of models, and why every other model was left out."""
    if estimate:
        _call("evidence", action="estimate", json_output=json_output)
        return
    _call("policy", action="explain", stage=stage, offline=offline, json_output=json_output)


@policy.command("stats", short_help="Per stage and model: attempts, success rate, $ per success.")
@click.option("--stage", metavar="STAGE", help="Only this stage.")
@click.option("--repo", metavar="PATH", help="Only this repository (default: the current one).")
@click.option("--all", "all_repos", is_flag=True, help="Every repository.")
@json_option
def policy_stats(stage: str | None, repo: str | None, all_repos: bool, json_output: bool) -> None:
    """Per stage and model: attempts, success rate (95% interval), $ per attempt and per success."""
    _call("evidence", action="stats", stage=stage, repo=repo, all_repos=all_repos, json_output=json_output)


@policy.command("tune", short_help="The chain per stage that minimises expected $ per success.")
@click.option("--min-success", type=float, default=0.7, show_default=True, metavar="P",
              help="Success rate a model must clear.")
@click.option("--confidence", type=float, default=0.9, show_default=True, metavar="C",
              help="How sure the evidence must be.")
@click.option("--write", metavar="LAYER", help="Write it to `home` or `repo`.")
@json_option
def policy_tune(min_success: float, confidence: float, write: str | None, json_output: bool) -> None:
    """The chain per stage that minimises expected $ per success, as a stage-policy.yaml diff."""
    _call("evidence", action="tune", min_success=min_success, confidence=confidence, write=write,
          json_output=json_output)


# ------------------------------------------------------------------ running


@app.command(short_help="Run the pipeline: clarify, plan, build, test, validate, review, ship.")
@click.argument("request", metavar="REQUEST")
@click.option("--yes", "-y", is_flag=True, help="Never prompt: clarify records assumptions instead of asking.")
@click.option("--budget", type=float, metavar="DOLLARS",
              help="Stop the run before it spends more than this many dollars.")
@click.option("--pr", is_flag=True, help="Push the branch and open a pull request (checked before the first call).")
@click.option("--remote", metavar="REMOTE", help="Git remote to push to (default: origin).")
@click.option("--base", metavar="BRANCH", help="Start from this branch or commit (default: the repo's default branch).")
@click.option("--local", is_flag=True,
              help="Route every stage to local models (Ollama or an embedded GGUF): fully offline.")
@click.option("--estimate", is_flag=True, help="Only forecast the run's cost; call no model.")
@click.option("--task", metavar="ID", help="Label every ledger row of this run with a task id (`anvil bench` sets "
                                            "it; `cost report --by task`).")
@trust_option
@json_option
def run(request: str, yes: bool, budget: float | None, pr: bool, remote: str | None, base: str | None,
        local: bool, estimate: bool, task: str | None, trust_repo: bool, json_output: bool) -> None:
    """Run the pipeline on REQUEST (one line, or - to read it from stdin): clarify, plan, build, test,
    validate, review, ship. The result (branch, commit, pull request, cost) is printed on stdout."""
    if estimate:
        _call("evidence", action="estimate", json_output=json_output)
        return
    _call("run", request=request, yes=yes, budget=budget, pr=pr, remote=remote, base=base,
          local=local, json_output=json_output, trust_repo=trust_repo, task=task)


@app.command(short_help="Continue an interrupted or failed run.")
@click.argument("run_id", metavar="RUN")
@click.option("--yes", "-y", is_flag=True, help="Never prompt.")
@click.option("--budget", type=float, metavar="DOLLARS", help="A new dollar budget for the run.")
@trust_option
@json_option
def resume(run_id: str, yes: bool, budget: float | None, trust_repo: bool, json_output: bool) -> None:
    """Continue RUN (an id or a unique prefix) from its first unfinished stage."""
    _call("resume", run_id=run_id, yes=yes, budget=budget, json_output=json_output, trust_repo=trust_repo)


@app.group(cls=HelpGroup, short_help="This repository's runs (and `runs rm RUN`).")
@json_option
@click.pass_context
def runs(ctx: click.Context, json_output: bool) -> None:
    """The runs of this repository: id, request, status, stage reached, cost, age."""
    if ctx.invoked_subcommand is None:
        _call("runs", json_output=json_output)


@runs.command("rm", short_help="Delete a run: its folder, worktree and unmerged branch.")
@click.argument("run_id", metavar="RUN")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def runs_rm(run_id: str, yes: bool, json_output: bool) -> None:
    """Delete RUN: its run folder, its worktree and (unless it was shipped) its branch.
    Its ledger rows stay: money spent stays counted."""
    _call("clean", action="rm", run_id=run_id, yes=yes, json_output=json_output)


@app.command(short_help="Remove the worktrees and branches of failed runs.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be removed.")
@click.option("--all", "all_runs", is_flag=True, help="Also the run folders of finished runs (their branches stay).")
@json_option
def clean(dry_run: bool, all_runs: bool, json_output: bool) -> None:
    """Remove what failed, interrupted and stopped runs left behind: worktrees, branches with no shipped commit,
    and run folders. Runs still in progress are never touched."""
    _call("clean", action="clean", dry_run=dry_run, all_runs=all_runs, json_output=json_output)


@app.command(short_help="One run: stages, models, attempts, burns, artifacts, cost.")
@click.argument("run_id", metavar="RUN")
@json_option
def show(run_id: str, json_output: bool) -> None:
    """One run (an id or a unique prefix): its stages, models, attempts, burns, artifacts and cost."""
    _call("show", run_id=run_id, json_output=json_output)


@app.command(short_help="Where anvil's logs are: a run's events, the llama.cpp log.")
@click.argument("run_id", metavar="RUN", required=False)
@json_option
def logs(run_id: str | None, json_output: bool) -> None:
    """Where anvil keeps its logs: each run's events.jsonl and exchanges, the ledger, and the embedded
    llama.cpp server's log. With RUN, that run's files."""
    _call("logs", run_id=run_id, json_output=json_output)


@app.command(short_help="One call through the resolver and chain-walker.")
@click.argument("prompt", metavar="PROMPT")
@click.option("--model", "-m", metavar="MODEL", help="A model id from `anvil models`.")
@click.option("--stage", metavar="STAGE", help="Use this stage's chain instead of one model (default: clarify's).")
@click.option("--system", metavar="TEXT", help="A system prompt sent before PROMPT.")
@trust_option
@json_option
def ask(prompt: str, model: str | None, stage: str | None, system: str | None, trust_repo: bool,
        json_output: bool) -> None:
    """One call with PROMPT (or - to read it from stdin) through the resolver and chain-walker: test a provider
    entry, debug a model config."""
    _call("ask", prompt=prompt, model=model, stage=stage, system=system, json_output=json_output,
          trust_repo=trust_repo)


@app.command(short_help="What the plan stage would see for a request.")
@click.argument("request", metavar="REQUEST")
@click.option("--budget", type=int, default=8000, show_default=True, metavar="TOKENS",
              help="Token budget of the context pack.")
@json_option
def context(request: str, budget: int, json_output: bool) -> None:
    """What the plan stage would see for REQUEST: ranked files with scores, chosen chunks, tokens used."""
    _call("context", request=request, budget=budget, json_output=json_output)


@app.command(short_help="The whole pipeline offline on a bundled example (no key needed).")
@click.option("--dir", "directory", metavar="PATH",
              help="Where to copy the example repo (default: a temporary folder).")
@click.option("--no-tests", is_flag=True,
              help="Run the example's tests with anvil's small built-in runner instead of pytest.")
@click.option("--svg", metavar="PATH", hidden=True, help="Also save the screen as an SVG picture.")
@json_option
def demo(directory: str | None, no_tests: bool, svg: str | None, json_output: bool) -> None:
    """The whole pipeline, offline, on a bundled example repo with a scripted model server (no key needed)."""
    _call("demo", directory=directory, no_tests=no_tests, svg=svg, json_output=json_output)


@app.command(short_help="A read-only local web view of runs, live progress and costs.")
@click.option("--port", type=int, default=8766, metavar="PORT",
              help="Port on 127.0.0.1 (0: any free port; `anvil serve` takes 8765).")
@click.option("--open", "open_browser", is_flag=True, help="Open the printed URL in a browser.")
@click.option("--baseline", metavar="MODEL",
              help="Price the same tokens on this model to show the saving (default: the demo's premium model).")
def dashboard(port: int, open_browser: bool, baseline: str | None) -> None:
    """A read-only local web view: runs, each stage's calls and artifacts, live runs, cost charts."""
    _call("dashboard", port=port, open_browser=open_browser, baseline=baseline)


@app.command(short_help="Print a shell completion script: bash, zsh or fish.")
@click.argument("shell", metavar="SHELL", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL. Install it with, for example:

    \b
      bash: anvil completion bash > ~/.local/share/bash-completion/completions/anvil
      zsh:  anvil completion zsh > "${fpath[1]}/_anvil"
      fish: anvil completion fish > ~/.config/fish/completions/anvil.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above only lets click's own shells through
    sys.stdout.write(cls(app, {}, "anvil", "_ANVIL_COMPLETE").source() + "\n")


@app.command(short_help="An OpenAI- and Anthropic-compatible gateway on 127.0.0.1.")
@click.option("--port", "-p", type=int, default=8765, show_default=True, metavar="PORT",
              help="TCP port on 127.0.0.1 (0 picks a free one and prints it).")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Only 127.0.0.1 (or localhost): anything else is refused.")
@click.option("--policy", metavar="FILE", help="A stage-policy.yaml layered on top (stages, routes:).")
@click.option("--commit-window", type=int, default=2048, show_default=True, metavar="CHARS",
              help="Characters of a streamed answer held back and checked before the client sees any "
                   "(0: stream at once).")
@click.option("--commit-seconds", type=float, default=4.0, show_default=True, metavar="SECONDS",
              help="... or seconds after the first token, whichever comes first.")
@click.option("--session-ttl", type=float, default=3600.0, show_default=True, metavar="SECONDS",
              help="Seconds a conversation stays on its model after its last request.")
@click.option("--json", "json_output", is_flag=True, help="Print the base URLs, token and models as one JSON line.")
def serve(port: int, host: str, policy: str | None, commit_window: int, commit_seconds: float, session_ttl: float,
          json_output: bool) -> None:
    """An OpenAI- and Anthropic-compatible gateway on 127.0.0.1: other agents get anvil's routing and ledger."""
    _call("serve", port=port, host=host, policy=policy, commit_window=commit_window, commit_seconds=commit_seconds,
          session_ttl=session_ttl, json_output=json_output)


# ------------------------------------------------------------------ cost


@app.group(cls=HelpGroup, short_help="What runs, stages and models cost (from the ledger).")
@click.pass_context
def cost(ctx: click.Context) -> None:
    """What runs, stages and models cost (from the ledger)."""
    bare_help(ctx)


@cost.command("report", short_help="Spend by stage, model, provider, run, day, repo, client, session, preset.")
@click.option("--by", multiple=True, metavar="GROUP",
              help="Group by stage, model, provider, run, day, repo, or (served traffic) client, session, preset "
                   "(repeatable, or comma-separated).")
@click.option("--since", metavar="WHEN", help="From this date (YYYY-MM-DD) or age (7d, 24h).")
@click.option("--until", metavar="DATE", help="Up to this date (YYYY-MM-DD).")
@click.option("--run", "run_id", metavar="RUN", help="Only this run (an id or a unique prefix).")
@click.option("--repo", metavar="PATH",
              help="Only this repository (a path or its recorded name; default: the current one).")
@click.option("--all", "all_repos", is_flag=True, help="Every repository.")
@click.option("--baseline", metavar="MODEL", help="Also show what the same tokens would have cost on this model.")
@click.option("--demo", "demo_rows", is_flag=True, help="Include rows recorded by `anvil demo`.")
@json_option
@click.option("--csv", "csv_output", is_flag=True, help="Print CSV on stdout.")
def cost_report(by: tuple[str, ...], since: str | None, until: str | None, run_id: str | None, repo: str | None,
                all_repos: bool, baseline: str | None, demo_rows: bool, json_output: bool, csv_output: bool) -> None:
    """Spend by stage, model, provider, run, day, repo or (served traffic) client, session, preset, with tokens,
    calls and failures."""
    _call("cost", by=list(by), since=since, until=until, run_id=run_id, repo=repo, all_repos=all_repos,
          baseline=baseline, demo_rows=demo_rows, json_output=json_output, csv_output=csv_output)


# ------------------------------------------------------------------ memory


@app.group(cls=HelpGroup, short_help="What anvil remembers about this repository.")
@click.pass_context
def memory(ctx: click.Context) -> None:
    """What anvil remembers about this repository: facts, their sources and anchors (a changed anchor makes
    a fact stale until it is confirmed)."""
    bare_help(ctx)


@memory.command("list", short_help="The remembered facts: live, stale and (--all) forgotten.")
@click.option("--all", "include_forgotten", is_flag=True, help="Also list forgotten facts.")
@json_option
def memory_list(include_forgotten: bool, json_output: bool) -> None:
    """The remembered facts: live, stale (an anchor changed) and, with --all, forgotten."""
    _call("memory", action="list", include_forgotten=include_forgotten, json_output=json_output)


@memory.command("show", short_help="One fact with its source, validity and anchors.")
@click.argument("fact_id", metavar="ID", type=int)
@json_option
def memory_show(fact_id: int, json_output: bool) -> None:
    """One fact with its source, validity and anchors."""
    _call("memory", action="show", fact_id=fact_id, json_output=json_output)


@memory.command("add", short_help="Remember a fact (again: confirm it).")
@click.argument("text", metavar="TEXT")
@click.option("--file", metavar="PATH", help="Anchor the fact to this file (stale when it changes).")
@click.option("--symbol", metavar="NAME", help="Anchor to this function or class in --file.")
@json_option
def memory_add(text: str, file: str | None, symbol: str | None, json_output: bool) -> None:
    """Remember a fact (adding a known fact again confirms it)."""
    _call("memory", action="add", text=text, file=file, symbol=symbol, json_output=json_output)


@memory.command("confirm", short_help="Accept a stale fact again as its anchors read now.")
@click.argument("fact_id", metavar="ID", type=int)
@json_option
def memory_confirm(fact_id: int, json_output: bool) -> None:
    """Accept a stale fact again as its anchors read now."""
    _call("memory", action="confirm", fact_id=fact_id, json_output=json_output)


@memory.command("forget", short_help="Stop using a fact (kept, with when it stopped).")
@click.argument("fact_id", metavar="ID", type=int)
def memory_forget(fact_id: int) -> None:
    """Stop using a fact (it is kept, with the time it stopped being true)."""
    _call("memory", action="forget", fact_id=fact_id)


@memory.command("stale", short_help="Check every anchor now; list the facts that drifted.")
@json_option
def memory_stale(json_output: bool) -> None:
    """Check every anchor against the checkout now and list the facts that drifted."""
    _call("memory", action="stale", json_output=json_output)


# ------------------------------------------------------------------ conventions


@app.group(cls=HelpGroup, short_help="Review complaints that recur, as checks validate runs.")
@click.pass_context
def conventions(ctx: click.Context) -> None:
    """Review complaints that recur across runs become conventions: proposed after two runs (the policy's
    `conventions.min_runs`), promoted with a check (a regex or a tree-sitter query) that validate runs on
    every added line without a model, and that review is told not to raise."""
    bare_help(ctx)


@conventions.command("list", short_help="Proposed, promoted and disabled conventions.")
@json_option
def conventions_list(json_output: bool) -> None:
    """Every convention with its status, the runs that raised it and its check."""
    _call("conventions", action="list", json_output=json_output)


@conventions.command("show", short_help="One convention with the cases it was raised on.")
@click.argument("ref", metavar="ID|KEY")
@json_option
def conventions_show(ref: str, json_output: bool) -> None:
    """One convention: its check and the recorded cases (the flagged lines and their fixed versions)."""
    _call("conventions", action="show", ref=ref, json_output=json_output)


@conventions.command("promote", short_help="Enforce a convention: your check, or one a model writes.")
@click.argument("ref", metavar="ID|KEY")
@click.option("--regex", metavar="PATTERN", help="The check: a regex over each added line (Python syntax).")
@click.option("--query", metavar="QUERY", help="The check: a tree-sitter query; a capture on an added line flags.")
@click.option("--model", metavar="ID", help="The model that writes the check (default: review's chain).")
@trust_option
@json_option
def conventions_promote(ref: str, regex: str | None, query: str | None, model: str | None, trust_repo: bool,
                        json_output: bool) -> None:
    """Enforce a convention. The check (yours with --regex/--query, else written by one model call, in the
    ledger as stage `conventions`) must flag every recorded case and none of their fixed versions."""
    _call("conventions", action="promote", ref=ref, regex=regex, query=query, model=model,
          trust_repo=trust_repo, json_output=json_output)


@conventions.command("disable", short_help="Stop enforcing (and proposing) a convention.")
@click.argument("ref", metavar="ID|KEY")
def conventions_disable(ref: str) -> None:
    """Stop enforcing a convention; review may raise it again. `enable` undoes it."""
    _call("conventions", action="disable", ref=ref)


@conventions.command("enable", short_help="Enforce a disabled convention again.")
@click.argument("ref", metavar="ID|KEY")
def conventions_enable(ref: str) -> None:
    """Back to promoted (with its check) or proposed (without one)."""
    _call("conventions", action="enable", ref=ref)


# ------------------------------------------------------------------ bench


class BenchGroup(HelpGroup):
    """`anvil bench TASKS ...` is `anvil bench run TASKS ...`; `report` and `merge` are subcommands."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


@app.group(cls=BenchGroup, short_help="Run anvil on a task set, verify, compare policies.")
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Run anvil on a task set, verify each result, and compare policies: `anvil bench TASKS`,
    `anvil bench report DIR`, `anvil bench merge DIR... --out DIR`."""
    bare_help(ctx)


@bench.command("run", short_help="Run every task of TASKS and verify it (the default of `anvil bench`).")
@click.argument("tasks", metavar="TASKS")
@click.option("--policy", multiple=True, metavar="FILE_OR_DIR",
              help="A stage-policy.yaml, or a folder with one (and a models.yaml); repeat to compare.")
@click.option("--workers", "-j", type=int, default=1, metavar="N", help="Tasks run at the same time.")
@click.option("--limit", type=int, metavar="N", help="Only the first N tasks (after --only and --shard).")
@click.option("--only", metavar="ID,...", help="Only these task ids (comma-separated).")
@click.option("--out", metavar="DIR", help="The bench folder: results, runs, picture (default: ./bench-out).")
@click.option("--resume", is_flag=True, help="Continue the bench in --out: skip the pairs already done.")
@click.option("--shard", metavar="I/N", help="Run only the I-th of N deterministic slices (0-based).")
@click.option("--model", metavar="MODEL", help="An offline model: scripted, oracle or noisy (default: your models).")
@click.option("--verify", default="tests", metavar="HOW", help="tests (run the task's tests) or diff (the gold patch).")
@click.option("--repos", metavar="DIR", help="Clones or bare mirrors (<owner>+<name> or <name>) for SWE-bench tasks.")
@click.option("--config", metavar="FILE", help="The bench config: per-repository environments (see the README).")
@click.option("--noise", type=float, default=0.25, metavar="SHARE",
              help="--model noisy: the share of calls that get a failure injected.")
@click.option("--seed", type=int, default=0, metavar="N", help="--model noisy: the seed of the injections.")
@click.option("--timeout", type=float, default=1800.0, metavar="SECONDS", help="Seconds one `anvil run` may take.")
@json_option
def bench_run(tasks: str, policy: tuple[str, ...], workers: int, limit: int | None, only: str | None,
              out: str | None, resume: bool, shard: str | None, model: str | None, verify: str, repos: str | None,
              config: str | None, noise: float, seed: int, timeout: float, json_output: bool) -> None:
    """Run `anvil run` on every task of TASKS (a SWE-bench .jsonl, a tasks .yaml, or a folder of exercism
    exercises), each in its own clone; verify; write one result row per task and policy."""
    _call("bench", tasks=tasks, policy=list(policy), workers=workers, limit=limit, only=only, out=out,
          resume=resume, shard=shard, model=model, verify=verify, repos=repos, config=config, noise=noise,
          seed=seed, timeout=timeout, json_output=json_output)


@bench.command("report", short_help="Per policy: resolved %, $ per resolved task, pairs; an SVG.")
@click.argument("directory", metavar="DIR")
@click.option("--csv", "csv_output", is_flag=True, help="Print CSV on stdout (one line per policy).")
@json_option
def bench_report(directory: str, csv_output: bool, json_output: bool) -> None:
    """Per policy: resolved % (95% interval), $ per task and per resolved task, tokens, time; pairs; an SVG."""
    _call("bench", _fn="report", directory=directory, json_output=json_output, csv_output=csv_output)


@bench.command("merge", short_help="Join shard folders into one bench folder.")
@click.argument("directories", metavar="DIR...", nargs=-1, required=True)
@click.option("--out", required=True, metavar="DIR", help="The merged bench folder.")
@json_option
def bench_merge(directories: tuple[str, ...], out: str, json_output: bool) -> None:
    """Join shard folders (results and ledger rows) into one bench folder."""
    _call("bench", _fn="merge", directories=list(directories), out=out, json_output=json_output)


def main() -> None:
    """The console script: click in non-standalone mode so usage errors also honour --json."""
    from anvil.ui.pipes import SafeStream, quiet_broken_pipe

    # `anvil run ... | head -3`: a reader that goes away ends the output, never the command.
    sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    args = sys.argv[1:]
    try:
        app.main(args=args, prog_name="anvil", standalone_mode=False)
    except click.exceptions.Exit as exc:
        quiet_broken_pipe()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:  # usage errors: exit 2, like every user mistake
        exc.show()
        if "--json" in args:
            print_json_error(exc.format_message(), "see `anvil --help`", exc.exit_code)
        sys.exit(exc.exit_code)
    except click.Abort:
        print("anvil: aborted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # stdout closed early (`anvil runs | head -1`): the output was not wanted, not an error.
        quiet_broken_pipe()
        sys.exit(0)
    quiet_broken_pipe()


if __name__ == "__main__":
    main()
