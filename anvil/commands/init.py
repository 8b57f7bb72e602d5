"""`anvil init`: detect what the repo needs, write `.anvil/config.yaml`, set up .gitignore."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from anvil.errors import NotARepoError

if TYPE_CHECKING:
    from anvil.config.detect import Detection

GITIGNORE_LINES = (".anvil/runs/", ".anvil/cache/")


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _q(value: str | None) -> str:
    if value is None:
        return "null"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(found: Detection) -> str:
    """A commented .anvil/config.yaml: what was detected, and what to edit."""
    return f"""# anvil's settings for this repository, written by `anvil init`.
# Edit freely: `anvil init` will not overwrite it without --force.
# Stage routing and models live in stage-policy.yaml / models.yaml
# (bundled defaults; `anvil init --policies` writes copies here to edit).

# Main languages (by file count).
languages: {_yaml_list(found.languages)}

# Run by the test stage in the run's worktree, with the stage's timeout.
test_command: {_q(found.test_command)}

# Run by the validate stage; each must exit 0. Only tools this repo configures.
lint_commands: {_yaml_list(found.lint_commands)}
typecheck_commands: {_yaml_list(found.typecheck_commands)}
format_commands: {_yaml_list(found.format_commands)}

# The branch runs start from (anvil/<slug> branches are created from it).
default_branch: {_q(found.default_branch)}

# Put first on PYTHONPATH when testing a run's worktree, so an editable install
# of your checkout never shadows the code under test.
source_roots: {_yaml_list(found.source_roots)}

# Where `anvil run --pr` pushes, and the GitHub API it opens the PR with.
remote: origin
github_api_url: https://api.github.com
"""


def ensure_gitignore(root: Path) -> list[str]:
    """Add the run and cache folders to .gitignore; return the lines added."""
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present and line.rstrip("/") not in present]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        path.write_text(text + prefix + "# anvil: run folders and the retrieval cache\n" + "\n".join(missing) + "\n",
                        encoding="utf-8")
    return missing


def _copy_policies(anvil_dir: Path, force: bool) -> list[str]:
    written = []
    for name in ("stage-policy.yaml", "models.yaml"):
        target = anvil_dir / name
        if target.exists() and not force:
            continue
        with resources.as_file(resources.files("anvil.policies").joinpath(name)) as src:
            shutil.copyfile(src, target)
        written.append(str(target))
    return written


def _may_overwrite(path: Path, yes: bool, force: bool) -> bool:
    if force:
        return True
    if yes or not sys.stdin.isatty():
        return False
    import typer

    return typer.confirm(f"{path} exists (your edits would be lost). Overwrite it?", default=False)


def run(yes: bool = False, force: bool = False, policies: bool = False, offline: bool = False,
        json_output: bool = False) -> int:
    from anvil.config.detect import detect
    from anvil.config.loader import load_config
    from anvil.paths import find_repo_root
    from anvil.routing.availability import check_providers
    from anvil.ui.output import err_console, out_console, print_json

    root = find_repo_root()
    if root is None:
        raise NotARepoError("`anvil init`")
    found = detect(root)
    anvil_dir = root / ".anvil"
    anvil_dir.mkdir(exist_ok=True)
    config_path = anvil_dir / "config.yaml"
    wrote_config = False
    if not config_path.exists() or _may_overwrite(config_path, yes, force):
        config_path.write_text(render_config(found), encoding="utf-8")
        wrote_config = True
    added = ensure_gitignore(root)
    copied = _copy_policies(anvil_dir, force) if policies else []

    config = load_config(root)
    availability = check_providers(config, probe=not offline)
    ollama_models: list[str] = []
    pulls: list[str] = []
    if not offline:
        from anvil.local.ollama import detect_ollama, pull_commands

        status = detect_ollama()
        ollama_models = list(status.models)
        pulls = pull_commands(config, status)

    result = {
        "repo": str(root),
        "languages": found.languages,
        "test_command": found.test_command,
        "lint_commands": found.lint_commands,
        "typecheck_commands": found.typecheck_commands,
        "format_commands": found.format_commands,
        "default_branch": found.default_branch,
        "source_roots": found.source_roots,
        "config": str(config_path),
        "config_written": wrote_config,
        "gitignore_added": added,
        "policies_written": copied,
        "providers": {k: {"usable": v.usable, "reason": v.reason} for k, v in availability.items()},
        "ollama_models": ollama_models,
        "ollama_pull_commands": pulls,
        "notes": found.notes,
    }
    if json_output:
        print_json(result)
        return 0

    from rich.table import Table

    table = Table(title=f"anvil init: {root}", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("found")
    table.add_row("languages", ", ".join(found.languages) or "none detected")
    table.add_row("test command", found.test_command or "[yellow]none found[/]")
    table.add_row("lint", ", ".join(found.lint_commands) or "none configured")
    table.add_row("type check", ", ".join(found.typecheck_commands) or "none configured")
    table.add_row("format", ", ".join(found.format_commands) or "none configured")
    table.add_row("default branch", found.default_branch or "unknown")
    for name, avail in availability.items():
        style = "green" if avail.usable else "dim"
        table.add_row(f"provider {name}", f"[{style}]{'usable' if avail.usable else 'unusable'}: {avail.reason}[/]")
    if ollama_models:
        table.add_row("ollama models", ", ".join(ollama_models))
    out_console().print(table)
    err = err_console()
    err.print(f"{'wrote' if wrote_config else 'kept existing'} {config_path}"
              + ("" if wrote_config else " (use --force to overwrite)"))
    if added:
        err.print(f"added {', '.join(added)} to .gitignore")
    for path in copied:
        err.print(f"wrote {path}")
    for note in found.notes:
        err.print(f"note: {note}")
    for command in pulls:
        err.print(f"note: a catalogue model is not pulled yet: run `{command}`")
    err.print("next: `anvil policy explain` to see which model each stage gets, then `anvil run \"...\"`")
    return 0
