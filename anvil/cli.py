"""The `anvil` command line: signatures and help only.

Each command is a thin function that imports its body from
`anvil.commands.<name>` when it runs, so `anvil --help` stays fast and a
command's heavy imports (httpx, rich, pydantic, tree-sitter) are paid only by
that command. Results go to stdout, progress and diagnostics to stderr.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from anvil import __version__

app = typer.Typer(
    name="anvil",
    help=(
        "A coding agent that routes each stage of the work to the cheapest model good enough "
        "for it, and knows what every call cost.\n\n"
        "Start with `anvil demo` (offline, no key), then `anvil init` in your repository."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich's help renderer costs ~150 ms of imports on every --help.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
policy_app = typer.Typer(help="Inspect and validate the stage policy and model catalogue.", no_args_is_help=True,
                         rich_markup_mode=None)
cost_app = typer.Typer(help="What runs, stages and models cost (from the ledger).", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(policy_app, name="policy")
app.add_typer(cost_app, name="cost")
memory_app = typer.Typer(help="What anvil remembers about this repository (facts, their sources and anchors).",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(memory_app, name="memory")

JSON_HELP = "Print machine-readable JSON on stdout."


def _call(module: str, **kwargs: Any) -> None:
    """Run `anvil.commands.<module>.run(**kwargs)`, turning user errors into clean exits."""
    from anvil.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, AnvilError

    try:
        try:
            mod = importlib.import_module(f"anvil.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"anvil.commands.{module}":
                _fail(f"`{module.replace('_', ' ')}` is not built yet in this version of anvil", None)
                raise typer.Exit(EXIT_INTERNAL) from None
            raise
        code = mod.run(**kwargs)
    except AnvilError as exc:
        errors: list[str] = list(getattr(exc, "errors", None) or [])  # a ConfigError lists every problem
        for line in errors:
            print(line, file=sys.stderr)
        _fail(f"{len(errors)} error(s) in the configuration" if errors else exc.message, exc.hint)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _fail("interrupted", None)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if code:
        raise typer.Exit(int(code))


def _fail(message: str, hint: str | None) -> None:
    print(f"anvil: error: {message}", file=sys.stderr)
    if hint:
        print(f"  hint: {hint}", file=sys.stderr)


def _version(value: bool) -> None:
    if value:
        print(f"anvil {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """anvil: stage-routed coding agent."""


# ------------------------------------------------------------------ set-up


@app.command()
def init(
    yes: bool = typer.Option(False, "--yes", "-y", help="Never prompt; keep an existing config unless --force."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing .anvil/config.yaml."),
    policies: bool = typer.Option(
        False, "--policies", help="Also write repo-local copies of stage-policy.yaml and models.yaml to edit."
    ),
    offline: bool = typer.Option(False, "--offline", help="Do not probe local model servers."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Detect languages, test/lint commands, default branch and usable providers; write .anvil/config.yaml."""
    _call("init", yes=yes, force=force, policies=policies, offline=offline, json_output=json_output)


@app.command()
def doctor(
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Live checks of each provider: key present, endpoint reachable, model listed."""
    _call("doctor", json_output=json_output)


@app.command()
def models(
    offline: bool = typer.Option(False, "--offline", help="Do not probe local model servers."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The model catalogue: tier, provider, context window, price, availability."""
    _call("models", offline=offline, json_output=json_output)


# ------------------------------------------------------------------ memory


@memory_app.command("list")
def memory_list(
    include_forgotten: bool = typer.Option(False, "--all", help="Also list forgotten facts."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The remembered facts: live, stale (an anchor changed) and, with --all, forgotten."""
    _call("memory", action="list", include_forgotten=include_forgotten, json_output=json_output)


@memory_app.command("show")
def memory_show(
    fact_id: int = typer.Argument(..., metavar="ID"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One fact with its source, validity and anchors."""
    _call("memory", action="show", fact_id=fact_id, json_output=json_output)


@memory_app.command("add")
def memory_add(
    text: str = typer.Argument(..., metavar="TEXT"),
    file: str | None = typer.Option(None, "--file", help="Anchor the fact to this file (stale when it changes)."),
    symbol: str | None = typer.Option(None, "--symbol", help="Anchor to this function or class in --file."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Remember a fact (adding a known fact again confirms it)."""
    _call("memory", action="add", text=text, file=file, symbol=symbol, json_output=json_output)


@memory_app.command("confirm")
def memory_confirm(
    fact_id: int = typer.Argument(..., metavar="ID"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Accept a stale fact again as its anchors read now."""
    _call("memory", action="confirm", fact_id=fact_id, json_output=json_output)


@memory_app.command("forget")
def memory_forget(fact_id: int = typer.Argument(..., metavar="ID")) -> None:
    """Stop using a fact (it is kept, with the time it stopped being true)."""
    _call("memory", action="forget", fact_id=fact_id)


@memory_app.command("stale")
def memory_stale(json_output: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Check every anchor against the checkout now and list the facts that drifted."""
    _call("memory", action="stale", json_output=json_output)


# ------------------------------------------------------------------ policy


@policy_app.command("check")
def policy_check(
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Validate the layered stage-policy.yaml and models.yaml; errors name file, line and key."""
    _call("policy", action="check", json_output=json_output)


@policy_app.command("explain")
def policy_explain(
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
    offline: bool = typer.Option(False, "--offline", help="Do not probe local model servers."),
    estimate: bool = typer.Option(False, "--estimate", help="Forecast a run's tokens and dollars per stage."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """For each stage: the ordered chain of models, and why every other model was left out."""
    if estimate:
        _call("evidence", action="estimate", json_output=json_output)
        return
    _call("policy", action="explain", stage=stage, offline=offline, json_output=json_output)


@policy_app.command("stats")
def policy_stats(
    stage: str | None = typer.Option(None, "--stage", help="Only this stage."),
    repo: str | None = typer.Option(None, "--repo", help="Only this repository (default: the current one)."),
    all_repos: bool = typer.Option(False, "--all", help="Every repository."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Per stage and model: attempts, success rate (95% interval), $ per attempt and per success."""
    _call("evidence", action="stats", stage=stage, repo=repo, all_repos=all_repos, json_output=json_output)


@policy_app.command("tune")
def policy_tune(
    min_success: float = typer.Option(0.7, "--min-success", metavar="P", help="Success rate a model must clear."),
    confidence: float = typer.Option(0.9, "--confidence", metavar="C", help="How sure the evidence must be."),
    write: str | None = typer.Option(None, "--write", metavar="LAYER", help="Write it to `home` or `repo`."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The chain per stage that minimises expected $ per success, as a stage-policy.yaml diff."""
    _call("evidence", action="tune", min_success=min_success, confidence=confidence, write=write,
          json_output=json_output)


# ------------------------------------------------------------------ running


@app.command()
def run(
    request: str = typer.Argument(..., help="What to build, in one line (or - to read it from stdin)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Never prompt: clarify records assumptions instead of asking."),
    budget: float | None = typer.Option(
        None, "--budget", help="Stop the run before it spends more than this many dollars."
    ),
    pr: bool = typer.Option(False, "--pr", help="Push the branch and open a pull request."),
    remote: str | None = typer.Option(None, "--remote", help="Git remote to push to (default: origin)."),
    base: str | None = typer.Option(None, "--base", help="Base branch (default: the repo's default branch)."),
    local: bool = typer.Option(
        False, "--local", help="Route every stage to local models (Ollama or an embedded GGUF): fully offline."
    ),
    estimate: bool = typer.Option(False, "--estimate", help="Only forecast the run's cost; call no model."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the pipeline: clarify, plan, build, test, validate, review, ship."""
    if estimate:
        _call("evidence", action="estimate", json_output=json_output)
        return
    _call("run", request=request, yes=yes, budget=budget, pr=pr, remote=remote, base=base,
          local=local, json_output=json_output)


@app.command()
def resume(
    run_id: str = typer.Argument(..., metavar="RUN", help="Run id (a unique prefix is enough)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Never prompt."),
    budget: float | None = typer.Option(None, "--budget", help="A new dollar budget for the run."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Continue an interrupted or failed run from its first unfinished stage."""
    _call("resume", run_id=run_id, yes=yes, budget=budget, json_output=json_output)


@app.command()
def runs(
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The runs of this repository: id, request, status, stage reached, cost, age."""
    _call("runs", json_output=json_output)


@app.command()
def show(
    run_id: str = typer.Argument(..., metavar="RUN", help="Run id (a unique prefix is enough)."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One run: its stages, models, attempts, burns, artifacts and cost."""
    _call("show", run_id=run_id, json_output=json_output)


@app.command()
def ask(
    prompt: str = typer.Argument(..., help="The prompt (or - to read it from stdin)."),
    model: str | None = typer.Option(None, "--model", "-m", help="A model id from `anvil models`."),
    stage: str | None = typer.Option(
        None, "--stage", help="Use this stage's chain instead of one model (default: clarify's)."
    ),
    system: str | None = typer.Option(None, "--system", help="A system prompt."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One call through the resolver and chain-walker: test a provider entry, debug a model config."""
    _call("ask", prompt=prompt, model=model, stage=stage, system=system, json_output=json_output)


@app.command()
def context(
    request: str = typer.Argument(..., help="The request, as you would give it to `anvil run`."),
    budget: int = typer.Option(8000, "--budget", help="Token budget of the context pack."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """What the plan stage would see: ranked files with scores, chosen chunks, tokens used."""
    _call("context", request=request, budget=budget, json_output=json_output)


@app.command()
def demo(
    directory: str | None = typer.Option(
        None, "--dir", help="Where to copy the example repo (default: a temporary folder)."
    ),
    no_tests: bool = typer.Option(
        False, "--no-tests", help="Run the example's tests with anvil's small built-in runner instead of pytest."
    ),
    svg: str | None = typer.Option(None, "--svg", hidden=True, help="Also save the screen as an SVG picture."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The whole pipeline, offline, on a bundled example repo with a scripted model server (no key needed)."""
    _call("demo", directory=directory, no_tests=no_tests, svg=svg, json_output=json_output)


@app.command()
def serve(
    port: int = typer.Option(8765, "--port", "-p", help="TCP port on 127.0.0.1 (0 picks a free one and prints it)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Only 127.0.0.1 (or localhost): anything else is refused."),
    policy: str | None = typer.Option(None, "--policy", help="A stage-policy.yaml layered on top (stages, routes:)."),
    commit_window: int = typer.Option(
        2048, "--commit-window",
        help="Characters of a streamed answer held back and checked before the client sees any (0: stream at once).",
    ),
    commit_seconds: float = typer.Option(
        4.0, "--commit-seconds", help="... or seconds after the first token, whichever comes first."
    ),
    session_ttl: float = typer.Option(
        3600.0, "--session-ttl", help="Seconds a conversation stays on its model after its last request."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the base URLs, token and models as one JSON line."),
) -> None:
    """An OpenAI- and Anthropic-compatible gateway on 127.0.0.1: other agents get anvil's routing and ledger."""
    _call("serve", port=port, host=host, policy=policy, commit_window=commit_window, commit_seconds=commit_seconds,
          session_ttl=session_ttl, json_output=json_output)


# ------------------------------------------------------------------ cost


@cost_app.command("report")
def cost_report(
    by: list[str] | None = typer.Option(
        None, "--by", help="Group by stage, model, provider, run, day, repo, client, session or preset (repeatable)."
    ),
    since: str | None = typer.Option(None, "--since", help="From this date (YYYY-MM-DD) or age (7d, 24h)."),
    until: str | None = typer.Option(None, "--until", help="Up to this date (YYYY-MM-DD)."),
    run_id: str | None = typer.Option(None, "--run", help="Only this run."),
    repo: str | None = typer.Option(None, "--repo", help="Only this repository (default: the current one)."),
    all_repos: bool = typer.Option(False, "--all", help="Every repository."),
    baseline: str | None = typer.Option(
        None, "--baseline", help="Also show what the same tokens would have cost on this model."
    ),
    demo_rows: bool = typer.Option(False, "--demo", help="Include rows recorded by `anvil demo`."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
    csv_output: bool = typer.Option(False, "--csv", help="Print CSV on stdout."),
) -> None:
    """Spend by stage, model, provider, run, day, repo or (served traffic) client, session, preset."""
    _call("cost", by=by or [], since=since, until=until, run_id=run_id, repo=repo, all_repos=all_repos,
          baseline=baseline, demo_rows=demo_rows, json_output=json_output, csv_output=csv_output)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
