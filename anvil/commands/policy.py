"""`anvil policy check` and `anvil policy explain`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from anvil.errors import UserError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.evidence.stats import ModelStats
    from anvil.routing.availability import Availability


def _evidence() -> list[ModelStats]:
    """What the ledger knows of each stage and model (nothing when there is no ledger yet)."""
    from anvil.ledger.db import Ledger, default_path

    path = default_path()
    if not path.is_file():
        return []
    from anvil.evidence.stats import load

    ledger = Ledger(path)
    try:
        return load(ledger)
    finally:
        ledger.close()


def _load(*, validate_all: bool = False) -> Config:
    """The configuration; `validate_all` reads the repo layer whole, approved or not (policy check)."""
    from anvil.commands.trust import load_checked
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root

    root = find_repo_root()
    return load_config(root, trusted=True) if validate_all else load_checked(root, prompt=False)


def check(json_output: bool) -> int:
    from anvil.config.loader import ConfigError
    from anvil.ui.output import print_json

    try:
        config = _load(validate_all=True)
    except ConfigError as exc:
        if json_output:
            print_json({"ok": False, "errors": exc.errors})
            return exc.exit_code
        raise
    from anvil.config.trust import is_approved, layer_digest

    root = config.repo_root
    approved = root is None or is_approved(root)
    if json_output:
        print_json({"ok": True, "sources": list(config.sources),
                    "repo_layer": None if root is None or not layer_digest(root) else
                    ("approved" if approved else "not approved")})
    else:
        routes = f"{len(config.policy.routes)} routes, " if config.policy.routes else ""
        print(f"ok: {len(config.policy.stages)} stages, {routes}{len(config.catalogue.models)} models, "
              f"{len(config.catalogue.providers)} providers", file=sys.stdout)
        print("read: " + ", ".join(config.sources), file=sys.stderr)
        if not approved:
            print("note: the repository's .anvil/ files are valid but not approved: until `anvil trust`, "
                  "runs read only their stage routing", file=sys.stderr)
    return 0


def explain_data(
    config: Config, availability: dict[str, Availability], stages: list[str]
) -> list[dict[str, Any]]:
    from anvil.routing.resolver import resolve_stage

    found = _evidence()
    if found:  # the evidence modules cost start-up time; without a ledger there is nothing to show
        from anvil.evidence.tune import evidence_line
    result = []
    for name in stages:
        here = {s.model: s for s in found if s.stage == name}
        res = resolve_stage(name, config, availability, evidence=here)
        policy = config.policy.stage(name)
        result.append({
            "stage": name,
            "routing": res.routing,
            "capability": list(policy.capability),
            "complexity": policy.complexity,
            "timeout": policy.timeout,
            "retry_budget": policy.retry_budget,
            "chain": [
                {
                    "model": r.id,
                    "tier": r.tier,
                    "provider": r.provider_name,
                    "context_window": r.context_window,
                    "input_per_million": r.price.input,
                    "output_per_million": r.price.output,
                    "price_source": r.price.source,
                    "evidence": evidence_line(here[r.id]) if r.id in here else None,
                }
                for r in res.chain
            ],
            "excluded": [{"model": e.model_id, "reason": e.reason} for e in res.excluded],
        })
    return result


def explain(stage: str | None, offline: bool, json_output: bool) -> int:
    from anvil.config.schema import STAGES
    from anvil.routing.availability import check_providers
    from anvil.ui.output import out_console, per_million, print_json

    config = _load()
    names = [*STAGES, *config.policy.routes]  # named routes (`anvil serve`'s anvil/<route>) resolve the same way
    if stage is not None and stage not in names:
        raise UserError(f"unknown stage or route {stage!r}", hint="the stages are: " + ", ".join(STAGES)
                        + ("; the routes: " + ", ".join(config.policy.routes) if config.policy.routes else ""))
    availability = check_providers(config, probe=not offline)
    data = explain_data(config, availability, [stage] if stage else names)
    if json_output:
        print_json(
            {
                "stages": data,
                "providers": {k: {"usable": v.usable, "reason": v.reason} for k, v in availability.items()},
            }
        )
        return 0
    from rich.table import Table

    console = out_console()
    for entry in data:
        table = Table(title=f"{entry['stage']}  ({entry['routing']}; needs {', '.join(entry['capability'])}, "
                            f"complexity {entry['complexity']}, timeout {entry['timeout']:g}s)",
                      title_justify="left", expand=False)
        for col in ("#", "model", "tier", "provider", "context", "$/M in", "$/M out"):
            table.add_column(col, justify="right" if col in ("#", "context", "$/M in", "$/M out") else "left")
        for i, link in enumerate(entry["chain"], 1):
            price_note = "" if link["price_source"] == "table" else f" ({link['price_source']})"
            table.add_row(str(i), link["model"], link["tier"], link["provider"], f"{link['context_window']:,}",
                          per_million(link["input_per_million"]) + price_note, per_million(link["output_per_million"]))
        if not entry["chain"]:
            table.add_row("-", "[bold red]no usable model[/]: this stage cannot run", "", "", "", "", "")
        console.print(table)
        for link in entry["chain"]:
            if link["evidence"]:
                console.print(f"   evidence {link['evidence']}", style="dim", soft_wrap=True)
        for ex in entry["excluded"]:
            if not ex["reason"].startswith("tier ") and not ex["reason"].startswith("not in the stage"):
                console.print(f"   left out {ex['model']}: {ex['reason']}", style="dim", soft_wrap=True)
        console.print()
    return 0


def run(action: str, json_output: bool = False, stage: str | None = None, offline: bool = False) -> int:
    if action == "check":
        return check(json_output)
    return explain(stage, offline, json_output)
