"""Time zones by name, kept for the life of the process.

zoneinfo's own cache holds only the 8 most recently used zones strongly; a
clinic whose patients live in more zones than that, or a planner going
through them all, would otherwise re-read a zone file from disk for nearly
every patient (about a tenth of a millisecond each time).
"""

from __future__ import annotations

import functools
import zoneinfo


@functools.cache
def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """``ZoneInfo(name)``, read once per process. Raises as ZoneInfo does for
    an unknown name (nothing is kept for it)."""
    return zoneinfo.ZoneInfo(name)
