"""SWE-bench JSONL: one task per line (instance_id, repo, base_commit, problem_statement, patch,
test_patch, FAIL_TO_PASS, PASS_TO_PASS; the two lists are JSON-encoded strings, as SWE-bench
stores them). Repositories come from `--repos DIR`: `<owner>+<name>` or `<name>`, a clone or a
bare mirror (a `repo/` folder inside one is looked at too, as the mirror fetcher lays them out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anvil.bench.task import Task
from anvil.errors import UserError


def _tests(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return [str(v) for v in value or []]


def find_repo(repos: Path, name: str) -> Path | None:
    owner, _, short = name.partition("/")
    for cand in (f"{owner}+{short}", short, f"{short}.git", f"{owner}+{short}.git"):
        for path in (repos / cand, repos / cand / "repo"):
            if (path / "HEAD").is_file() or (path / ".git").exists():
                return path
    return None


def summary_of(problem: str) -> str:
    first = next((line.strip("# ").strip() for line in problem.splitlines() if line.strip()), "the issue")
    return first[:90]


def load_swebench(path: Path, repos: Path | None) -> list[Task]:
    if repos is None:
        raise UserError("SWE-bench tasks need --repos DIR (clones or bare mirrors named <owner>+<name> or <name>)")
    tasks, missing = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            name = d["repo"]
            source = find_repo(repos, name)
            if source is None:
                missing.add(name)
                continue
            tasks.append(Task(
                id=d["instance_id"], kind="swebench", request=d["problem_statement"], source=source,
                base=d["base_commit"], repo_name=name, summary=summary_of(d["problem_statement"]),
                gold_patch=d.get("patch", ""), test_patch=d.get("test_patch", ""),
                fail_to_pass=_tests(d.get("FAIL_TO_PASS")), pass_to_pass=_tests(d.get("PASS_TO_PASS")),
                version=str(d.get("version", "")), env_commit=d.get("environment_setup_commit", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{n}: not a SWE-bench task ({type(exc).__name__}: {exc})") from None
    if missing:
        raise UserError(f"no repository in {repos} for {', '.join(sorted(missing))}",
                        hint="clone or mirror each as <owner>+<name> (or <name>) inside --repos")
    return tasks
