"""When a patient's reminders fall on one local day. Pure functions, no database.

The spreading rule
------------------
The waking window (``wake`` to ``sleep``, wall-clock time in the patient's own
zone) is cut into ``count`` equal shares, and each reminder sits in the middle
of its share::

    time_i = wake + (i - 1/2) * (sleep - wake) / count      for i = 1 .. count

So nobody is reminded the minute they wake up or just before bed, and the gap
between two reminders is always the same. Times are rounded to the nearest
5 minutes ("10:30", not "10:27") whenever the reminders are at least
10 minutes apart; rounding then keeps every time inside the window and apart
from its neighbours. In a window too short for that, times are rounded to the
minute instead. Example, 07:00-21:00 with 6 sessions a day:
08:10, 10:30, 12:50, 15:10, 17:30, 19:50.

Daylight saving
---------------
Times are spread over the *wall clock*, so on a day the clocks change the
reminders keep the same local times as the day before; only their UTC instant
moves. Each wall time becomes an instant like this:

* a time the clocks skip (spring forward) moves to the first minute that
  exists after it: with clocks jumping from 02:00 to 03:00, a 02:30 reminder
  comes at 03:00;
* a time that happens twice (fall back) means its first occurrence
  (``fold=0``), so it fires once, not twice.

The instants are then put in order and any two that coincide (possible only
when a moved time lands on an existing one) are pulled apart by one minute,
so no two reminders share an instant. Slots are numbered 1..count in time
order, and each slot's local time is the wall time of its instant, so no
slot is ever shown at a time that does not exist.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass
from fractions import Fraction

from patients.zones import zone_named

UTC = dt.UTC
ROUND_TO_MINUTES = 5
MIN_GAP_FOR_ROUNDING = 2 * ROUND_TO_MINUTES


@dataclass(frozen=True)
class PlannedSlot:
    """One reminder of one local day."""

    slot_number: int  # 1..slots_in_day, in time order
    slots_in_day: int
    local_time: dt.time  # wall-clock time in the patient's zone (naive)
    due_at: dt.datetime  # the same instant, aware, in UTC


def _minute_of_day(value: dt.time) -> int:
    return value.hour * 60 + value.minute


def _round_half_up(value: Fraction, step: int) -> int:
    return int((value + Fraction(step, 2)) // step) * step


def wall_minutes(*, wake: dt.time, sleep: dt.time, count: int) -> list[int]:
    """Minutes after local midnight of ``count`` reminders spread over the window."""
    if count < 1:
        return []
    return list(_spread(_minute_of_day(wake), _minute_of_day(sleep), count))


@functools.lru_cache(maxsize=4096)
def _spread(start: int, end: int, count: int) -> tuple[int, ...]:
    # Pure and the same for every patient with this window and count:
    # computed once, not once per patient and day.
    if end <= start:
        raise ValueError("The waking window must end after it starts.")
    window = end - start
    share = Fraction(window, count)
    step = ROUND_TO_MINUTES if share >= MIN_GAP_FOR_ROUNDING else 1
    minutes: list[int] = []
    for i in range(1, count + 1):
        minute = _round_half_up(start + (i - Fraction(1, 2)) * share, step)
        if minutes and minute <= minutes[-1]:
            # Only in a window shorter than `count` minutes: one minute apart.
            minute = minutes[-1] + 1
        minutes.append(minute)
    return tuple(minutes)


def wall_times(*, wake: dt.time, sleep: dt.time, count: int) -> list[dt.time]:
    """The local wall-clock times of the reminders (ignoring daylight saving)."""
    return [
        dt.time(minute // 60 % 24, minute % 60)
        for minute in wall_minutes(wake=wake, sleep=sleep, count=count)
    ]


def _exists(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> bool:
    there_and_back = naive.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)
    return there_and_back.replace(tzinfo=None) == naive


def local_to_utc(local_date: dt.date, wall: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant of a wall time: skipped times move forward, repeated times fire once."""
    naive = dt.datetime.combine(local_date, wall.replace(second=0, microsecond=0))
    for _minute in range(24 * 60):  # a gap is an hour, rarely 30 minutes or two hours
        if _exists(naive, zone):
            break
        naive += dt.timedelta(minutes=1)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def plan_day(
    *,
    local_date: dt.date,
    zone: zoneinfo.ZoneInfo | str,
    wake: dt.time,
    sleep: dt.time,
    count: int,
) -> list[PlannedSlot]:
    """The reminder slots of one local day, in time order, with their UTC instants."""
    if isinstance(zone, str):
        zone = zone_named(zone)
    return list(_plan_day(local_date, zone, wake, sleep, count))


@functools.lru_cache(maxsize=16384)
def _plan_day(
    local_date: dt.date, zone: zoneinfo.ZoneInfo, wake: dt.time, sleep: dt.time, count: int
) -> tuple[PlannedSlot, ...]:
    # Pure, and the same for every patient with this zone, window and count
    # that day: a planner going through many patients works it out once.
    midnight = dt.datetime.combine(local_date, dt.time(0, 0))
    instants: list[dt.datetime] = []
    for minute in wall_minutes(wake=wake, sleep=sleep, count=count):
        wall = midnight + dt.timedelta(minutes=minute)
        instants.append(local_to_utc(wall.date(), wall.time(), zone))
    instants.sort()
    for index in range(1, len(instants)):
        if instants[index] <= instants[index - 1]:
            instants[index] = instants[index - 1] + dt.timedelta(minutes=1)
    return tuple(
        PlannedSlot(
            slot_number=number,
            slots_in_day=count,
            local_time=instant.astimezone(zone).time().replace(tzinfo=None),
            due_at=instant,
        )
        for number, instant in enumerate(instants, start=1)
    )
