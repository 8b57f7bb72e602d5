"""`anvil doctor`: live checks of every provider: key present, endpoint reachable, model listed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.config.schema import ProviderEntry

# Where each protocol lists its models (relative to the provider's base_url).
_MODELS_PATH = {
    "anthropic": "/v1/models",
    "openai": "/models",
    "gemini": "/v1beta/models",
    "ollama": "/api/tags",
}


@dataclass
class ProviderCheck:
    provider: str
    kind: str
    key: str  # "set", "missing: set X", "not needed"
    reachable: str  # "ok", "HTTP 401", "not reachable: ...", "not checked"
    models: dict[str, str] = field(default_factory=dict)  # catalogue id -> "listed" / "not listed" / "unknown"
    ok: bool = False


def _auth_headers(kind: str, key: str | None, options: dict[str, Any]) -> dict[str, str]:
    if not key:
        return {}
    if kind == "anthropic":
        return {"x-api-key": key, "anthropic-version": str(options.get("api_version", "2023-06-01"))}
    if kind == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


def _listed_names(kind: str, body: Any) -> set[str]:
    names: set[str] = set()
    if not isinstance(body, dict):
        return names
    for item in body.get("data") or body.get("models") or []:
        if isinstance(item, dict):
            for k in ("id", "name", "model"):
                if isinstance(item.get(k), str):
                    names.add(item[k].removeprefix("models/"))
    return names


def check(config: Config, name: str, entry: ProviderEntry, timeout: float = 3.0) -> ProviderCheck:
    import httpx

    from anvil.config.schema import KEYLESS_KINDS
    from anvil.keys import resolve_key
    from anvil.routing.availability import check_provider

    result = ProviderCheck(name, entry.kind, key="not needed", reachable="not checked")
    key = None
    if entry.kind not in KEYLESS_KINDS:
        key = resolve_key(name, entry)
        result.key = "set" if key else f"missing: set {entry.api_key_env or 'an api_key_env'}"
    ids = [m for m in config.catalogue.models if m.provider == name]
    if entry.kind.endswith("_cli") or (entry.kind == "llamacpp" and entry.options.get("gguf")):
        avail = check_provider(name, entry, probe=False)
        result.reachable = avail.reason
        result.ok = avail.usable
        result.models = {m.id: "n/a" for m in ids}
        return result
    if not entry.base_url or (entry.kind not in KEYLESS_KINDS and not key):
        result.models = {m.id: "unknown" for m in ids}
        return result
    url = entry.base_url.rstrip("/") + _MODELS_PATH.get(entry.kind, "/models")
    try:
        from anvil.providers.http import is_loopback

        resp = httpx.get(url, headers=_auth_headers(entry.kind, key, entry.options), timeout=timeout,
                         trust_env=not is_loopback(url))
    except httpx.HTTPError as exc:
        result.reachable = f"not reachable: {type(exc).__name__}"
        result.models = {m.id: "unknown" for m in ids}
        return result
    if resp.status_code != 200:
        result.reachable = f"HTTP {resp.status_code}"
        result.models = {m.id: "unknown" for m in ids}
        return result
    result.reachable = "ok"
    try:
        listed = _listed_names(entry.kind, resp.json())
    except ValueError:
        listed = set()
    for m in ids:
        if m.wire_name in listed:
            result.models[m.id] = "listed"
        elif entry.kind == "ollama":
            result.models[m.id] = f"not pulled: run `ollama pull {m.wire_name}`"
        else:
            result.models[m.id] = "not listed" if listed else "unknown"
    result.ok = True
    return result


def run(json_output: bool = False) -> int:
    from anvil.config.loader import load_config
    from anvil.local.ollama import detect_ollama, pull_commands
    from anvil.paths import find_repo_root
    from anvil.ui.output import out_console, print_json

    config = load_config(find_repo_root())
    checks = [check(config, name, entry) for name, entry in config.catalogue.providers.items()]
    ollama = detect_ollama()
    pulls = pull_commands(config, ollama)
    ollama_info = {"running": ollama.running, "base_url": ollama.base_url, "version": ollama.version,
                   "models": ollama.models, "error": ollama.error, "pull_commands": pulls}
    if json_output:
        print_json({"providers": [asdict(c) for c in checks], "ollama": ollama_info})
        return 0
    from rich.table import Table

    table = Table(title="anvil doctor", title_justify="left")
    for col in ("provider", "kind", "key", "endpoint", "models"):
        table.add_column(col)
    for c in checks:
        models = "\n".join(f"{k}: {v}" for k, v in c.models.items())
        table.add_row(c.provider, c.kind, c.key, ("[green]" if c.ok else "[yellow]") + c.reachable + "[/]", models)
    console = out_console()
    console.print(table)
    if ollama.running:
        console.print(f"Ollama {ollama.version or ''} at {ollama.base_url}: "
                      f"{', '.join(ollama.models) or 'no models pulled'}")
        for command in pulls:
            console.print(f"  missing a catalogue model: run `{command}`")
    else:
        console.print(f"Ollama: {ollama.error}", style="dim")
    return 0
