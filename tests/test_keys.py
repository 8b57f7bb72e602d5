"""Keys: environment first, then a 0600 key file; a loose key file is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from anvil.config.loader import load_config
from anvil.errors import UserError
from anvil.keys import MissingKeyError, read_key_file, resolve_key, save_key


def test_env_then_key_file() -> None:
    entry = load_config(None).catalogue.providers["anthropic"]
    assert resolve_key("anthropic", entry) is None
    path = save_key("anthropic", "from-file")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert resolve_key("anthropic", entry) == "from-file"
    assert resolve_key("anthropic", entry, env={**os.environ, "ANTHROPIC_API_KEY": "from-env"}) == "from-env"


def test_loose_key_file_is_refused() -> None:
    path = save_key("openai", "k")
    path.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600|readable by other users"):
        read_key_file()


def test_missing_key_error_names_the_variable() -> None:
    from anvil.routing.factory import provider_settings

    config = load_config(None)
    with pytest.raises(MissingKeyError) as info:
        provider_settings(config, "openai")
    assert "OPENAI_API_KEY" in info.value.message


def test_keyless_local_provider_needs_no_key() -> None:
    from anvil.routing.factory import provider_settings

    settings = provider_settings(load_config(None), "ollama")
    assert settings.api_key is None and settings.base_url.startswith("http://127.0.0.1")


def test_availability_reports_missing_key_and_unreachable_local(tmp_path: Path) -> None:
    from anvil.routing.availability import check_providers

    config = load_config(None)
    avail = check_providers(config, probe=True, env={"ANVIL_HOME": os.environ["ANVIL_HOME"], "OPENAI_API_KEY": "x"})
    assert avail["openai"].usable
    assert avail["anthropic"].reason == "no key: set ANTHROPIC_API_KEY"
    # Nothing listens on the Ollama port in the test environment... unless a developer runs one.
    assert avail["ollama"].usable or avail["ollama"].reason.startswith("not reachable")
