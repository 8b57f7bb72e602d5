"""Every example policy a user would copy passes `policy check` and routes every stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from anvil.config.loader import load_config
from anvil.routing.availability import Availability
from anvil.routing.resolver import resolve_stage
from tests.foundation_helpers import git_repo

POLICIES = Path(__file__).resolve().parent.parent / "examples" / "policies"


@pytest.mark.parametrize("name", sorted(p.name for p in POLICIES.iterdir() if p.is_dir()))
def test_example_policy_is_valid_and_routes_every_stage(tmp_path: Path, name: str) -> None:
    repo = git_repo(tmp_path / "r")
    (repo / ".anvil").mkdir()
    for f in (POLICIES / name).glob("*.yaml"):
        shutil.copy(f, repo / ".anvil" / f.name)
    config = load_config(repo, trusted=True)
    everything_usable = {p: Availability(True, "ok") for p in config.catalogue.providers}
    for stage in config.policy.stages:
        chain = resolve_stage(stage, config, everything_usable).chain
        assert chain, f"{name}: stage {stage} has no model"
        if name == "all-local":
            assert all(m.tier == "local" for m in chain)
        if name == "one-vendor":
            assert {m.provider_name for m in chain} == {"anthropic"}
