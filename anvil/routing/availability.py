"""Which providers can be used right now: a key is set, a local server answers.

`probe=False` skips network checks (fast, for `policy explain --offline` and
tests); local servers are then assumed reachable only when probing is off
*and* they were configured explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anvil.config.schema import KEYLESS_KINDS, LOCAL_KINDS
from anvil.keys import resolve_key
from anvil.local.bundled import embedded_status
from anvil.providers.http import is_loopback

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.config.schema import ProviderEntry


@dataclass(frozen=True)
class Availability:
    usable: bool
    reason: str  # "ok", "no key: set ANTHROPIC_API_KEY", "not reachable: http://127.0.0.1:11434"


def _reachable(base_url: str, path: str, timeout: float) -> bool:
    import httpx

    # A plain-http probe never needs TLS: skip loading the CA bundle (~20 ms CPU per probe).
    try:
        httpx.get(base_url.rstrip("/") + path, timeout=timeout, trust_env=not is_loopback(base_url),
                  verify=not base_url.startswith("http://"))
    except httpx.HTTPError:
        return False
    return True


def _local_probe_path(kind: str) -> str:
    return {"ollama": "/api/tags", "llamacpp": "/health"}.get(kind, "/models")


def check_provider(name: str, entry: ProviderEntry, *, probe: bool = True, env: Mapping[str, str] | None = None,
                   timeout: float = 0.5) -> Availability:
    env = os.environ if env is None else env
    kind = entry.kind
    if kind in ("claude_cli", "gemini_cli", "codex_cli"):
        import shutil

        binary = str(entry.options.get("binary") or kind.removesuffix("_cli"))
        return (
            Availability(True, "ok")
            if shutil.which(binary)
            else Availability(False, f"not installed: {binary} is not on PATH")
        )
    if kind in LOCAL_KINDS:
        if kind == "llamacpp" and entry.options.get("gguf"):
            return Availability(*embedded_status(dict(entry.options)))
        if not entry.base_url:
            return Availability(False, "no base_url")
        if not probe:
            return Availability(True, "not checked (--offline)")
        if _reachable(entry.base_url, _local_probe_path(kind), timeout):
            return Availability(True, "ok")
        return Availability(False, f"not reachable: {entry.base_url}")
    if kind not in KEYLESS_KINDS:
        try:
            key = resolve_key(name, entry, env)
        except Exception as exc:  # a loose key file is reported, not raised, here
            return Availability(False, str(exc))
        if not key:
            var = entry.api_key_env or "an api_key_env"
            return Availability(False, f"no key: set {var}")
    return Availability(True, "ok")


def check_providers(
    config: Config, *, probe: bool = True, env: Mapping[str, str] | None = None
) -> dict[str, Availability]:
    """Availability of every provider in the catalogue, by provider name."""
    return {
        name: check_provider(name, entry, probe=probe, env=env)
        for name, entry in config.catalogue.providers.items()
    }
