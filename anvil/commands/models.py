"""`anvil models`: the catalogue with prices and availability."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.routing.availability import Availability


def catalogue_rows(config: Config, availability: dict[str, Availability]) -> list[dict[str, Any]]:
    from anvil.ledger.pricing import model_price

    rows = []
    for m in config.catalogue.models:
        provider = config.catalogue.providers[m.provider]
        price = model_price(m, provider)
        avail = availability.get(m.provider)
        rows.append({
            "id": m.id,
            "name": m.wire_name,
            "provider": m.provider,
            "kind": provider.kind,
            "tier": m.tier,
            "capabilities": list(m.capabilities),
            "complexity_max": m.complexity_max,
            "context_window": m.context_window,
            "input_per_million": price.input,
            "output_per_million": price.output,
            "cache_read_per_million": price.cache_read,
            "cache_write_per_million": price.cache_write,
            "price_source": price.source,
            "available": bool(avail and avail.usable),
            "availability": avail.reason if avail else "unknown",
            "note": m.note,
        })
    return rows


def run(offline: bool = False, json_output: bool = False) -> int:
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root
    from anvil.routing.availability import check_providers
    from anvil.ui.output import out_console, per_million, print_json

    config = load_config(find_repo_root())
    rows = catalogue_rows(config, check_providers(config, probe=not offline))
    if json_output:
        print_json({"models": rows})
        return 0
    from rich.table import Table

    table = Table(title="anvil models", title_justify="left")
    for col in ("model", "tier", "provider", "context", "$/M in", "$/M out", "available"):
        table.add_column(col, justify="right" if col in ("context", "$/M in", "$/M out") else "left")
    for r in rows:
        src = "" if r["price_source"] == "table" else f" ({r['price_source']})"
        avail = "[green]yes[/]" if r["available"] else f"[dim]no: {r['availability']}[/]"
        name = r["id"] + (f"\n[dim]{r['note']}[/]" if r["note"] else "")
        table.add_row(name, r["tier"], r["provider"], f"{r['context_window']:,}",
                      per_million(r["input_per_million"]) + src, per_million(r["output_per_million"]), avail)
    out_console().print(table)
    return 0
