"""Find a running Ollama and what it has pulled (for `anvil init`, `anvil doctor`, `--local`).

`detect_ollama()` asks `GET /api/version` and `GET /api/tags` with a short timeout and
never raises: no Ollama is a normal state of a machine, reported in `OllamaStatus.error`.
A catalogue model that names an Ollama model which is not pulled gets the command that
fixes it (`ollama pull <model>`), here and, at call time, in the adapter's 404 message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anvil.providers.ollama_models import list_model_info
from anvil.providers.types import UpstreamError

if TYPE_CHECKING:
    from httpx import BaseTransport

    from anvil.config.loader import Config

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
DEFAULT_TIMEOUT = 0.5  # seconds: a local server answers in milliseconds or not at all


@dataclass(frozen=True)
class OllamaStatus:
    running: bool
    models: list[str] = field(default_factory=list)  # pulled model names, e.g. "qwen2.5-coder:7b"
    error: str | None = None  # why not running / not usable, one line
    base_url: str = DEFAULT_OLLAMA_URL
    version: str | None = None
    details: list[Any] = field(default_factory=list)  # providers.ollama_models.LocalModel per model

    def has(self, model: str) -> bool:
        """Is `model` pulled? `llama3.1` means `llama3.1:latest`, as Ollama itself reads it."""
        want = canonical_name(model)
        return any(canonical_name(m) == want for m in self.models)


def canonical_name(model: str) -> str:
    name = model.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else name + ":latest"


def detect_ollama(base_url: str = DEFAULT_OLLAMA_URL, timeout: float = DEFAULT_TIMEOUT, *,
                  transport: BaseTransport | None = None) -> OllamaStatus:
    """Is an Ollama server answering at `base_url`, and which models has it pulled?"""
    import httpx


    base = (base_url or DEFAULT_OLLAMA_URL).rstrip("/").removesuffix("/v1")
    version = None
    try:
        from anvil.providers.http import is_loopback

        with httpx.Client(transport=transport, timeout=timeout, trust_env=not is_loopback(base)) as client:
            r = client.get(base + "/api/version")
        if r.status_code == 200:
            body = r.json()
            version = str(body.get("version")) if isinstance(body, dict) and body.get("version") else None
    except httpx.ConnectError:
        return OllamaStatus(False, error=f"not running at {base} (connection refused)", base_url=base)
    except httpx.TimeoutException:
        return OllamaStatus(False, error=f"no answer from {base} within {timeout:g}s", base_url=base)
    except (httpx.HTTPError, ValueError) as exc:
        return OllamaStatus(False, error=f"not reachable at {base}: {type(exc).__name__}", base_url=base)
    try:
        details = list_model_info(base, transport=transport, timeout=max(timeout, 2.0))
    except UpstreamError as exc:
        what = "is not Ollama" if exc.status in (404, 405) else "did not list its models"
        return OllamaStatus(False, error=f"the server at {base} {what} ({exc.kind}"
                            + (f" HTTP {exc.status}" if exc.status else "") + ")",
                            base_url=base, version=version)
    return OllamaStatus(True, [m.name for m in details if m.name], None, base, version, details)


def pull_commands(config: Config, status: OllamaStatus) -> list[str]:
    """`ollama pull X` for each catalogue model of an Ollama provider at this URL not yet pulled."""
    if not status.running:
        return []
    out: list[str] = []
    for model in config.catalogue.models:
        provider = config.catalogue.providers.get(model.provider)
        if provider is None or provider.kind != "ollama":
            continue
        url = (provider.base_url or DEFAULT_OLLAMA_URL).rstrip("/").removesuffix("/v1")
        if url != status.base_url or status.has(model.wire_name):
            continue
        command = f"ollama pull {model.wire_name}"
        if command not in out:
            out.append(command)
    return out


def ollama_model_entries(status: OllamaStatus, provider: str = "ollama") -> list[dict[str, Any]]:
    """Catalogue entries (models.yaml shape) for every pulled model: what `anvil init` may offer.

    Capabilities are deliberately modest (code + structured, complexity S): nothing is
    known about an arbitrary local model, and a user can raise them in models.yaml.
    """
    entries = []
    for name in status.models:
        entries.append({
            "id": f"ollama/{name.replace(':', '-')}",
            "name": name,
            "provider": provider,
            "tier": "local",
            "capabilities": ["code", "structured"],
            "complexity_max": "S",
            "context_window": 8192,
            "price": {"free": True},
        })
    return entries
