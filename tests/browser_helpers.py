"""A real headless browser for the dashboard tests: Debian's chromium driven by playwright.

playwright's own browser download cannot work here, so the system binary is
launched with a fresh profile. Locally a machine without chromium skips these
tests; CI installs it (.ci/run), so there a missing browser fails instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must install Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


@contextmanager
def browser(profile: Path) -> Iterator[Any]:
    """A browser context (a fresh --user-data-dir in `profile`) with one viewport size."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


class DashboardProcess:
    """`anvil dashboard --port 0` as a subprocess; `url` is the tokened URL it printed."""

    def __init__(self, anvil: str, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([anvil, "dashboard", "--port", "0"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        m = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/\?token=([\w-]+)", line)
        if m is None:
            self.stop()
            raise AssertionError(f"no URL printed: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.url, self.base, self.token = line, m.group(1), m.group(2)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, timeout=2, trust_env=False)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the dashboard did not answer")

    def link(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
