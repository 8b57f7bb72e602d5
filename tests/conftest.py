"""Shared test setup: every test gets its own ANVIL_HOME and no real API keys."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from anvil.providers.scripted.server import ScriptedServer

_KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENROUTER_API_KEY",
             "DEEPSEEK_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY", "TOGETHER_API_KEY", "GITHUB_TOKEN")


@pytest.fixture(autouse=True)
def _isolated_anvil_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("anvil-home")
    monkeypatch.setenv("ANVIL_HOME", str(home))
    for var in _KEY_VARS:
        monkeypatch.delenv(var, raising=False)
    for var in [v for v in os.environ if v.startswith("ANVIL_") and v != "ANVIL_HOME"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # Commits made by tests must not depend on the machine's git identity.
    monkeypatch.setenv("GIT_AUTHOR_NAME", "anvil-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "anvil-test@localhost")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "anvil-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "anvil-test@localhost")
    yield home


@pytest.fixture
def srv() -> Iterator[ScriptedServer]:
    """A scripted vendor server on loopback for one test (time compressed 100x)."""
    with ScriptedServer(time_scale=0.01) as server:
        yield server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """One throw-away PostgreSQL server for the whole session (see tests/pg_helpers.py)."""
    from tests.pg_helpers import PgServer, need_postgres

    server = PgServer(need_postgres()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_backend(request: pytest.FixtureRequest, _isolated_anvil_home) -> str:
    """Run a test on both ledgers: the default SQLite file, and a fresh PostgreSQL database named
    in the home config (`ledger: {url: ...}`). Returns the backend's name."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_server").new_database()
        (_isolated_anvil_home / "config.yaml").write_text(f"ledger:\n  url: {url}\n")
    return request.param
