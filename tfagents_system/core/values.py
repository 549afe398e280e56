"""Small value checks shared by the settings of every layer."""

from __future__ import annotations

import math


def is_number(value) -> bool:
    """A finite int or float, not a bool (JSON and Python settings alike): NaN and
    infinity would only show up later, as a learner crash-looping on NaN losses."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
