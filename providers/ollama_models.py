"""What an Ollama server has: its pulled models (`/api/tags`) and a model's context length (`/api/show`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from anvil.providers.http import HttpClient
from anvil.providers.ollama import DEFAULT_BASE_URL, classify_ollama, http_error_for
from anvil.providers.types import ProviderSettings

if TYPE_CHECKING:
    from httpx import BaseTransport


# --- local models (C62) ----------------------------------------------------------------


@dataclass(frozen=True)
class LocalModel:
    name: str
    parameter_size: str = ""
    family: str = ""
    quantization: str = ""
    size_bytes: int = 0


def list_model_info(
    base_url: str | None = None, transport: BaseTransport | None = None, timeout: float = 5.0
) -> list[LocalModel]:
    """`GET /api/tags`: the models pulled into this Ollama server (C62)."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/v1")
    http = HttpClient(ProviderSettings(name="ollama", kind="ollama", base_url=base), transport=transport)
    try:
        doc = http.get_json(f"{base}/api/tags", headers={}, timeout=timeout, classify=classify_ollama) or {}
    finally:
        http.close()
    models = []
    for m in doc.get("models") or []:
        if not isinstance(m, dict):
            continue
        d = m.get("details") or {}
        models.append(LocalModel(
            name=str(m.get("name") or m.get("model") or ""),
            parameter_size=str(d.get("parameter_size") or ""),
            family=str(d.get("family") or ""),
            quantization=str(d.get("quantization_level") or ""),
            size_bytes=int(m.get("size") or 0),
        ))
    return models


def list_models(base_url: str | None = None, transport: BaseTransport | None = None) -> list[str]:
    """Names of the local models (for `anvil doctor` / `anvil init`)."""
    return [m.name for m in list_model_info(base_url, transport)]


def model_context_length(base_url: str | None, model: str, transport: BaseTransport | None = None,
                         timeout: float = 5.0) -> int | None:
    """The model's trained context length from `POST /api/show` (`<arch>.context_length`).

    The ceiling for `num_ctx`: `anvil init` can record it as the model's context window.
    None when the server does not say.
    """
    http = HttpClient(ProviderSettings(name="ollama", kind="ollama"), transport=transport)
    base = (base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/v1")
    try:
        with http.post_stream(f"{base}/api/show", {"model": model}, headers={"content-type": "application/json"},
                              timeout=timeout, model=model) as ex:
            if ex.status >= 300:
                raise http_error_for(ex, model)
            text = ex.read_text()
    finally:
        http.close()
    try:
        info = (json.loads(text) or {}).get("model_info") or {}
    except (ValueError, AttributeError):
        return None
    for key, value in info.items():
        if key.endswith(".context_length") and isinstance(value, int):
            return value
    return None
