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


def keep_whole(table: Any, *headers: str, width: int | None = None, drop: tuple[str, ...] = ()) -> Any:
    """Columns a reader came for (model ids, costs, paths) are never cut: each gets the width of its
    longest first line, short cells elsewhere (numbers) stay whole too, and long ones wrap into what is
    left. When even that does not fit in `width`, the columns named in `drop` go, in that order (a less
    useful column goes rather than a model name being cut). Call after adding the rows."""
    from rich.cells import cell_len
    from rich.text import Text

    def first_line(cell: Any) -> str:
        text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
        return text.split("\n", 1)[0]

    wanted = set(headers)
    for col in table.columns:
        header = str(col.header)
        lines = [first_line(c) for c in col._cells]
        col.overflow = "fold"
        if header in wanted:  # whole: never a candidate when rich narrows columns to fit
            col.min_width = max(cell_len(x) for x in [header, *lines])
            col.no_wrap = True
        else:  # never split a header word or a short cell (a number); long text wraps
            col.min_width = max([cell_len(w) for w in header.split() or [""]]
                                + [cell_len(x) for x in lines if cell_len(x) <= 12])

    def needed() -> int:
        return sum((c.min_width or 1) + 2 for c in table.columns) + len(table.columns) + 1

    for header in drop:
        if width is None or needed() <= width:
            break
        table.columns[:] = [c for c in table.columns if str(c.header) != header]
    return table


def drop_empty(table: Any, *headers: str, empty: tuple[str, ...] = ("0", "", "-")) -> Any:
    """Drop the named columns when every cell is empty or zero (cache tokens on a cacheless run): room for
    the columns that carry data."""
    keep = [c for c in table.columns
            if str(c.header) not in headers or any(str(getattr(x, "plain", x)) not in empty for x in c._cells)]
    table.columns[:] = keep
    return table
