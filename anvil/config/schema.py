"""The shape of `stage-policy.yaml`, `models.yaml` and `.anvil/config.yaml`.

pydantic models at the edge: every file is validated here before anything
runs, with unknown keys refused (a typo must not be silently ignored). The
loader (`anvil.config.loader`) turns pydantic's error locations into
`file:line key.path: message`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from anvil.stages.names import STAGES, StageName  # noqa: E402,F401  (the one stage list)

TIERS: tuple[str, ...] = ("local", "cheap", "premium")
COMPLEXITIES: tuple[str, ...] = ("S", "M", "L")
CAPABILITIES: tuple[str, ...] = ("reasoning", "code", "tools", "structured", "long_context", "vision")
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

Tier = Literal["local", "cheap", "premium"]
Complexity = Literal["S", "M", "L"]
Capability = Literal["reasoning", "code", "tools", "structured", "long_context", "vision"]
Effort = Literal["minimal", "low", "medium", "high"]
OnExhaust = Literal["halt", "ask", "skip"]

# Keys that would hold a secret: refused with a message that says why (loader.py).
SECRET_KEYS: frozenset[str] = frozenset({"api_key", "apikey", "key", "token", "secret", "password"})
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- models.yaml


class PriceOverride(_Strict):
    """USD per million tokens; wins over the price table. `free: true` for local."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    free: bool = False

    @model_validator(mode="after")
    def _some_price(self) -> PriceOverride:
        if not self.free and (self.input is None or self.output is None):
            raise ValueError("give both input and output (USD per million tokens), or free: true")
        return self


class ProviderEntry(_Strict):
    kind: str
    base_url: str | None = None
    api_key_env: str | None = None
    # genai-prices provider id that prices this provider's models (e.g. "anthropic").
    price_list: str | None = None
    options: dict[str, object] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in PROVIDER_KINDS:
            raise ValueError(f"unknown provider kind {v!r} (known: {', '.join(PROVIDER_KINDS)})")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name_not_key(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _ENV_NAME.match(v):
            raise ValueError(
                "api_key_env takes the NAME of an environment variable (e.g. ANTHROPIC_API_KEY), "
                "and this looks like a key itself: keys never go in YAML; put it in the "
                "environment or in $ANVIL_HOME/keys.json (mode 0600)"
            )
        return v


class ModelEntry(_Strict):
    id: str  # unique catalogue id, what policies name
    provider: str  # a key of `providers:`
    name: str | None = None  # the model name on the wire, when it differs from id
    tier: Tier
    capabilities: tuple[Capability, ...] = ("code",)
    complexity_max: Complexity = "M"
    context_window: Annotated[int, Field(gt=0)] = 128_000
    max_output_tokens: Annotated[int, Field(gt=0)] = 8192
    price: PriceOverride | None = None
    note: str | None = None  # shown by `anvil models` (e.g. "tiny: for trying the path only")

    @property
    def wire_name(self) -> str:
        return self.name or self.id


class WalkerSettings(_Strict):
    """How the chain-walker waits, retries and burns (DESIGN.md 6)."""

    rate_limit_wait_cap: Annotated[float, Field(ge=0)] = 20.0  # seconds; longer retry-after burns
    rate_limit_retries: Annotated[int, Field(ge=0)] = 2
    transient_retries: Annotated[int, Field(ge=0)] = 2  # overloaded/server/timeout/connection/stream
    backoff_base: Annotated[float, Field(ge=0)] = 0.5
    backoff_max: Annotated[float, Field(ge=0)] = 8.0
    burn_expiry: Annotated[float, Field(gt=0)] = 3600.0  # an old burn expires on resume


class ModelsFile(_Strict):
    walker: WalkerSettings = WalkerSettings()
    providers: dict[str, ProviderEntry] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> ModelsFile:
        seen: set[str] = set()
        for i, m in enumerate(self.models):
            if m.id in seen:
                raise ValueError(f"models[{i}]: duplicate model id {m.id!r}")
            seen.add(m.id)
        return self

    def model(self, model_id: str) -> ModelEntry | None:
        return next((m for m in self.models if m.id == model_id), None)


# ---------------------------------------------------------- stage-policy.yaml


class OnRetry(_Strict):
    """What changes on the next attempt after a failure loops back."""

    escalate_tier: bool = False  # move to the next tier of `prefer`
    effort: Effort | None = None  # raise the reasoning effort
    model: str | None = None  # switch to this model


class StagePolicy(_Strict):
    capability: tuple[Capability, ...] = ("code",)
    complexity: Complexity = "M"
    prefer: tuple[Tier, ...] | None = None
    model: str | None = None  # pin one model
    chain: tuple[str, ...] | None = None  # explicit ordered list of model ids
    timeout: Annotated[float, Field(gt=0)]  # seconds; required
    retry_budget: Annotated[int, Field(ge=0)] = 2
    on_retry: OnRetry = OnRetry()
    on_exhaust: OnExhaust = "halt"
    context_needed: Annotated[int, Field(ge=0)] = 0  # tokens the stage's prompt needs
    max_output_tokens: Annotated[int, Field(gt=0)] | None = None
    reasoning_effort: Effort | None = None
    max_dollars: Decimal | None = None  # optional per-stage cap
    # "price": tier, then price (the default). "expected_cost": models with evidence in the ledger
    # (anvil policy stats) first, by expected dollars per success; the rest after, in price order.
    order: Literal["price", "expected_cost"] = "price"

    @model_validator(mode="after")
    def _one_routing(self) -> StagePolicy:
        given = [k for k in ("prefer", "model", "chain") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of prefer, model, chain (got {', '.join(given)})")
        return self


class Budget(_Strict):
    max_dollars: Decimal | None = None
    # a number, or "auto": stop a stage that runs away (past runaway_factor x its 90th percentile of
    # tokens in this ledger's history); without "auto" a runaway is only flagged
    max_tokens: Annotated[int, Field(gt=0)] | Literal["auto"] | None = None
    runaway_factor: Annotated[float, Field(gt=1, le=100)] = 3.0


RouteName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class StagePolicyFile(_Strict):
    budget: Budget = Budget()
    stages: dict[StageName, StagePolicy]
    # named routes for `anvil serve` (model "anvil/<name>"): a stage's keys, routed the same way
    routes: dict[RouteName, StagePolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _routes_are_not_stages(self) -> StagePolicyFile:
        clash = sorted(set(self.routes) & set(STAGES))
        if clash:
            raise ValueError(f"routes: {', '.join(clash)} is a stage name (the stages are presets already)")
        return self

    def stage(self, name: str) -> StagePolicy:
        """A stage's policy, or a named route's (both resolve the same way)."""
        by_name: dict[str, StagePolicy] = dict(self.routes)
        by_name.update((str(k), v) for k, v in self.stages.items())
        return by_name[name]


# ---------------------------------------------------------- .anvil/config.yaml


class RepoConfig(_Strict):
    """What `anvil init` detected about the repository; the user may edit it."""

    languages: tuple[str, ...] = ()
    test_command: str | None = None
    lint_commands: tuple[str, ...] = ()
    typecheck_commands: tuple[str, ...] = ()
    format_commands: tuple[str, ...] = ()
    default_branch: str | None = None
    source_roots: tuple[str, ...] = ()  # put first on PYTHONPATH when testing a worktree
    remote: str = "origin"
    github_api_url: str = "https://api.github.com"
