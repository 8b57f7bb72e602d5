"""Tuned routing vs all-premium vs price order, on a simulated mix of tasks (issue 18).

    python benchmarks/routing_sim.py [--tasks 2000] [--seed 1]

The models' per-stage success rates are fixed below *before* any tuning (a
stand-in for what `anvil bench` oracle/noisy runs or a team's ledger measure);
prices are the bundled catalogue's real ones (genai-prices or the catalogue's
overrides). Half of the tasks are the tuning half: every model attempts every
stage once per task and the outcomes go into a real ledger, which
`anvil.evidence` (the code behind `anvil policy tune`) turns into a chain per
stage. The other half is held out: each policy walks it (a stage gets
`retry_budget + 1` attempts, down its chain, the last model repeated) and the
table reports resolved % and dollars per resolved task on that half only.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anvil.config.loader import load_config  # noqa: E402
from anvil.evidence.stats import load  # noqa: E402
from anvil.evidence.tune import propose  # noqa: E402
from anvil.ledger.db import Ledger, to_pico  # noqa: E402
from anvil.ledger.pricing import model_price  # noqa: E402

STAGES = ("clarify", "plan", "build", "test", "validate", "review", "ship")
# (input, output) tokens of one attempt of each stage: a mid-sized change
SIZE = {"clarify": (3000, 500), "plan": (14000, 1500), "build": (22000, 3000), "test": (9000, 1500),
        "validate": (5000, 500), "review": (14000, 1200), "ship": (2500, 200)}
# Success rate of one attempt, per model and stage; fixed before any tuning.
RATES: dict[str, dict[str, float]] = {
    "claude-opus-5-5":       {"clarify": .97, "plan": .95, "build": .93, "test": .95, "validate": .97, "review": .95, "ship": .99},  # noqa: E501
    "claude-sonnet-5-5":     {"clarify": .96, "plan": .93, "build": .91, "test": .94, "validate": .96, "review": .93, "ship": .99},  # noqa: E501
    "claude-haiku-5-5":      {"clarify": .93, "plan": .78, "build": .72, "test": .85, "validate": .92, "review": .80, "ship": .98},  # noqa: E501
    "gpt-5.4-mini":          {"clarify": .93, "plan": .80, "build": .84, "test": .88, "validate": .92, "review": .78, "ship": .98},  # noqa: E501
    "gemini-3.5-flash-lite": {"clarify": .90, "plan": .55, "build": .45, "test": .70, "validate": .88, "review": .60, "ship": .97},  # noqa: E501
    "deepseek-v4-flash":     {"clarify": .91, "plan": .70, "build": .76, "test": .82, "validate": .90, "review": .70, "ship": .97},  # noqa: E501
}
PREMIUM = "claude-opus-5-5"
RETRIES = 2


def prices() -> dict[str, Decimal]:
    """Dollars of one attempt of each stage, per model (None-priced models are left out)."""
    config = load_config(None)
    out: dict[str, dict[str, Decimal]] = {}
    for mid in RATES:
        m = config.catalogue.model(mid)
        if m is None:
            continue
        p = model_price(m, config.catalogue.providers[m.provider])
        if p.input is None or p.output is None:
            continue
        out[mid] = {s: (Decimal(i) * p.input + Decimal(o) * p.output) / 1_000_000 for s, (i, o) in SIZE.items()}
    return out  # type: ignore[return-value]


def walk(chain: list[str], stage: str, cost: dict[str, dict[str, Decimal]], rng: random.Random) -> tuple[bool, Decimal]:
    steps = (chain + [chain[-1]] * (RETRIES + 1))[:RETRIES + 1]
    spent = Decimal(0)
    for m in steps:
        spent += cost[m][stage]
        if rng.random() < RATES[m][stage]:
            return True, spent
    return False, spent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-success", type=float, default=0.7)
    ap.add_argument("--confidence", type=float, default=0.9)
    args = ap.parse_args()
    cost = prices()
    models = [m for m in RATES if m in cost]
    rng = random.Random(args.seed)
    tune_n = args.tasks // 2
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger.db")
        for t in range(tune_n):  # the tuning half: every model, every stage, once
            for stage in STAGES:
                for m in models:
                    ok = rng.random() < RATES[m][stage]
                    ledger.record_outcome(("2026-12-01T00:00:00.000000Z", f"tune-{t}-{m}", "sim", stage, 1, m,
                                           int(ok), "", to_pico(cost[m][stage]), 0, sum(SIZE[stage]), "", 0))
        evidence = load(ledger)
        ledger.close()
    price_order = sorted(models, key=lambda m: sum(cost[m].values()))
    policies: dict[str, dict[str, list[str]]] = {
        "all-premium": {s: [PREMIUM] for s in STAGES},
        "price order": {s: list(price_order) for s in STAGES},
        "tuned": {s: propose(s, price_order, evidence, min_success=args.min_success, confidence=args.confidence,
                             retries=RETRIES).proposed for s in STAGES},
    }
    held = range(tune_n, args.tasks)
    print(f"{len(models)} models, {tune_n} tuning tasks, {len(held)} held-out tasks, retry budget {RETRIES}, "
          f"tuned with --min-success {args.min_success} --confidence {args.confidence}")
    results = {}
    for name, chains in policies.items():
        prng = random.Random(args.seed * 1000 + 7)  # the same draws for every policy's task list
        solved, dollars = 0, Decimal(0)
        for _ in held:
            ok_all = True
            for stage in STAGES:
                ok, spent = walk(chains[stage], stage, cost, prng)
                dollars += spent
                if not ok:
                    ok_all = False
                    break
            solved += ok_all
        results[name] = (solved, dollars)
    base_solved, base_dollars = results["all-premium"]
    head = f"{'policy':<12} {'resolved':>9} {'$/task':>9} {'$/resolved':>11}"
    print(head + f" {'vs premium: resolved':>21} {'dollars':>8}")
    for name, (solved, dollars) in results.items():
        per = dollars / solved if solved else Decimal(0)
        print(f"{name:<12} {solved / len(held):>9.1%} {dollars / len(held):>9.4f} {per:>11.4f} "
              f"{solved / base_solved:>21.1%} {dollars / base_dollars:>8.1%}")
    print("tuned chains: " + "; ".join(f"{s}: {' > '.join(c[:3])}" for s, c in policies["tuned"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
