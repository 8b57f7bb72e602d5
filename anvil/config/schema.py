"""The shape of `stage-policy.yaml`, `models.yaml` and `.anvil/config.yaml`.

pydantic models at the edge: every file is validated here before anything
runs, with unknown keys refused (a typo must not be silently ignored). The
loader (`anvil.config.loader`) turns pydantic's error locations into
`file:line key.path: message`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from anvil.stages.names import STAGES, StageName  # noqa: E402,F401  (the one stage list)

TIERS: tuple[str, ...] = ("local", "cheap", "premium")
COMPLEXITIES: tuple[str, ...] = ("S", "M", "L")
CAPABILITIES: tuple[str, ...] = ("reasoning", "code", "tools", "structured", "long_context", "vision")
# The provider kinds live in a module of their own, without pydantic: the ledger (cost report) reads them.
from anvil.config.kinds import KEYLESS_KINDS, LOCAL_KINDS, PROVIDER_KINDS  # noqa: E402,F401

Tier = Literal["local", "cheap", "premium"]
Complexity = Literal["S", "M", "L"]
Capability = Literal["reasoning", "code", "tools", "structured", "long_context", "vision"]
Effort = Literal["minimal", "low", "medium", "high"]
OnExhaust = Literal["halt", "ask", "skip"]
ToolPermission = Literal["read", "write", "exec"]

# Keys that would hold a secret: refused with a message that says why (loader.py).
SECRET_KEYS: frozenset[str] = frozenset({"api_key", "apikey", "key", "token", "secret", "password"})
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

# Documented maxima (README, "Sane values"): a config file cannot make anvil loop or wait without end.
MAX_RETRY_BUDGET = 10  # a stage's loops back to build
MAX_WALKER_RETRIES = 10  # retries of one model after a 429 or a transient failure
MAX_TURNS = 200  # a tool loop's model turns (stage policy `max_turns`, wave 2)
MAX_TOOL_CALLS = 1000  # a tool loop's tool calls (stage policy `max_tool_calls`, wave 2)
MAX_SECONDS = 24 * 3600.0  # any timeout or wait, in seconds
MAX_CONFIG_BYTES = 1024 * 1024  # one config file

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from 30, 2.5, "30", "30s", "5m", "1h" or "250ms"; ValueError for anything else.

    `true` is not one second (YAML booleans are refused), and inf / nan are not durations.
    None passes through, so that pydantic reports a missing value as `required`."""
    if value is None:
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds or a duration like 30s, 5m, 1h (not {value!r})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"must be a number of seconds or a duration like 30s, 5m, 1h (not {value!r})")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a finite, non-negative duration (not {value!r})")
    if seconds > MAX_SECONDS:
        raise ValueError(f"at most {MAX_SECONDS:g} seconds (24h), got {value!r}")
    return seconds


def _no_bool(value: object) -> object:
    """pydantic reads `true` as 1 for an int; a count in a config file must be a number."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, not {value!r}")
    return value


def _finite_decimal(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {value!r}")
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration)]
PositiveSeconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Count = Annotated[int, BeforeValidator(_no_bool)]
Dollars = Annotated[Decimal, BeforeValidator(_finite_decimal)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- models.yaml


class PriceOverride(_Strict):
    """USD per million tokens; wins over the price table. `free: true` for local."""

    input: Annotated[Dollars, Field(ge=0)] | None = None
    output: Annotated[Dollars, Field(ge=0)] | None = None
    cache_read: Annotated[Dollars, Field(ge=0)] | None = None
    cache_write: Annotated[Dollars, Field(ge=0)] | None = None
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
    context_window: Annotated[Count, Field(gt=0)] = 128_000
    max_output_tokens: Annotated[Count, Field(gt=0)] = 8192
    price: PriceOverride | None = None
    note: str | None = None  # shown by `anvil models` (e.g. "tiny: for trying the path only")

    @model_validator(mode="after")
    def _output_fits(self) -> ModelEntry:
        # Only a value given: the default (8192) on a small local model is clamped by the walker.
        if "max_output_tokens" in self.model_fields_set and self.max_output_tokens > self.context_window:
            raise ValueError(f"max_output_tokens ({self.max_output_tokens}) is larger than the context_window "
                             f"({self.context_window})")
        return self

    @property
    def wire_name(self) -> str:
        return self.name or self.id


class WalkerSettings(_Strict):
    """How the chain-walker waits, retries and burns (DESIGN.md 6)."""

    rate_limit_wait_cap: Seconds = 20.0  # seconds; longer retry-after burns
    rate_limit_retries: Annotated[Count, Field(ge=0, le=MAX_WALKER_RETRIES)] = 2
    transient_retries: Annotated[Count, Field(ge=0, le=MAX_WALKER_RETRIES)] = 2  # overloaded/5xx/timeout/stream
    backoff_base: Seconds = 0.5
    backoff_max: Seconds = 8.0
    burn_expiry: PositiveSeconds = 3600.0  # an old burn expires on resume


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
    timeout: PositiveSeconds  # seconds or a duration (30s, 5m, 1h): the whole stage, every call and tool; required
    call_timeout: PositiveSeconds | None = None  # one exchange with a model (default: the stage's timeout)
    retry_budget: Annotated[Count, Field(ge=0, le=MAX_RETRY_BUDGET)] = 2
    on_retry: OnRetry = OnRetry()
    on_exhaust: OnExhaust = "halt"
    context_needed: Annotated[Count, Field(ge=0)] = 0  # tokens the stage's prompt needs
    max_output_tokens: Annotated[Count, Field(gt=0)] | None = None
    reasoning_effort: Effort | None = None
    max_dollars: Annotated[Dollars, Field(gt=0)] | None = None  # optional per-stage cap
    # seconds a question asked on a terminal (clarify's open questions) waits before anvil assumes
    question_timeout: Annotated[float, Field(gt=0)] = 300
    # The model's tools (DESIGN.md 13): permission classes, None = the stage's fail-closed default.
    tools: tuple[ToolPermission, ...] | None = None
    max_turns: Annotated[int, Field(gt=0, le=MAX_TURNS)] = 12  # model turns in one attempt's tool loop
    max_tool_calls: Annotated[int, Field(ge=0, le=MAX_TOOL_CALLS)] = 40  # tool calls in one attempt
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
    max_dollars: Annotated[Dollars, Field(ge=0)] | None = None  # 0: no priced call at all (all-local)
    # a number, or "auto": stop a stage that runs away (past runaway_factor x its 90th percentile of
    # tokens in this ledger's history); without "auto" a runaway is only flagged
    max_tokens: Annotated[Count, Field(gt=0)] | Literal["auto"] | None = None
    runaway_factor: Annotated[float, Field(gt=1, le=100)] = 3.0


RouteName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class ConventionSettings(_Strict):
    """Review complaints that recur become deterministic checks (anvil.memory.conventions)."""

    min_runs: Annotated[Count, Field(ge=1, le=100)] = 2  # runs a complaint must recur in to be proposed
    # a proposed convention gets its check written by review's chain at the end of the run (one call,
    # in the ledger as stage `conventions`) and is enforced if the check passes its cases; else
    # `anvil conventions promote` does it
    auto_promote: bool = False


class StagePolicyFile(_Strict):
    budget: Budget = Budget()
    conventions: ConventionSettings = ConventionSettings()
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


class GitSettings(_Strict):
    """How anvil's own git operations behave. Read from $ANVIL_HOME/config.yaml only (never a repo's)."""

    # anvil's git commands run with core.hooksPath=/dev/null: a hook a model edited must not run on its
    # commit. `true` restores the repository's hooks (pre-commit, commit-msg, pre-push, ...).
    run_hooks: bool = False
    # finished runs' worktrees kept, cleaned, for the next run (anvil/workspace/spares.py): a new worktree
    # of a big repository costs seconds of file writes. 0 removes each one as before.
    spare_worktrees: Annotated[Count, Field(ge=0, le=8)] = 1


class RepoConfig(_Strict):
    """What `anvil init` detected about the repository; the user may edit it."""

    languages: tuple[str, ...] = ()
    test_command: str | None = None
    lint_commands: tuple[str, ...] = ()
    typecheck_commands: tuple[str, ...] = ()
    format_commands: tuple[str, ...] = ()
    # detected commands that already failed on the base commit when `anvil init` ran them: their failure
    # does not send a run back to build
    pre_existing_failures: tuple[str, ...] = ()
    default_branch: str | None = None
    source_roots: tuple[str, ...] = ()  # put first on PYTHONPATH when testing a worktree
    remote: str = "origin"
    github_api_url: str = "https://api.github.com"
    git: GitSettings = GitSettings()

