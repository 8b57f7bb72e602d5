"""OpenAI-compatible servers: one adapter (openai.py's engine), a small table of dialects.

The preset is the provider kind (`openrouter`, `deepseek`, `groq`, `mistral`, `together`,
`opencode`, `vllm`, `lmstudio`, `llamacpp`, or the generic `openai_compatible`), or
`settings.options["quirks"]` when given. Any `Quirks` field can be overridden from
`settings.options` (e.g. `max_tokens_field: max_completion_tokens`, `json_mode: none`).

What the table encodes (wire.md 5, 7):
- OpenRouter: `/api/v1` base, `reasoning.effort`, Anthropic-style `cache_control` on the
  system prompt, usage (with `cost`) always sent so no `stream_options`; the shared engine
  skips `: OPENROUTER PROCESSING` comments, raises on `finish_reason: "error"` chunks
  (C53) and scans `error.metadata.raw` for overflow (C56); `usage.cost` becomes
  `ChatResult.provider_cost` as an exact Decimal.
- DeepSeek: `json_object` only; `reasoning_content`, `prompt_cache_hit_tokens`, keep-alives.
- Groq: usage under `x_groq.usage`; 413 "Request too large" is quota, never retried.
- Mistral: rejects unknown fields, so no `stream_options`.
- vLLM / llama.cpp / LM Studio: local, no key needed; legacy `{"object":"error"}`
  envelope; llama.cpp's `exceed_context_size_error` (even as HTTP 500) is an overflow;
  LM Studio's empty 200 stream (C68) is reported as a likely context overflow.
- Ollama's own `/v1` (C63) is the generic preset with `delta.reasoning`.
Every preset but OpenAI itself sends `max_tokens`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from anvil.providers.openai import OpenAIChat, Quirks
from anvil.providers.types import ProviderSettings

_COMPAT = Quirks(name="openai_compatible", base_url=None, max_tokens_field="max_tokens", needs_key=False,
                 no_sampling_models=None)

PRESETS: dict[str, Quirks] = {
    "openai_compatible": _COMPAT,
    "openrouter": replace(_COMPAT, name="openrouter", base_url="https://openrouter.ai/api/v1",
                          needs_key=True, stream_options=False, reasoning="openrouter",
                          cache_control_parts=True),
    "deepseek": replace(_COMPAT, name="deepseek", base_url="https://api.deepseek.com/v1",
                        needs_key=True, reasoning="none", json_mode="json_object"),
    "groq": replace(_COMPAT, name="groq", base_url="https://api.groq.com/openai/v1", needs_key=True,
                    json_mode="json_object"),
    "mistral": replace(_COMPAT, name="mistral", base_url="https://api.mistral.ai/v1", needs_key=True,
                       stream_options=False, reasoning="none"),
    "together": replace(_COMPAT, name="together", base_url="https://api.together.xyz/v1",
                        needs_key=True, reasoning="none"),
    "opencode": replace(_COMPAT, name="opencode", base_url="https://opencode.ai/zen/v1", needs_key=True,
                        reasoning="none"),
    "vllm": replace(_COMPAT, name="vllm", base_url="http://127.0.0.1:8000/v1"),
    "llamacpp": replace(_COMPAT, name="llamacpp", base_url="http://127.0.0.1:8080/v1", reasoning="none"),
    "lmstudio": replace(_COMPAT, name="lmstudio", base_url="http://127.0.0.1:1234/v1",
                        empty_completion="context_overflow"),
}

_FIELDS = {f.name for f in fields(Quirks)} - {"name"}


def quirks_for(settings: ProviderSettings) -> Quirks:
    """The dialect for these settings: preset by kind (or options.quirks), then overrides."""
    preset = str(settings.options.get("quirks") or settings.kind)
    try:
        quirks = PRESETS[preset]
    except KeyError:
        raise ValueError(f"provider {settings.name!r}: unknown openai_compatible preset {preset!r} "
                         f"(known: {', '.join(PRESETS)})") from None
    overrides = {k: v for k, v in settings.options.items() if k in _FIELDS}
    return replace(quirks, **overrides) if overrides else quirks


def create(settings: ProviderSettings, *, transport: Any = None,
           clock: Callable[[], float] = time.monotonic) -> OpenAIChat:
    quirks = quirks_for(settings)
    if quirks.name == "llamacpp" and "keepalive" not in settings.options:
        # llama.cpp's server (xllamacpp 2026.10 build) drops a kept-alive connection after some
        # streamed answers: the next request fails "Server disconnected without sending a
        # response" (1 call in 3-5 back to back). A fresh connection per call costs nothing
        # on loopback. tests/test_local_realmodel.py checks both modes.
        settings = replace(settings, options={**settings.options, "keepalive": False})
    return OpenAIChat(settings, quirks=quirks, transport=transport, clock=clock)
