"""A small stdlib test runner for the demo's example repository: `python -m anvil.demo.testrunner tests`.

`anvil demo` runs the example's pytest suite with pytest when this Python has
it. Installed with pipx, anvil has no pytest, and `anvil demo --no-tests` asks
for the fast path: then this runner runs the same test files. It knows the
part of pytest the example uses: `@pytest.fixture` (function scope, fixtures
that use fixtures, `yield` fixtures), `tmp_path`, `capsys`, `monkeypatch.setenv`
/ `setattr`, `pytest.raises`; it prints pytest's `FAILED path::test - error`
lines and summary, so anvil reads its failures like pytest's. It is not a
general pytest replacement.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import shutil
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class _Raises:
    def __init__(self, exc: type[BaseException] | tuple[type[BaseException], ...], match: str | None = None) -> None:
        self.exc, self.match = exc, match
        self.value: Any = None

    def __enter__(self) -> _Raises:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        import re

        if kind is None:
            raise AssertionError(f"DID NOT RAISE {self.exc}")
        if not issubclass(kind, self.exc):
            return False
        if self.match and not re.search(self.match, str(value)):
            raise AssertionError(f"{value!r} does not match {self.match!r}")
        self.value = value
        return True


def _fixture(fn: Callable[..., Any] | None = None, **_kw: Any) -> Any:
    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, "_demo_fixture", True)  # noqa: B010  (a function attribute mypy cannot declare)
        return f

    return mark(fn) if fn is not None else mark


def _shim() -> types.ModuleType:
    mod = types.ModuleType("pytest")
    setattr(mod, "fixture", _fixture)  # noqa: B010  (a module built at run time)
    setattr(mod, "raises", _Raises)  # noqa: B010
    return mod


class _Capsys:
    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self) -> tuple[str, str]:
        out, err = self.out.getvalue(), self.err.getvalue()
        for buf in (self.out, self.err):
            buf.seek(0)
            buf.truncate()
        return _Pair(out, err)


class _Pair(tuple):
    def __new__(cls, out: str, err: str) -> _Pair:
        return super().__new__(cls, (out, err))

    @property
    def out(self) -> str:
        return self[0]

    @property
    def err(self) -> str:
        return self[1]


class _MonkeyPatch:
    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        old = getattr(target, name)
        setattr(target, name, value)
        self.undo.append(lambda: setattr(target, name, old))

    def setenv(self, name: str, value: str) -> None:
        import os

        old = os.environ.get(name)
        os.environ[name] = value

        def undo() -> None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old

        self.undo.append(undo)


def _run_test(fn: Callable[..., Any], fixtures: dict[str, Callable[..., Any]], base: Path) -> None:
    made: dict[str, Any] = {}
    teardown: list[Iterator[Any]] = []
    capsys = _Capsys()
    monkey = _MonkeyPatch()
    tmp = Path(tempfile.mkdtemp(prefix="t-", dir=base))

    def value(name: str) -> Any:
        if name in made:
            return made[name]
        if name == "tmp_path":
            made[name] = tmp
        elif name == "capsys":
            made[name] = capsys
        elif name == "monkeypatch":
            made[name] = monkey
        elif name in fixtures:
            f = fixtures[name]
            result = f(**{p: value(p) for p in inspect.signature(f).parameters})
            if inspect.isgenerator(result):
                teardown.append(result)
                result = next(result)
            made[name] = result
        else:
            raise LookupError(f"fixture {name!r} not found")
        return made[name]

    try:
        args = {p: value(p) for p in inspect.signature(fn).parameters}
        with contextlib.redirect_stdout(capsys.out), contextlib.redirect_stderr(capsys.err):
            fn(**args)
    finally:
        for gen in reversed(teardown):
            with contextlib.suppress(StopIteration):
                next(gen)
        for undo in reversed(monkey.undo):
            undo()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = (argv if argv is not None else sys.argv[1:]) or ["tests"]
    start = time.monotonic()
    sys.modules["pytest"] = _shim()
    sys.path.insert(0, str(Path.cwd()))
    files = sorted(f for a in args for f in (Path(a).rglob("test_*.py") if Path(a).is_dir() else [Path(a)]))
    passed = 0
    failed: list[tuple[str, BaseException, str]] = []
    base = Path(tempfile.mkdtemp(prefix="anvil-demo-tests-"))
    try:
        for path in files:
            spec = importlib.util.spec_from_file_location(f"_demo_tests.{path.stem}", path)
            if spec is None or spec.loader is None:
                failed.append((path.as_posix(), ImportError(f"cannot load {path}"), ""))
                continue
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                failed.append((f"{path.as_posix()}", exc, traceback.format_exc()))
                continue
            items = vars(module)
            fixtures = {k: v for k, v in items.items() if getattr(v, "_demo_fixture", False)}
            for name, fn in items.items():
                if name.startswith("test") and callable(fn) and not getattr(fn, "_demo_fixture", False):
                    try:
                        _run_test(fn, fixtures, base)
                        passed += 1
                    except Exception as exc:
                        failed.append((f"{path.as_posix()}::{name}", exc, traceback.format_exc()))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for where, _error, tb in failed:
        print(f"{'_' * 20} {where} {'_' * 20}\n{tb}")
    if failed:
        print("=" * 20 + " short test summary info " + "=" * 20)
    for where, error, _tb in failed:
        print(f"FAILED {where} - {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip())
    parts = ([f"{len(failed)} failed"] if failed else []) + [f"{passed} passed"]
    print(f"{', '.join(parts)} in {time.monotonic() - start:.2f}s (anvil's demo test runner)")
    return 1 if failed else (0 if passed else 5)


if __name__ == "__main__":
    sys.exit(main())
