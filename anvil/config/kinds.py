"""The provider kinds anvil knows, as plain constants (no pydantic: `anvil cost report` imports them)."""

from __future__ import annotations

PROVIDER_KINDS: tuple[str, ...] = (
    "anthropic",
    "openai",
    "gemini",
    "ollama",
    "openai_compatible",
    "openrouter",
    "deepseek",
    "groq",
    "mistral",
    "together",
    "opencode",
    "vllm",
    "lmstudio",
    "llamacpp",
    "claude_cli",
    "gemini_cli",
    "codex_cli",
)
# Provider kinds that run on this machine: their models are free unless priced.
LOCAL_KINDS: frozenset[str] = frozenset({"ollama", "llamacpp", "lmstudio", "vllm"})
# Kinds that need no API key (local servers, subscription CLIs that hold their own login).
KEYLESS_KINDS: frozenset[str] = LOCAL_KINDS | {"claude_cli", "gemini_cli", "codex_cli"}
