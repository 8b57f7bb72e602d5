"""`anvil policy stats`, `anvil policy tune`, and the forecast of `anvil run --estimate`."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.errors import UserError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.evidence.forecast import Forecast
    from anvil.ledger.db import Ledger

NOT_ENOUGH = "not enough data: no stage attempt has an outcome in the ledger yet"


def _ledger() -> Ledger | None:
    from anvil.ledger.db import Ledger, default_path

    path = default_path()
    return Ledger(path) if path.is_file() else None


def _repo_scope(repo: str | None, all_repos: bool) -> str | None:
    from anvil.ledger.db import repo_key
    from anvil.paths import find_repo_root

    if all_repos:
        return None
    if repo:
        return repo_key(Path(repo).resolve())
    root = find_repo_root()
    return repo_key(root) if root is not None else None


def _money(d: Decimal | None, places: int = 4) -> str:
    return "unpriced" if d is None else f"${d:.{places}f}"


def stats(stage: str | None, repo: str | None, all_repos: bool, json_output: bool) -> int:
    from anvil.evidence.stats import load
    from anvil.stages.names import STAGES
    from anvil.ui.output import print_json

    if stage is not None and stage not in STAGES:
        raise UserError(f"--stage {stage}: unknown stage", hint="one of: " + ", ".join(STAGES))
    ledger = _ledger()
    rows = load(ledger, stage=stage, repo=_repo_scope(repo, all_repos)) if ledger else []
    if json_output:
        print_json({"models": [r.to_json() for r in rows], "note": None if rows else NOT_ENOUGH})
        return 0
    if not rows:
        print(NOT_ENOUGH + " (run `anvil run` or `anvil bench` first; `--all` looks at every repository)")
        return 0
    print(f"{'stage':<9} {'model':<28} {'attempts':>8} {'success':>8} {'95% interval':>14} "
          f"{'$/attempt':>10} {'tokens/att':>10} {'$/success':>10}")
    for r in rows:
        lo, hi = r.interval()
        print(f"{r.stage:<9} {r.model:<28} {r.attempts:>8} {r.rate:>8.0%} {f'{lo:.0%}-{hi:.0%}':>14} "
              f"{_money(r.dollars_per_attempt):>10} {r.tokens_per_attempt:>10.0f} {_money(r.dollars_per_success):>10}")
    return 0


def tune(min_success: float, confidence: float, write: str | None, json_output: bool) -> int:
    from anvil.config.loader import load_config
    from anvil.evidence.stats import load
    from anvil.evidence.tune import propose, render_diff, write_layer
    from anvil.paths import anvil_home, find_repo_root
    from anvil.routing.availability import check_providers
    from anvil.routing.resolver import resolve_stage
    from anvil.stages.names import STAGES
    from anvil.ui.output import print_json

    if not 0 < min_success < 1 or not 0.5 <= confidence < 1:
        raise UserError("--min-success must be between 0 and 1, --confidence between 0.5 and 1")
    if write not in (None, "home", "repo"):
        raise UserError(f"--write {write}: the layer is `home` ($ANVIL_HOME) or `repo` (.anvil/ of this repository)")
    root = find_repo_root()
    config = load_config(root)
    ledger = _ledger()
    rows = load(ledger) if ledger else []
    availability = check_providers(config, probe=False)
    proposals = []
    for name in STAGES:
        current = [m.id for m in resolve_stage(name, config, availability).chain]
        proposals.append(propose(name, current, rows, min_success=min_success, confidence=confidence,
                                 retries=config.policy.stage(name).retry_budget))
    changed = [p for p in proposals if p.changed]
    if json_output:
        print_json({"stages": [p.to_json() for p in proposals], "note": None if rows else NOT_ENOUGH})
    elif not rows:
        print(NOT_ENOUGH + ": every stage keeps your order")
    else:
        for p in proposals:
            if not p.changed and p.note:
                print(f"{p.stage}: {p.note}", file=sys.stderr)
        print(render_diff(proposals) if changed else "no change: the evidence does not beat your order anywhere")
    if write and changed:
        if write == "repo":
            if root is None:
                raise UserError("--write repo: not inside a git repository")
            target = root / ".anvil" / "stage-policy.yaml"
        else:
            target = anvil_home() / "stage-policy.yaml"
        stages = write_layer(target, changed)
        print(f"wrote {', '.join(stages)} to {target} (the file is rewritten: its comments are not kept)",
              file=sys.stderr)
    return 0


def forecast_for(config: Config, root: Path | None) -> Forecast:
    from anvil.evidence.forecast import forecast
    from anvil.ledger.db import repo_key
    from anvil.routing.availability import check_providers
    from anvil.routing.resolver import resolve_stage
    from anvil.stages.names import STAGES

    availability = check_providers(config, probe=False)
    prices: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for name in STAGES:
        chain = resolve_stage(name, config, availability).chain
        if chain:
            prices[name] = (chain[0].price.input, chain[0].price.output)
    return forecast(_ledger(), repo_key(root) if root is not None else None, prices)


def print_forecast(fc: Forecast, json_output: bool) -> None:
    from anvil.ui.output import print_json

    if json_output:
        print_json({"forecast": fc.to_json()})
        return
    where = {"repo": "this repository's", "all": "all repositories'", "default": "no"}[fc.source]
    print(f"forecast from {where} history ({fc.runs} run(s)); no model was called")
    print(f"{'stage':<9} {'source':<8} {'tokens p50':>11} {'tokens p90':>11} {'$ p50':>10} {'$ p90':>10}")
    for s in fc.stages:
        print(f"{s.stage:<9} {s.source:<8} {s.tokens_p50:>11,} {s.tokens_p90:>11,} {_money(s.dollars_p50):>10} "
              f"{_money(s.dollars_p90):>10}")
    lo, hi = fc.total_dollars
    print(f"{'run':<9} {'':<8} {fc.total_tokens[0]:>11,} {fc.total_tokens[1]:>11,} {_money(lo):>10} {_money(hi):>10}")


def estimate(json_output: bool) -> int:
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root

    root = find_repo_root()
    print_forecast(forecast_for(load_config(root), root), json_output)
    return 0


def run(action: str, **kwargs: Any) -> int:
    if action == "stats":
        return stats(**kwargs)
    if action == "tune":
        return tune(**kwargs)
    return estimate(**kwargs)
