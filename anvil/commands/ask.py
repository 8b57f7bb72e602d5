"""`anvil ask "prompt"`: one call through the resolver and the chain-walker.

For trying a provider entry or a model config: the same path a stage takes
(resolver, walker, ledger), with the answer on stdout (streamed when stdout is
a terminal) and the model, tokens and cost on stderr. Its ledger rows have the
stage `ask` and a run id of their own.
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from anvil.errors import UserError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.providers.types import ChatRequest, StreamEvent
    from anvil.routing.resolver import ResolvedModel
    from anvil.routing.walker import WalkResult
    from anvil.stages.names import StageName

DEFAULT_STAGE = "clarify"  # cheap-first in the bundled policy: a quick question should cost little


def _read_prompt(prompt: str) -> str:
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise UserError("the prompt is empty", hint='anvil ask "your question" (or - to read it from stdin)')
    return text


def chain_for(config: Config, stage: StageName, model: str | None) -> list[ResolvedModel]:
    from anvil.routing.availability import check_providers
    from anvil.routing.resolver import resolve_stage

    if model is not None and config.catalogue.model(model) is None:
        known = ", ".join(m.id for m in config.catalogue.models)
        raise UserError(f"--model {model}: not in the catalogue", hint=f"see `anvil models` ({known})")
    avail = check_providers(config)
    res = resolve_stage(stage, config, avail, pinned_model=model)
    if not res.chain:
        from anvil.errors import NoUsableModel

        if model is not None:
            why = "; ".join(e.reason for e in res.excluded if e.model_id == model)
            raise NoUsableModel(f"--model {model} is not usable: {why}",
                                hint="`anvil doctor` shows which providers are usable and why")
        raise NoUsableModel(res.no_model_message(), hint=res.no_model_hint())
    return res.chain


def _request(config: Config, stage: StageName, text: str, system: str | None) -> ChatRequest:
    from anvil.providers.types import Message
    from anvil.routing.request import stage_request

    messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    return stage_request(config.policy.stage(stage), messages)


def _summary(walk: WalkResult) -> str:
    from anvil.ui.output import money

    u = walk.result.usage
    cache = f" (cache read {u.cache_read_tokens:,}, write {u.cache_write_tokens:,})" \
        if u.cache_read_tokens or u.cache_write_tokens else ""
    cost = money(walk.dollars, 6) if walk.dollars is not None else "unknown"
    served = walk.result.served_model
    same = served in (walk.model.model.wire_name, walk.model.id)
    lines = [f"model {walk.model.id} ({walk.model.provider_name}{'' if same else ', served ' + served}) · "
             f"tokens in {u.input_tokens:,}{cache} out {u.output_tokens:,} · cost {cost} ({walk.cost_source})"]
    failed = [a for a in walk.attempts if a.outcome != "ok"]
    if failed:
        lines.append("before it:")
        lines += [a.line() for a in failed]
    return "\n".join(lines)


def run(prompt: str, model: str | None = None, stage: str | None = None, system: str | None = None,
        json_output: bool = False, trust_repo: bool = False) -> int:
    from anvil.commands.trust import load_checked
    from anvil.ledger.db import repo_key
    from anvil.ledger.opening import open_ledger
    from anvil.paths import find_repo_root
    from anvil.providers.types import TextDelta
    from anvil.routing.walker import AttemptReset, CallSite, Walker
    from anvil.stages.names import STAGES, is_stage

    text = _read_prompt(prompt)
    root = find_repo_root()
    config = load_checked(root, trust_repo=trust_repo, yes=prompt == "-")
    stage_name = stage or DEFAULT_STAGE
    if not is_stage(stage_name):
        raise UserError(f"--stage {stage_name}: unknown stage", hint=f"one of: {', '.join(STAGES)}")
    chain = chain_for(config, stage_name, model)
    request = _request(config, stage_name, text, system)
    run_id = "ask-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    site = CallSite(run_id=run_id, stage="ask", repo=repo_key(root) if root is not None else "")
    from anvil.ui.safe import StreamCleaner, printable

    live = sys.stdout.isatty() and not json_output
    streamed: list[bool] = [False]
    # The answer is the model's (or a server's) text: escape sequences in it never reach the terminal.
    cleaner = StreamCleaner()

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            sys.stdout.write(cleaner.feed(event.text))
            sys.stdout.flush()
            streamed[0] = True
        elif isinstance(event, AttemptReset) and streamed[0]:
            sys.stdout.write(cleaner.flush() + "\n")
            print(printable(f"[{event.model} failed mid-answer ({event.reason}); the text above is discarded]"),
                  file=sys.stderr)
            streamed[0] = False

    with open_ledger() as ledger:
        walker = Walker(config.catalogue.walker, ledger=ledger, config=config)
        walk = walker.call(chain, request, site, on_event=on_event if live else None)
    result = walk.result
    if json_output:
        from anvil.ui.output import print_json

        u = result.usage
        print_json({
            "text": result.text, "model": walk.model.id, "provider": walk.model.provider_name,
            "served_model": result.served_model, "finish_reason": result.finish_reason,
            "usage": {"input_tokens": u.input_tokens, "cache_read_tokens": u.cache_read_tokens,
                      "cache_write_tokens": u.cache_write_tokens, "output_tokens": u.output_tokens,
                      "reasoning_tokens": u.reasoning_tokens},
            "dollars": None if walk.dollars is None else walk.dollars, "cost_source": walk.cost_source,
            "latency_s": result.latency_s, "ttft_s": result.ttft_s, "run_id": run_id,
            "attempts": [a.to_json() for a in walk.attempts],
        })
        return 0
    if live and streamed[0]:
        sys.stdout.write(cleaner.flush())
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
    else:
        text = printable(result.text)
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
    sys.stdout.flush()
    print(printable(_summary(walk)), file=sys.stderr)
    return 0
