"""`anvil demo`: the whole pipeline, offline and without a key, on a bundled example repository.

It copies `examples/python-cli` into a new folder (a temporary one unless
`--dir`), commits it, runs init's detection, starts the scripted model server
in this process, points three providers at it (a free local one on the Ollama
protocol, two cheap OpenAI-protocol models, a premium Anthropic one, named as
the real models they stand for), and runs the request through
`anvil.commands.run.execute`: the same runner, walker, ledger, git and test
command as `anvil run`. Only the model's words are scripted (anvil.demo.story).

The user's own folders are left alone: the demo reads no user policy file,
writes only into its folder and the ledger, and its ledger rows are marked as
demo rows (left out of `anvil cost report` unless `--demo`).
"""

from __future__ import annotations

import io
import os
import shlex
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.routing.availability import Availability
    from anvil.routing.resolver import ResolvedModel

SVG_WIDTH = 118  # columns of the picture (and of piped output)


class _ConsoleStream(io.TextIOBase):
    """A text stream that prints whole lines through a rich console (so `--svg` records them)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.buf = ""
        self.started = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self._emit(line)
        return len(s)

    def _emit(self, line: str) -> None:
        from rich.text import Text

        if not self.started:
            self.started = True
            self.console.print()
        self.console.print(Text.from_ansi(line), soft_wrap=True)

    def flush(self) -> None:
        if self.buf:
            line, self.buf = self.buf, ""
            self._emit(line)


def make_console(json_output: bool, svg: str | None) -> Any:
    from rich.console import Console

    stream = sys.stderr if json_output else sys.stdout
    width: int | None
    if svg:
        width = SVG_WIDTH
    elif stream.isatty():
        width = min(Console(file=stream).width, 120)
    else:
        width = SVG_WIDTH
    return Console(file=stream, width=width, record=bool(svg), highlight=False, soft_wrap=False)


def _say_scripted(console: Any, at_end: bool) -> None:
    from rich.panel import Panel

    if not at_end:
        text = ("[bold]anvil demo[/]: the whole pipeline on a bundled example repository, offline, no API key.\n"
                "[bold yellow]The model server is scripted[/]: its answers are canned. Everything else is real: "
                "the vendor adapters and wire protocols, routing, the chain-walker, git, the test command and "
                "the cost ledger priced from the real price table.")
    else:
        text = ("[bold yellow]That model server was scripted[/] (canned answers, so the demo runs offline); "
                "the routing, the 429 and the burn, the retry, the tests, the commit and the prices were real. "
                "With your keys, `anvil init` then `anvil run \"...\"` does the same on your repository.")
    console.print(Panel(text, border_style="yellow", padding=(0, 1)))


def _baseline(config: Config, model_id: str) -> ResolvedModel:
    from anvil.ledger.pricing import model_price
    from anvil.routing.resolver import ResolvedModel

    m = config.catalogue.model(model_id)
    assert m is not None, f"the demo's catalogue has {model_id}"
    p = config.catalogue.providers[m.provider]
    return ResolvedModel(m, m.provider, p, model_price(m, p))


def _demo_availability(config: Config) -> dict[str, Availability]:
    """Only the demo's providers are checked: the user's real ones are never probed or used."""
    from anvil.routing.availability import check_provider

    return {name: check_provider(name, entry, timeout=2.0)
            for name, entry in config.catalogue.providers.items() if name.startswith("demo-")}


def run(directory: str | None = None, json_output: bool = False, svg: str | None = None,
        no_tests: bool = False) -> int:
    from anvil.commands.run import check_chains, execute, run_secrets
    from anvil.demo import repo as demo_repo
    from anvil.demo import story as demo_story
    from anvil.demo.screen import DemoProgress, print_costs, print_routing
    from anvil.errors import AnvilError
    from anvil.ledger.db import default_path
    from anvil.ledger.opening import open_ledger
    from anvil.ledger.report import Filter, build_report
    from anvil.providers.scripted.server import ScriptedServer
    from anvil.run.runner import STAGES
    from anvil.run.store import RunStore

    t0 = time.monotonic()
    console = make_console(json_output, svg)
    _say_scripted(console, at_end=False)
    repo = demo_repo.prepare(directory, demo_story.EXAMPLE, no_tests=no_tests)
    console.print(f"repo:    [bold]{repo.root}[/]  (a copy of examples/{demo_story.EXAMPLE}, one commit on main; "
                  "`anvil init` done)")
    console.print(f"request: [bold]\"{demo_story.REQUEST}\"[/]")
    console.print()

    saved = {k: os.environ.get(k) for k in (demo_story.KEY_ENV, "TMPDIR", "NO_PROXY", "no_proxy")}
    os.environ[demo_story.KEY_ENV] = demo_story.DUMMY_KEY  # the scripted server wants a key; never a real one
    os.environ["TMPDIR"] = str(repo.tmp)  # the test command's temp files stay in the demo folder
    for var in ("NO_PROXY", "no_proxy"):  # an HTTP(S)_PROXY must not catch the loopback server
        os.environ[var] = ",".join(x for x in (os.environ.get(var), "127.0.0.1", "localhost") if x)
    server = ScriptedServer().start()
    error: AnvilError | None = None
    try:
        pipeline = demo_story.pipeline()
        server.add_responder(pipeline)
        demo_repo.write_policy(repo, server.url)
        config = demo_repo.load_demo_config(repo)
        availability = _demo_availability(config)
        check_chains(config, availability)
        print_routing(console, config, availability, demo_story.MODELS)
        console.print()

        run_obj = RunStore(repo.root).create(demo_story.REQUEST, {"yes": True, "base": "main", "demo": True},
                                             secrets=run_secrets(config))
        run_obj.state.base_ref = "main"
        run_obj.save()
        console.print(f"[bold]The run[/] {run_obj.id}, live (the same runner as `anvil run`):")
        progress = DemoProgress(console, run_obj, default_path(), {demo_story.LOCAL}, repo.root)
        out, table = _ConsoleStream(console), io.StringIO()
        try:
            # execute's result lines (stdout) are shown; its end-of-run table (stderr) repeats the
            # stage lines above and the cost table below, so it is shown only when the run failed.
            with redirect_stdout(out), redirect_stderr(table):
                execute(run_obj, config, repo.root, yes=True, pr=False, remote=None, json_output=False,
                        availability=availability, progress=progress, demo=True)
        except AnvilError as exc:
            error = exc
            out.write(table.getvalue())
        finally:
            out.flush()
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    state = run_obj.state
    with open_ledger() as led:
        report = build_report(led.conn, ["stage"], Filter(run_id=run_obj.id, demo=True),
                              _baseline(config, demo_story.BASELINE))
    console.print()
    print_costs(console, report, run_obj.id, STAGES)
    console.print()
    where = shlex.quote(str(repo.root))
    commands = [f"cd {where} && anvil show {run_obj.id}",
                f"anvil cost report --run {run_obj.id} --demo --baseline {demo_story.BASELINE}",
                f"git -C {where} log --stat main..{state.branch}" if state.branch else ""]
    commands = [c for c in commands if c]
    _say_scripted(console, at_end=True)
    console.print("Look further:")
    for c in commands:
        console.print(f"  [cyan]{c}[/]", soft_wrap=True)
    elapsed = time.monotonic() - t0
    console.print(f"[dim]demo finished in {elapsed:.1f}s[/]")
    if svg:
        Path(svg).parent.mkdir(parents=True, exist_ok=True)
        console.save_svg(svg, title="anvil demo")
    if json_output:
        from anvil.commands.run import result_json
        from anvil.ui.output import print_json

        data = result_json(run_obj)
        data.update(demo=True, scripted=True, repo=str(repo.root), baseline=demo_story.BASELINE,
                    baseline_dollars=None if report.total.baseline is None else str(report.total.baseline),
                    saving=None if report.total.saving is None else str(report.total.saving),
                    commands=commands, seconds=round(elapsed, 2))
        print_json(data)
    if error is not None:
        raise error
    return 0
