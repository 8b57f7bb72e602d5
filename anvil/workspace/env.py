"""The environment a repository command runs in: the user's, minus every credential (DESIGN.md 14).

Test, lint, type-check and format commands — and the model's `run` / `run_tests`
tools — execute code anvil did not write. They get the user's environment
without provider keys (every `api_key_env` of the catalogue and the usual vendor
variables), GitHub tokens, anything that looks like a key or token by name, and
any variable whose value is one of the key file's keys. This module is the one
place that decides it; `anvil.workspace.testrun.command_env` builds on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

# Credentials of the vendors anvil speaks to, and of the services a developer machine commonly holds.
VENDOR_VARIABLES = frozenset({
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ORG_ID",
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "OPENROUTER_API_KEY", "DEEPSEEK_API_KEY",
    "GROQ_API_KEY", "MISTRAL_API_KEY", "TOGETHER_API_KEY", "XAI_API_KEY", "COHERE_API_KEY", "FIREWORKS_API_KEY",
    "AZURE_OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENCODE_API_KEY",
    "GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
})
# By name: `*_API_KEY`, `*_TOKEN`, `*_SECRET`, ... (a key of a service anvil has never heard of).
_SECRET_SUFFIXES = ("_API_KEY", "_APIKEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_PASSWORD")
_MIN_SECRET_LEN = 8  # shorter values ("1", "true") are not compared: they would match unrelated variables


def is_secret_variable(name: str) -> bool:
    upper = name.upper()
    return upper in VENDOR_VARIABLES or upper.endswith(_SECRET_SUFFIXES)


def catalogue_key_variables(catalogue: Any) -> set[str]:
    """Every `api_key_env` the catalogue names (a provider the user added under any variable name)."""
    providers = getattr(catalogue, "providers", None) or {}
    return {p.api_key_env for p in providers.values() if getattr(p, "api_key_env", None)}


def key_file_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The keys stored in $ANVIL_HOME/keys.json; [] when it is absent or unreadable (that is reported elsewhere)."""
    from anvil.errors import AnvilError
    from anvil.keys import read_key_file

    try:
        return [v for v in read_key_file(env).values() if v]
    except AnvilError:
        return []


def clean_env(base: Mapping[str, str] | None = None, *, drop: Iterable[str] = (),
              secrets: Iterable[str] = ()) -> dict[str, str]:
    """`base` (default os.environ) without credentials: the vendor variables, names in `drop`, names that look
    like a key, and any variable whose value is one of `secrets` or of the key file's keys."""
    source = os.environ if base is None else base
    names = {n.upper() for n in drop}
    # A copy of a key under an innocent name (MY_COPY=$OPENAI_API_KEY) goes too.
    values = {s for s in [*secrets, *removed_values(source, drop=names)] if s and len(s) >= _MIN_SECRET_LEN}
    return {k: v for k, v in source.items()
            if not (is_secret_variable(k) or k.upper() in names or v in values)}


def removed_values(base: Mapping[str, str] | None = None, *, drop: Iterable[str] = ()) -> list[str]:
    """The values `clean_env` takes out of `base`: what a command's output is redacted with."""
    source = os.environ if base is None else base
    names = {n.upper() for n in drop}
    found = [v for k, v in source.items() if (is_secret_variable(k) or k.upper() in names) and v]
    return [v for v in [*found, *key_file_values(source)] if len(v) >= _MIN_SECRET_LEN]
