"""YAML that remembers where each value came from.

Every value read from a file is recorded with its file and line under its key
path (`("stages", "review", "timeout")`), so a validation error anywhere in
the layered config can name `file:line key.path`. Layers are merged here too,
key by key, carrying the locations along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class Origin:
    source: str  # a file path as shown to the user, or "env ANVIL_X", or "--flag"
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass
class Sourced:
    """Plain data plus the origin of every key path in it."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, Origin] = field(default_factory=dict)


class YamlSyntaxError(Exception):
    def __init__(self, where: Origin, message: str) -> None:
        super().__init__(f"{where} {message}")
        self.where = where
        self.message = message


class _AliasUsed(yaml.MarkedYAMLError):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases (`*name`).

    A policy file never needs them, and they are how a 237-byte file becomes a billion
    nodes (the "billion laughs": each level doubles the last) or a self-reference that
    recurses forever. Refused as the parser meets them, before anything is expanded.
    """

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasUsed(None, None, f"aliases (*{event.anchor}) are not allowed in anvil's files; "
                             "write the value out", event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]


MAX_YAML_BYTES = 4 * 1024 * 1024  # policy and config files are a few KB


def read_yaml(path: Path, shown_as: str | None = None) -> Sourced:
    """Parse one YAML file into data + origins. An empty file is an empty mapping."""
    name = shown_as or str(path)
    if path.stat().st_size > MAX_YAML_BYTES:
        raise YamlSyntaxError(Origin(name), f"the file is over {MAX_YAML_BYTES // (1024 * 1024)} MB; "
                              "a policy or config file is a few KB")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_NoAliasLoader)
    except RecursionError:  # thousands of nested [[[[ : not a config file
        raise YamlSyntaxError(Origin(name), "YAML nested too deeply") from None
    except _AliasUsed as exc:
        mark = exc.problem_mark
        raise YamlSyntaxError(Origin(name, mark.line + 1 if mark else None), str(exc.problem)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(Origin(name, line), f"YAML syntax: {exc.problem or exc}") from None
    out = Sourced()
    if node is None:
        return out
    if not isinstance(node, yaml.MappingNode):
        raise YamlSyntaxError(Origin(name, node.start_mark.line + 1), "the file must be a mapping of keys")
    out.data = _convert(node, (), name, out.origins)
    out.origins[()] = Origin(name, 1)
    return out


def _convert(node: yaml.Node, path: KeyPath, name: str, origins: dict[KeyPath, Origin]) -> Any:
    origins[path] = Origin(name, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(yaml.SafeLoader(""), key_node)
            if key in result:
                raise YamlSyntaxError(Origin(name, key_node.start_mark.line + 1), f"duplicate key {key!r}")
            result[key] = _convert(value_node, path + (key,), name, origins)
            origins[path + (key,)] = Origin(name, key_node.start_mark.line + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), name, origins) for i, item in enumerate(node.value)]
    # Scalars: let the safe loader resolve ints, floats, bools, nulls.
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def merge(lower: Sourced, higher: Sourced, *, list_keys: dict[KeyPath, str] | None = None,
          exclusive: dict[KeyPath, tuple[str, ...]] | None = None) -> Sourced:
    """Merge `higher` over `lower`, mapping by mapping.

    - mappings merge key by key (a higher file need not repeat the rest);
    - lists are replaced, except those in `list_keys`, which merge their items
      by the named identity field (models by `id`), in lower order, new ones last;
    - `exclusive` names, per mapping path pattern, keys of which only one may
      be given: when the higher layer sets one, the lower layer's others go
      (a repo that pins `model:` on a stage drops the bundled `prefer:`).
    Patterns use "*" for any key at that level.
    """
    out = Sourced(origins=dict(lower.origins))
    out.data = _merge_value(lower.data, higher.data, (), lower, higher, out, list_keys or {}, exclusive or {})
    return out


def _matches(path: KeyPath, pattern: KeyPath) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == k for k, p in zip(path, pattern, strict=False))


def _copy_origins(src: Sourced, src_prefix: KeyPath, out: Sourced, dst_prefix: KeyPath) -> None:
    n = len(src_prefix)
    for key, origin in src.origins.items():
        if key[:n] == src_prefix:
            out.origins[dst_prefix + key[n:]] = origin


def _drop_origins(out: Sourced, prefix: KeyPath) -> None:
    n = len(prefix)
    for key in [k for k in out.origins if k[:n] == prefix and len(k) > n]:
        del out.origins[key]


def _merge_value(low: Any, high: Any, path: KeyPath, lsrc: Sourced, hsrc: Sourced, out: Sourced,
                 list_keys: dict[KeyPath, str], exclusive: dict[KeyPath, tuple[str, ...]]) -> Any:
    if isinstance(low, dict) and isinstance(high, dict):
        result = dict(low)
        for pattern, keys in exclusive.items():
            if _matches(path, pattern) and any(k in high for k in keys):
                for k in keys:
                    if k in result and k not in high:
                        del result[k]
                        _drop_origins(out, path + (k,))
        for key, value in high.items():
            if key in result:
                result[key] = _merge_value(result[key], value, path + (key,), lsrc, hsrc, out, list_keys, exclusive)
                # The highest layer that touched a key is where the user looks for it.
                if (path + (key,)) in hsrc.origins:
                    out.origins[path + (key,)] = hsrc.origins[path + (key,)]
            else:
                result[key] = value
                _copy_origins(hsrc, path + (key,), out, path + (key,))
        return result
    id_field = next((f for p, f in list_keys.items() if _matches(path, p)), None)
    if id_field and isinstance(low, list) and isinstance(high, list):
        return _merge_list_by_id(low, high, path, id_field, lsrc, hsrc, out, list_keys, exclusive)
    # Replacement: the higher layer's value and origins win wholesale.
    _drop_origins(out, path)
    _copy_origins(hsrc, path, out, path)
    return high


def _merge_list_by_id(low: list[Any], high: list[Any], path: KeyPath, id_field: str, lsrc: Sourced,
                      hsrc: Sourced, out: Sourced, list_keys: dict[KeyPath, str],
                      exclusive: dict[KeyPath, tuple[str, ...]]) -> list[Any]:
    # Origins of the merged list are rebuilt from scratch: indexes move.
    low_origins = {k: v for k, v in out.origins.items() if k[: len(path)] == path and len(k) > len(path)}
    _drop_origins(out, path)
    result: list[Any] = []
    index_of: dict[Any, int] = {}
    for i, item in enumerate(low):
        result.append(item)
        ident = item.get(id_field) if isinstance(item, dict) else None
        if ident is not None:
            index_of[ident] = i
        for k, v in low_origins.items():
            if k[len(path)] == i:
                out.origins[path + (i,) + k[len(path) + 1:]] = v
    for j, item in enumerate(high):
        ident = item.get(id_field) if isinstance(item, dict) else None
        if ident is not None and ident in index_of:
            i = index_of[ident]
            # Re-home the higher item's origins under the merged index, then merge into it.
            shifted = Sourced(data={}, origins={})
            for k, v in hsrc.origins.items():
                if k[: len(path) + 1] == path + (j,):
                    shifted.origins[path + (i,) + k[len(path) + 1:]] = v
            result[i] = _merge_value(result[i], item, path + (i,), lsrc, shifted, out, list_keys, exclusive)
        else:
            i = len(result)
            result.append(item)
            if ident is not None:
                index_of[ident] = i
            for k, v in hsrc.origins.items():
                if k[: len(path) + 1] == path + (j,):
                    out.origins[path + (i,) + k[len(path) + 1:]] = v
    return result


def origin_of(sourced: Sourced, path: KeyPath) -> Origin | None:
    """The origin of `path`, or of its nearest ancestor that has one."""
    for n in range(len(path), -1, -1):
        origin = sourced.origins.get(tuple(path[:n]))
        if origin is not None:
            return origin
    return None
