"""What an unapproved repository layer may set: stage routing, and nothing else (DESIGN.md 14).

An allow-list on purpose. Each function takes the repo file as read (`Sourced`)
and returns the part that is kept plus the `file:line key` of every part that
was withheld; a key that is not named here — including any key added to the
schema later — is withheld.

Kept, per stage and under `defaults:`: which catalogue models it uses and how it
picks them (prefer / model / chain / on_retry, capability, complexity,
context_needed, reasoning_effort, max_output_tokens), and timeout and
retry_budget no larger than the user's own layers give (the repo may tighten
them, not loosen them). A `model:` or `chain:` naming a model that is not in the
user's catalogue is withheld too, since only the repo's own models.yaml (itself
withheld) could have defined it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from anvil.config.schema import parse_duration
from anvil.config.yamlsrc import KeyPath, Sourced, origin_of

ROUTING_KEYS = frozenset({"capability", "complexity", "prefer", "model", "chain", "on_retry", "context_needed",
                          "reasoning_effort", "max_output_tokens"})
LIMITED_KEYS = frozenset({"timeout", "retry_budget"})  # kept only at or below the user's value
USER_ONLY_REPO_KEYS = frozenset({"git"})  # config.yaml keys no repo may set, approved or not


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def named(src: Sourced, path: KeyPath) -> str:
    origin = origin_of(src, path)
    return f"{origin} {_dotted(path)}" if origin else _dotted(path)


def _restrict(src: Sourced, kept: dict[str, Any], leaves: Iterable[KeyPath]) -> Sourced:
    """`kept` as a Sourced with the source's origins of the kept leaves, their ancestors and what is under them."""
    paths = list(leaves)
    out = Sourced(data=kept)
    for path, origin in src.origins.items():
        if not path or any(path[: len(p)] == p or p[: len(path)] == path for p in paths):
            out.origins[path] = origin
    return out


def _number(value: Any, key: str) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return parse_duration(value) if key == "timeout" else float(value)
    except (TypeError, ValueError):
        return None


def _user_value(user: Sourced, stage: str | None, key: str) -> Any:
    stages = user.data.get("stages")
    if stage is not None and isinstance(stages, dict) and isinstance(stages.get(stage), dict) \
            and key in stages[stage]:
        return stages[stage][key]
    defaults = user.data.get("defaults")
    return defaults.get(key) if isinstance(defaults, dict) else None


def _models_named(key: str, value: Any) -> list[Any]:
    if key == "model":
        return [value]
    if key == "chain":
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if key == "on_retry" and isinstance(value, dict) and "model" in value:
        return [value["model"]]
    return []


def _keep_stage_key(key: str, value: Any, stage: str | None, user: Sourced, model_ids: set[str]) -> bool:
    if key in ROUTING_KEYS:
        return all(isinstance(m, str) and m in model_ids for m in _models_named(key, value))
    if key in LIMITED_KEYS:
        mine, theirs = _number(_user_value(user, stage, key), key), _number(value, key)
        # An invalid value is withheld like a larger one: the command goes on (`policy check` names it).
        return theirs is not None and mine is not None and theirs <= mine
    return False


def policy_layer(repo: Sourced, user: Sourced, model_ids: set[str]) -> tuple[Sourced, list[str]]:
    """The routing part of an unapproved `.anvil/stage-policy.yaml`; `user` is the merged user layers."""
    kept: dict[str, Any] = {}
    kept_paths: list[KeyPath] = []
    withheld: list[str] = []
    for top, section in repo.data.items():
        if top == "defaults" and isinstance(section, dict):
            groups: list[tuple[KeyPath, str | None, dict[str, Any]]] = [(("defaults",), None, section)]
        elif top == "stages" and isinstance(section, dict):
            groups = [(("stages", name), str(name), body) for name, body in section.items() if isinstance(body, dict)]
            withheld += [named(repo, ("stages", n)) for n, b in section.items() if not isinstance(b, dict)]
        else:
            withheld.append(named(repo, (top,)))
            continue
        for prefix, stage, body in groups:
            for key, value in body.items():
                path = prefix + (key,)
                if _keep_stage_key(key, value, stage, user, model_ids):
                    node = kept
                    for part in prefix:
                        node = node.setdefault(part, {})
                    node[key] = value
                    kept_paths.append(path)
                else:
                    withheld.append(named(repo, path))
    return _restrict(repo, kept, kept_paths), withheld


def whole_file(repo: Sourced) -> list[str]:
    """Every entry of a file that is withheld as a whole (models.yaml, config.yaml), named by key or id."""
    names: list[str] = []
    for top, section in repo.data.items():
        if top == "providers" and isinstance(section, dict):
            names += [named(repo, ("providers", n)) for n in section]
        elif top == "models" and isinstance(section, list):
            for i, item in enumerate(section):
                ident = item.get("id") if isinstance(item, dict) else None
                origin = origin_of(repo, ("models", i))
                names.append(f"{origin} models[{ident if ident is not None else i}]")
        else:
            names.append(named(repo, (top,)))
    return names


def user_only(repo: Sourced) -> tuple[Sourced, list[str]]:
    """An approved config.yaml without the keys only the user's own layer may set (`git.run_hooks`)."""
    drop = [k for k in repo.data if k in USER_ONLY_REPO_KEYS]
    if not drop:
        return repo, []
    names = [named(repo, (k,)) + " (only $ANVIL_HOME/config.yaml may set it)" for k in drop]
    kept = {k: v for k, v in repo.data.items() if k not in USER_ONLY_REPO_KEYS}
    return _restrict(repo, kept, [(k,) for k in kept]), names
