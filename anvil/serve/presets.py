"""What the `model` field of a served request means.

- `anvil/<stage>` (anvil/plan, anvil/build, ...): that stage's routing in the stage policy;
- `anvil/<route>`: a named route of the policy's `routes:` section (the same keys as a stage);
- a catalogue id (`anvil models`): that model first, then the rest of the chain of the first
  stage (in pipeline order) whose chain has it, so a pinned model still has its fallbacks.

Chains come from the resolver once, when the server starts (availability is probed then);
the chain-walker's burns say, request by request, which of their models are out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from anvil.config.schema import STAGES
from anvil.routing.resolver import resolve_stage
from anvil.serve.dialect import ServeError

if TYPE_CHECKING:
    from anvil.config.loader import Config
    from anvil.routing.availability import Availability
    from anvil.routing.resolver import Resolution, ResolvedModel

PREFIX = "anvil/"


@dataclass(frozen=True)
class Preset:
    name: str  # as the client writes it: anvil/plan, anvil/quick-edit, claude-haiku-5
    policy: str  # the stage or route whose timeout / effort apply
    chain: tuple[ResolvedModel, ...]
    why_empty: str = ""  # when the chain is empty: what the resolver left out and why


def _why(res: Resolution) -> str:
    return "; ".join(f"{e.model_id}: {e.reason}" for e in res.excluded) or "the catalogue has no models"


class Presets:
    def __init__(self, config: Config, availability: dict[str, Availability]) -> None:
        self.config = config
        self._by_name: dict[str, Preset] = {}
        for policy in (*STAGES, *config.policy.routes):
            res = resolve_stage(policy, config, availability)
            name = PREFIX + policy
            self._by_name[name] = Preset(name, policy, tuple(res.chain), "" if res.chain else _why(res))
        self._stage_chains = [self._by_name[PREFIX + s] for s in STAGES]
        for m in config.catalogue.models:
            if m.id in self._by_name:
                continue
            home = next((p for p in self._stage_chains if any(rm.id == m.id for rm in p.chain)), None)
            pinned = resolve_stage(home.policy if home else STAGES[0], config, availability, pinned_model=m.id)
            rest = tuple(rm for rm in home.chain if rm.id != m.id) if home else ()
            self._by_name[m.id] = Preset(m.id, home.policy if home else STAGES[0], tuple(pinned.chain) + rest,
                                         "" if pinned.chain else _why(pinned))

    def names(self) -> list[tuple[str, str]]:
        """(name, description) of every preset, then every usable catalogue id, for /v1/models."""
        out = []
        for p in self._by_name.values():
            if not p.chain and not p.name.startswith(PREFIX):
                continue
            chain = " > ".join(rm.id for rm in p.chain) or "no usable model"
            kind = "catalogue model" if not p.name.startswith(PREFIX) else "preset"
            out.append((p.name, f"anvil {kind}: {chain}"))
        return out

    def get(self, name: str) -> Preset:
        preset = self._by_name.get(name)
        if preset is None:
            known = ", ".join(n for n in self._by_name if n.startswith(PREFIX))
            raise ServeError("not_found", f"model {name!r} is neither an anvil preset nor a catalogue id "
                                          f"(presets: {known}; catalogue ids: see GET /v1/models)")
        if not preset.chain:
            raise ServeError("server", f"model {name!r}: no usable model ({preset.why_empty})", status=503)
        return preset
