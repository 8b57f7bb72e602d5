"""`anvil run --local`: every stage on this machine's models, for a fully offline run.

`local_only_overrides(config, availability)` returns config overrides (dotted keys, the
shape `load_config(..., overrides=...)` takes) that give every stage an explicit chain
of the catalogue's local models (embedded GGUF servers, Ollama, any local
OpenAI-compatible server), so no stage can reach a paid API:

    config = load_config(root, overrides=flags)
    if local:
        extra = local_only_overrides(config, check_providers(config))
        config = load_config(root, overrides={**flags, **extra})

Order inside each chain: real local models in catalogue order, the bundled toy
(SmolLM2-135M) last. A stage's `on_retry.model` is cleared (it may name a cloud model)
and its `context_needed` is capped to what the largest local model can hold, so the
resolver does not exclude every local model from a stage such as `plan`: retrieval then
packs less context, which is the price of offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anvil.config.schema import LOCAL_KINDS, STAGES
from anvil.errors import UserError
from anvil.local.bundled import SMOLLM2_ID

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.config.schema import ModelEntry
    from anvil.routing.availability import Availability

# Leave this share of a local model's window for the answer when capping context_needed.
CONTEXT_SHARE = 0.75


def _is_local(model: ModelEntry, config: Config) -> bool:
    provider = config.catalogue.providers.get(model.provider)
    return provider is not None and provider.kind in LOCAL_KINDS and model.tier == "local"


def local_models(config: Config, availability: Mapping[str, Availability] | None = None) -> list[ModelEntry]:
    """The catalogue's usable local models (ModelEntry), real ones first, the bundled toy last."""
    found = [m for m in config.catalogue.models if _is_local(m, config)]
    if availability is not None:
        found = [m for m in found if availability.get(m.provider) is None or availability[m.provider].usable]
    return sorted(found, key=lambda m: m.id == SMOLLM2_ID)  # stable: catalogue order otherwise


def local_only_overrides(config: Config, availability: Mapping[str, Availability] | None = None, *,
                         model: str | None = None) -> dict[str, Any]:
    """Overrides that route every stage to local models only (see the module docstring).

    `model` pins one local model id for every stage (`anvil run --local --model ID`).
    Raises `UserError` when there is no usable local model.
    """
    models = local_models(config, availability)
    if model is not None:
        chosen = [m for m in models if m.id == model]
        if not chosen:
            known = ", ".join(m.id for m in models) or "none"
            raise UserError(f"--local: {model!r} is not a usable local model (usable: {known})",
                            hint="see `anvil models`")
        models = chosen
    if not models:
        reasons = _why_no_local(config, availability)
        raise UserError("--local: no usable local model" + (f" ({reasons})" if reasons else ""),
                        hint="start Ollama and `ollama pull qwen2.5-coder:7b`, or `pip install "
                             "'anvil-agent[local]'` and give a llamacpp provider `options.gguf`")
    chain = [m.id for m in models]
    widest = max(m.context_window for m in models)
    out: dict[str, Any] = {}
    for stage in STAGES:
        policy = config.policy.stages.get(stage)
        out[f"stages.{stage}.chain"] = list(chain)
        out[f"stages.{stage}.on_retry.model"] = None
        if policy is not None and policy.context_needed > widest * CONTEXT_SHARE:
            out[f"stages.{stage}.context_needed"] = int(widest * CONTEXT_SHARE)
    return out


def _why_no_local(config: Config, availability: Mapping[str, Availability] | None) -> str:
    if availability is None:
        return "the catalogue has no local-tier model"
    seen = []
    for m in config.catalogue.models:
        if _is_local(m, config):
            avail = availability.get(m.provider)
            if avail is not None and not avail.usable:
                seen.append(f"{m.id}: {avail.reason}")
    return "; ".join(seen) or "the catalogue has no local-tier model"
