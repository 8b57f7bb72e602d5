"""Hand-rolled adapters, one module per wire protocol (DESIGN.md 4).

`make_provider` is the only way the rest of anvil gets an adapter; modules are
imported lazily so `anvil --help` never pays for them.
"""

from __future__ import annotations

import importlib
from typing import Any

from anvil.providers.types import Provider, ProviderSettings

# kind -> module inside anvil.providers. Presets of openai_compatible
# (openrouter, deepseek, groq, ...) and llamacpp map to that adapter.
ADAPTER_MODULES: dict[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "gemini": "gemini",
    "ollama": "ollama",
    "openai_compatible": "openai_compatible",
    "openrouter": "openai_compatible",
    "deepseek": "openai_compatible",
    "groq": "openai_compatible",
    "mistral": "openai_compatible",
    "together": "openai_compatible",
    "opencode": "openai_compatible",
    "vllm": "openai_compatible",
    "lmstudio": "openai_compatible",
    "llamacpp": "openai_compatible",
    "claude_cli": "claude_cli",
    "gemini_cli": "gemini_cli",
    "codex_cli": "codex_cli",
}
PROVIDER_KINDS: tuple[str, ...] = tuple(ADAPTER_MODULES)


def make_provider(settings: ProviderSettings, **kwargs: Any) -> Provider:
    """Build the adapter for `settings.kind`.

    kwargs go to the module's `create()`: `transport` (an httpx transport, for
    tests), `clock` (a monotonic time function).
    """
    try:
        module_name = ADAPTER_MODULES[settings.kind]
    except KeyError:
        raise ValueError(
            f"provider {settings.name!r}: unknown kind {settings.kind!r} "
            f"(known: {', '.join(PROVIDER_KINDS)})"
        ) from None
    if settings.kind == "openai" and settings.options.get("api") == "responses":
        module_name = "openai_responses"  # its own module: it builds on the Chat adapter, not the other way
    module = importlib.import_module(f"anvil.providers.{module_name}")
    return module.create(settings, **kwargs)
