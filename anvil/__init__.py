"""anvil: a command-line coding agent that routes each stage to the cheapest good-enough model."""

import sys as _sys

__version__ = "0.1.0"

# `import httpx` also imports httpx's own command-line client when rich and click are installed (they
# are: anvil uses both), and with it rich.progress, rich.syntax and pygments: about 40 ms of CPU on
# every command that makes an HTTP call, for a module anvil never uses. A None entry makes that
# import fail, and httpx falls back to a stub `main` (httpx/__init__.py catches the ImportError).
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
