"""`anvil run --local`: overrides that put every stage on local models, and availability of GGUF providers."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from anvil.config.loader import load_config
from anvil.config.schema import STAGES
from anvil.errors import UserError
from anvil.local.routing import local_models, local_only_overrides
from anvil.routing.availability import Availability, check_providers
from anvil.routing.resolver import resolve_stage


def _catalogue(tmp_path: Path, *, gguf_exists: bool = True, ollama: bool = True) -> Path:
    gguf = tmp_path / "tiny.gguf"
    if gguf_exists:
        gguf.write_bytes(b"GGUF")  # existence is all availability checks; nothing is started here
    home = Path(os.environ["ANVIL_HOME"])
    text = f"""
        providers:
          local: {{kind: llamacpp, options: {{gguf: "{gguf}", threads: 1}}}}
        models:
          - {{id: local/smollm2-135m, name: smollm2-135m, provider: local, tier: local, capabilities: [],
              complexity_max: S, context_window: 8192, price: {{free: true}}}}
    """
    if ollama:
        text += """
          - {id: ollama/qwen-coder-14b, name: "qwen2.5-coder:14b", provider: ollama, tier: local,
             capabilities: [code, structured], context_window: 32768, price: {free: true}}
        """
    (home / "models.yaml").write_text(textwrap.dedent(text))
    return gguf


def _ok(config, **overrides):
    avail = check_providers(config, probe=False)
    avail.update(overrides)
    return avail


def test_every_stage_gets_only_local_models_real_ones_first(tmp_path):
    _catalogue(tmp_path)
    config = load_config(None)
    avail = _ok(config, ollama=Availability(True, "ok"))
    local = load_config(None, overrides=local_only_overrides(config, avail))
    for stage in STAGES:
        chain = [m.id for m in resolve_stage(stage, local, avail).chain]
        # the bundled catalogue's Ollama model, then ours, then the toy, never a cloud model
        expected = ["ollama/qwen2.5-coder-7b", "ollama/qwen-coder-14b", "local/smollm2-135m"]
        if stage == "plan":  # needs 24,000 tokens of context: the 32k models fit, the toy does not
            expected = expected[:2]
        assert chain == expected, stage
    # ... so plan keeps its context need: a model that holds it exists.
    assert local.policy.stage("plan").context_needed == config.policy.stage("plan").context_needed


def test_an_unreachable_ollama_drops_out_and_context_is_capped_to_what_fits(tmp_path):
    _catalogue(tmp_path)
    config = load_config(None)
    avail = _ok(config, ollama=Availability(False, "not reachable: http://127.0.0.1:11434"))
    overrides = local_only_overrides(config, avail)
    local = load_config(None, overrides=overrides)
    assert local.policy.stage("plan").context_needed <= 8192
    for stage in STAGES:
        resolution = resolve_stage(stage, local, avail)
        assert [m.id for m in resolution.chain] == ["local/smollm2-135m"], (stage, resolution.excluded)
        assert local.policy.stage(stage).on_retry.model is None  # no escape to a cloud model


def test_pinning_one_local_model(tmp_path):
    _catalogue(tmp_path)
    config = load_config(None)
    avail = _ok(config, ollama=Availability(True, "ok"))
    overrides = local_only_overrides(config, avail, model="ollama/qwen-coder-14b")
    assert overrides["stages.build.chain"] == ["ollama/qwen-coder-14b"]
    with pytest.raises(UserError, match="not a usable local model"):
        local_only_overrides(config, avail, model="claude-opus-5-5")


def test_no_usable_local_model_is_a_clear_user_error(tmp_path):
    _catalogue(tmp_path, gguf_exists=False, ollama=False)
    config = load_config(None)
    avail = _ok(config, ollama=Availability(False, "not reachable: http://127.0.0.1:11434"))
    assert not avail["local"].usable and "GGUF file not found" in avail["local"].reason
    assert local_models(config, avail) == []
    with pytest.raises(UserError) as info:
        local_only_overrides(config, avail)
    assert "no usable local model" in info.value.message and "GGUF file not found" in info.value.message
    assert "ollama pull" in info.value.hint


def test_a_present_gguf_is_available_without_starting_anything(tmp_path):
    _catalogue(tmp_path, ollama=False)
    avail = check_providers(load_config(None), probe=False)
    assert avail["local"].usable and "started on first use" in avail["local"].reason
