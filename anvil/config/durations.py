"""Durations in the YAML files: `30`, `30s`, `5m`, `1h` (and `1.5m`); anything else is an error.

YAML turns `true` into a bool and `.inf` into an infinite float: neither is a
timeout anybody meant, so both are refused with the forms that work.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_FORM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
HELP = "a duration: seconds (30), or 30s, 5m, 1h"


def parse_duration(value: Any) -> float:
    """Seconds, from a number or a string of the forms above; ValueError otherwise."""
    if value is None:
        # pydantic's own "float_type" error on None: the loader reports it as "required"
        raise PydanticCustomError("float_type", "required")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = _FORM.match(value)
        if not m:
            raise ValueError(f"{value!r} is not {HELP}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not {HELP}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{value!r} is not {HELP} (it must be finite and above 0)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
