"""`anvil trust`: show what a repository's `.anvil/` files set, and approve them (DESIGN.md 14).

Also the one path every command that reads a repo's configuration goes
through (`load_checked`): `--trust-repo` approves first; on a terminal (and
without `--yes`) an unapproved layer that sets more than stage routing is shown
and the user is asked once; otherwise the command goes on without those keys,
with one warning naming them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anvil.errors import NotARepoError

_warned: set[str] = set()  # digests already warned about in this process (run --local loads twice)


def _entries(repo_root: Path) -> list[dict[str, Any]]:
    """Every value the repo's layer files set: file, line, key, value (as text), and whether it is routing."""
    from anvil.config.loader import _shown
    from anvil.config.trust import layer_files
    from anvil.config.yamlsrc import YamlSyntaxError, read_yaml

    out: list[dict[str, Any]] = []
    for path in layer_files(repo_root):
        shown = _shown(path)
        if path.suffix not in (".yaml", ".yml"):
            out.append({"file": shown, "line": None, "key": "(file)", "value": f"{path.stat().st_size} bytes"})
            continue
        try:
            src = read_yaml(path, shown)
        except (YamlSyntaxError, OSError, UnicodeDecodeError) as exc:
            out.append({"file": shown, "line": None, "key": "(file)", "value": f"unreadable: {exc}"})
            continue

        _walk(src, shown, src.data, (), out)
    return out


def _walk(src: Any, shown: str, value: Any, key_path: tuple[Any, ...], out: list[dict[str, Any]]) -> None:
    from anvil.config.loader import _dotted

    if isinstance(value, dict) and value:
        for k, v in value.items():
            _walk(src, shown, v, key_path + (k,), out)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            _walk(src, shown, v, key_path + (i,), out)
    else:
        origin = src.origins.get(key_path)
        shown_path = key_path
        items = src.data.get("models")
        # Models by id, as the withheld names and `anvil models` call them.
        if key_path[:1] == ("models",) and len(key_path) > 1 and isinstance(items, list) \
                and isinstance(items[key_path[1]], dict) and "id" in items[key_path[1]]:
            shown_path = ("models", f"[{items[key_path[1]]['id']}]") + key_path[2:]
        out.append({"file": shown, "line": origin.line if origin else None,
                    "key": _dotted(shown_path).replace(".[", "["), "value": value})


def _withheld_now(repo_root: Path) -> tuple[str, ...]:
    from anvil.config.loader import ConfigError, load_config

    try:
        return load_config(repo_root, trusted=False).trust.withheld
    except ConfigError:  # unreadable files: shown anyway; approving them is refused below
        return ()


def _is_marked(file: str, key: str, withheld: tuple[str, ...]) -> bool:
    """Whether `file key` is (under) one of the withheld `file:line key.path` names."""
    for name in withheld:
        where, _, rest = name.partition(" ")
        wfile = where.rsplit(":", 1)[0] if where.rsplit(":", 1)[-1].isdigit() else where
        wkey = rest.split(" ", 1)[0]
        if wfile == file and (key == wkey or key.startswith((wkey + ".", wkey + "["))):
            return True
    return False


def show_layer(repo_root: Path, stream: Any, withheld: tuple[str, ...] = ()) -> None:
    """What the files set, one `file:line key: value` per line; `!` marks what is withheld unapproved."""
    from anvil.ui.safe import printable

    for e in _entries(repo_root):
        where = f"{e['file']}:{e['line']}" if e["line"] else e["file"]
        flag = "!" if _is_marked(e["file"], str(e["key"]), withheld) else " "
        print(printable(f"{flag} {where} {e['key']}: {e['value']}", newlines=False), file=stream)


def warn_withheld(trust: Any, stream: Any = None) -> None:
    from anvil.config.trust import withheld_warning
    from anvil.ui.safe import printable

    if not trust.withheld or trust.digest in _warned:
        return
    _warned.add(trust.digest)
    print(printable(withheld_warning(trust), newlines=False), file=stream or sys.stderr)


def _ask(repo_root: Path, trust: Any) -> bool:
    print(f"anvil: {repo_root}/.anvil/ sets more than stage routing, and you have not approved it "
          "(it came with the repository, not from you). Lines marked ! are ignored until you do:",
          file=sys.stderr)
    show_layer(repo_root, sys.stderr, trust.withheld)
    print("Trust these files? Only if you wrote or reviewed them: they can run commands and choose where "
          "your API keys are sent. [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def load_checked(repo_root: Path | None, *, trust_repo: bool = False, yes: bool = False, prompt: bool = True,
                 overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Any:
    """`load_config` for a command: approve with --trust-repo, ask once on a TTY (`prompt`), else warn once.

    `--yes` alone never approves: it means "do not ask", so the layer stays unapproved."""
    from anvil.config.loader import load_config
    from anvil.config.trust import approve

    if repo_root is not None and trust_repo:
        approve(repo_root, env=env)
    config = load_config(repo_root, overrides=overrides, env=env)
    trust = config.trust
    if repo_root is not None and trust.withheld and not trust.approved and prompt and not yes \
            and sys.stdin.isatty() and sys.stderr.isatty() and trust.digest not in _warned:
        if _ask(repo_root, trust):
            approve(repo_root, env=env)
            print("anvil: approved; recorded in $ANVIL_HOME/trust.json (`anvil trust --revoke` undoes it)",
                  file=sys.stderr)
            return load_config(repo_root, overrides=overrides, env=env)
    warn_withheld(trust)
    return config


def run(revoke: bool = False, show: bool = False, json_output: bool = False) -> int:
    from anvil.config import trust as store
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root
    from anvil.ui.output import print_json
    from anvil.ui.safe import printable

    root = find_repo_root()
    if root is None:
        raise NotARepoError("`anvil trust`")
    digest = store.layer_digest(root)
    was_approved = bool(digest) and store.is_approved(root)
    withheld = _withheld_now(root) if digest else ()
    if revoke:
        action = "revoked" if store.revoke(root) else "not approved"
    elif show or not digest:
        action = "approved" if was_approved else ("nothing to approve" if not digest else "not approved")
    else:
        load_config(root, trusted=True)  # an invalid file is refused before it is approved (file:line key)
        store.approve(root)
        action = "approved"
    if json_output:
        print_json({"repo": str(root), "status": action, "sha256": digest or None,
                    "files": [str(p.relative_to(root)) for p in store.layer_files(root)],
                    "entries": _entries(root), "withheld_unapproved": list(withheld)})
        return 0
    if not digest:
        print(f"{root} has no .anvil/ settings: nothing to approve")
        return 0
    show_layer(root, sys.stdout, withheld)
    marks = " (! = ignored while not approved)" if withheld else ""
    print(printable(f"{action}: {root}/.anvil/ sha256 {digest[:16]}{marks}", newlines=False))
    if action == "approved" and not show:
        print("anvil: a change to any of these files needs `anvil trust` again", file=sys.stderr)
    return 0
