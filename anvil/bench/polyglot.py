"""aider's polyglot layout: exercism exercises (`.meta/config.json`, `.docs/instructions.md`,
solution stubs, tests). The request is the instructions; the run sees the stubs and the tests,
not `.meta/` (the example solution, which is the oracle's gold patch); verification runs the
exercise's tests. Languages whose toolchain is not installed here are skipped, and said so."""

from __future__ import annotations

import difflib
import json
import shutil
import sys
from pathlib import Path

from anvil.bench.task import Task
from anvil.errors import UserError

# language (the folder above exercises/, or the exercise's files) -> (toolchain, test command)
TOOLCHAINS: dict[str, tuple[str, str]] = {
    "python": ("python3", "python -m pytest -q -p no:cacheprovider {tests}"),
    "rust": ("cargo", "cargo test --offline --quiet"),
    "go": ("go", "go test ./..."),
    "cpp": ("cmake", "cmake -S . -B build -DEXERCISM_RUN_ALL_TESTS=1 && cmake --build build"),
}
_SUFFIX_LANG = {".py": "python", ".rs": "rust", ".go": "go", ".cpp": "cpp", ".h": "cpp", ".js": "javascript",
                ".java": "java"}


def _language(exercise: Path, solution: list[str]) -> str:
    for part in reversed(exercise.parts):
        if part in TOOLCHAINS or part in ("javascript", "java"):
            return part
    for rel in solution:
        if Path(rel).suffix in _SUFFIX_LANG:
            return _SUFFIX_LANG[Path(rel).suffix]
    return ""


def gold_from_example(exercise: Path, solution: list[str], example: list[str]) -> str:
    """The example solution as a patch over the stubs (the oracle's gold patch)."""
    out = []
    for sol, ex in zip(solution, example, strict=False):
        stub = (exercise / sol).read_text(encoding="utf-8") if (exercise / sol).is_file() else ""
        best = (exercise / ex).read_text(encoding="utf-8")
        diff = list(difflib.unified_diff(stub.splitlines(keepends=True), best.splitlines(keepends=True),
                                         f"a/{sol}" if stub else "/dev/null", f"b/{sol}"))
        if diff:
            out.append(f"diff --git a/{sol} b/{sol}\n" + "".join(d if d.endswith("\n") else d + "\n" for d in diff))
    return "".join(out)


def load_exercise(exercise: Path) -> Task | None:
    meta = json.loads((exercise / ".meta" / "config.json").read_text(encoding="utf-8"))
    files = meta.get("files") or {}
    solution, tests, example = files.get("solution", []), files.get("test", []), files.get("example", [])
    lang = _language(exercise, solution)
    tool = TOOLCHAINS.get(lang)
    if tool is None or shutil.which(tool[0]) is None:
        print(f"anvil bench: {exercise.name}: skipped ({lang or 'unknown language'}: toolchain not installed here)",
              file=sys.stderr)
        return None
    docs = exercise / ".docs"
    instructions = "\n\n".join(p.read_text(encoding="utf-8") for p in
                               (docs / "instructions.md", docs / "instructions.append.md") if p.is_file())
    request = (f"{instructions.strip()}\n\nUse the instructions above to change {', '.join(solution)} "
               f"so that {', '.join(tests)} pass{'es' if len(tests) == 1 else ''}. Keep the names the tests use.")
    return Task(id=f"{lang}/{exercise.name}", kind="polyglot", request=request, source=exercise,
                summary=f"implement {exercise.name}", gold_patch=gold_from_example(exercise, solution, example),
                verify_commands=[tool[1].format(tests=" ".join(tests))],
                test_command=tool[1].format(tests=" ".join(tests)), exclude=(".meta",), language=lang)


def load_polyglot(root: Path) -> list[Task]:
    configs = sorted(root.glob(".meta/config.json")) or sorted(root.glob("**/.meta/config.json"))
    if not configs:
        raise UserError(f"{root}: no exercise here (no .meta/config.json)")
    tasks = []
    for cfg in configs:
        try:
            task = load_exercise(cfg.parent.parent)
        except (OSError, ValueError) as exc:
            raise UserError(f"{cfg}: cannot read the exercise: {exc}") from None
        if task is not None:
            tasks.append(task)
    return tasks
