"""From a catalogue entry to a live adapter: resolve the key, build the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from anvil.config.schema import KEYLESS_KINDS
from anvil.errors import UserError
from anvil.keys import MissingKeyError, resolve_key
from anvil.local.llamacpp import create_embedded_provider
from anvil.providers import make_provider
from anvil.providers.types import ProviderSettings

if TYPE_CHECKING:
    from httpx import BaseTransport

    from anvil.config.loader import Config


def provider_settings(config: Config, provider_name: str, *, env: Mapping[str, str] | None = None):
    """The `ProviderSettings` for a provider of the catalogue (key included, never logged)."""
    env = os.environ if env is None else env
    try:
        entry = config.catalogue.providers[provider_name]
    except KeyError:
        raise UserError(f"unknown provider {provider_name!r}", hint="see `anvil models`") from None
    key = None
    if entry.kind not in KEYLESS_KINDS:
        key = resolve_key(provider_name, entry, env)
        if not key:
            raise MissingKeyError(provider_name, entry.api_key_env)
    return ProviderSettings(
        name=provider_name,
        kind=entry.kind,
        base_url=entry.base_url,
        api_key=key,
        options=dict(entry.options),
    )


def build_provider(config: Config, provider_name: str, *, transport: BaseTransport | None = None,
                   env: Mapping[str, str] | None = None):
    """A ready adapter for `provider_name` (kwargs such as `transport` go to its create())."""
    settings = provider_settings(config, provider_name, env=env)
    if settings.kind == "llamacpp" and settings.options.get("gguf"):
        # anvil starts this server itself, lazily, on the first call (anvil.local.llamacpp).

        return create_embedded_provider(settings, transport=transport)
    kwargs = {"transport": transport} if transport is not None else {}
    return make_provider(settings, **kwargs)
