"""Output helpers shared by the commands: results on stdout, everything else on stderr.

Colour only on a TTY and never when NO_COLOR is set (rich honours both).
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any


def _width(stream: Any) -> int | None:
    # Piped output has no terminal width; rich's 80 columns would squeeze every table.
    import os

    if stream.isatty() or os.environ.get("COLUMNS"):
        return None
    return 132


def out_console():
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=_width(sys.stdout))


def err_console():
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, soft_wrap=False, width=_width(sys.stderr))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    """JSON on stdout. Decimals are strings, so dollars stay exact."""
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def money(value: Decimal | None, places: int = 4) -> str:
    """Dollars for a table: unknown is "unknown", never $0."""
    if value is None:
        return "unknown"
    q = Decimal(1).scaleb(-places)
    return f"${value.quantize(q)}"


def per_million(value: Decimal | None) -> str:
    if value is None:
        return "unknown"
    return f"${value.normalize():f}"
