"""What a command imports before it does anything: the heavy modules stay out of the hot paths.

Each check runs a fresh interpreter (the test process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

_LOADED = "\nimport json, sys; print(json.dumps(sorted(k for k, v in sys.modules.items() if v is not None)))"


def _modules_after(code: str) -> set[str]:
    """The modules `code` leaves imported (a None entry in sys.modules is a blocked import, not one)."""
    out = subprocess.run([sys.executable, "-c", code + _LOADED], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_httpx_through_anvil_leaves_httpx_cli_and_its_rich_and_pygments_out():
    loaded = _modules_after("import anvil.providers.http, httpx; httpx.Client")
    assert "httpx" in loaded
    assert not {"httpx._main", "rich.progress", "rich.syntax", "pygments"} & loaded


def test_cli_help_imports_no_pydantic_httpx_or_rich():
    loaded = _modules_after("import anvil.cli")
    assert not {"pydantic", "httpx", "rich", "yaml", "numpy"} & {m.split(".")[0] for m in loaded}
