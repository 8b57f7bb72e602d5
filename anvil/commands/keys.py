"""`anvil keys set NAME | list | path`: the key file, as `llm keys` and `gh auth` keep theirs.

The key is read without echo (or from stdin when piped) and written to the
0600 key file by `anvil.keys.save_key`; `list` shows names and where each
provider's key comes from, never a value.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from anvil.errors import UserError


def _read_secret(name: str) -> str:
    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"key for {name} (input hidden): ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UserError("no key given; nothing stored", hint=f"anvil keys set {name}, then paste the key")
    if any(c.isspace() for c in value):
        raise UserError("the key contains spaces or line breaks; nothing stored",
                        hint="paste only the key itself")
    return value


def _providers() -> dict[str, Any]:
    """The catalogue's providers, for naming which variable a key serves; {} when the config does not load."""
    from anvil.config.loader import load_config
    from anvil.errors import AnvilError
    from anvil.paths import find_repo_root

    try:
        return dict(load_config(find_repo_root()).catalogue.providers)
    except AnvilError:
        return {}


def run(action: str, name: str | None = None, json_output: bool = False) -> int:
    from anvil.keys import KEY_FILE, read_key_file, save_key
    from anvil.paths import anvil_home

    path = anvil_home() / KEY_FILE
    if action == "path":
        print(path)
        return 0
    if action == "set":
        assert name is not None
        if not name.strip() or any(c.isspace() for c in name):
            raise UserError(f"{name!r} is not a key name", hint="anvil keys set ANTHROPIC_API_KEY")
        providers = _providers()
        known = set(providers) | {p.api_key_env for p in providers.values() if p.api_key_env}
        written = save_key(name, _read_secret(name))
        print(f"stored {name} in {written} (mode 0600)", file=sys.stderr)
        if providers and name not in known:
            print(f"note: no provider in the catalogue uses {name!r}; known names: {', '.join(sorted(known))}",
                  file=sys.stderr)
        if os.environ.get(name):
            print(f"note: ${name} is set in this environment and wins over the file", file=sys.stderr)
        return 0
    stored = sorted(read_key_file())
    providers = _providers()
    rows = []
    for pname, entry in providers.items():
        var = entry.api_key_env
        if not var:
            continue
        source = "environment" if os.environ.get(var) else "key file" if (pname in stored or var in stored) else None
        rows.append({"provider": pname, "variable": var, "source": source})
    if json_output:
        from anvil.ui.output import print_json

        print_json({"path": str(path), "stored": stored, "providers": rows})
        return 0
    if stored:
        print("\n".join(stored))
    else:
        print(f"no keys stored in {path}", file=sys.stderr)
    for r in rows:
        print(f"  {r['provider']:<12} {r['variable']:<22} {r['source'] or 'not set'}", file=sys.stderr)
    return 0
