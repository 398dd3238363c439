"""Time zones by name, kept for the life of the process.

zoneinfo's own cache holds only the 8 most recently used zones strongly; a
clinic whose patients live in more zones than that, or a planner going
through them all, would otherwise re-read a zone file from disk for nearly
every patient (about a tenth of a millisecond each time).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from django.utils import timezone


@functools.cache
def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """``ZoneInfo(name)``, read once per process. Raises as ZoneInfo does for
    an unknown name (nothing is kept for it)."""
    return zoneinfo.ZoneInfo(name)


class LocalToday:
    """Each time zone's local date at one instant (worked out once per zone)."""

    def __init__(self, now: dt.datetime | None = None):
        self.now = now or timezone.now()
        self._cache: dict[str, dt.date] = {}

    def __call__(self, zone: str) -> dt.date:
        day = self._cache.get(zone)
        if day is None:
            day = self._cache[zone] = self.now.astimezone(zone_named(zone)).date()
        return day
