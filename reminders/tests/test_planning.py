"""The pure planning rules: how many, when, and daylight saving days."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from programs.phases import GUIDELINES
from reminders.planning import local_to_utc, plan_day, wall_times

UTC = dt.UTC
T = dt.time


def hhmm(slots) -> list[str]:
    return [f"{slot.local_time:%H:%M}" for slot in slots]


# --- how many and when -----------------------------------------------------------

EVERY_PHASE_AND_COUNT = [
    (guideline.phase.value, count)
    for guideline in GUIDELINES.values()
    for count in guideline.sessions_range
]


def test_every_allowed_count_is_covered():
    assert EVERY_PHASE_AND_COUNT == [
        ("acute", 6), ("acute", 7), ("acute", 8), ("acute", 9), ("acute", 10),
        ("sub_acute", 4), ("sub_acute", 5), ("sub_acute", 6),
        ("recovery", 3), ("recovery", 4),
        ("maintenance", 2), ("maintenance", 3),
    ]  # fmt: skip


@pytest.mark.parametrize(("phase", "count"), EVERY_PHASE_AND_COUNT)
def test_one_slot_per_session_inside_the_waking_window(phase, count):
    slots = plan_day(
        local_date=dt.date(2026, 6, 10),
        zone="Europe/London",
        wake=T(7, 0),
        sleep=T(21, 0),
        count=count,
    )
    assert len(slots) == count
    assert [slot.slot_number for slot in slots] == list(range(1, count + 1))
    assert {slot.slots_in_day for slot in slots} == {count}
    times = [slot.local_time for slot in slots]
    assert times == sorted(times) and len(set(times)) == count
    assert T(7, 0) < times[0] and times[-1] < T(21, 0)
    # Evenly spread: gaps differ by at most the 5-minute rounding.
    minutes = [t.hour * 60 + t.minute for t in times]
    gaps = [b - a for a, b in itertools.pairwise(minutes)]
    assert not gaps or max(gaps) - min(gaps) <= 5
    # Every time reads easily.
    assert all(t.minute % 5 == 0 for t in times)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (2, ["10:30", "17:30"]),
        (3, ["09:20", "14:00", "18:40"]),
        (4, ["08:45", "12:15", "15:45", "19:15"]),
        (5, ["08:25", "11:10", "14:00", "16:50", "19:35"]),
        (6, ["08:10", "10:30", "12:50", "15:10", "17:30", "19:50"]),
        (7, ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00", "20:00"]),
        (8, ["07:55", "09:40", "11:25", "13:10", "14:55", "16:40", "18:25", "20:10"]),
        (9, ["07:45", "09:20", "10:55", "12:25", "14:00", "15:35", "17:05", "18:40", "20:15"]),
        (10, ["07:40", "09:05", "10:30", "11:55", "13:20", "14:40", "16:05", "17:30",
              "18:55", "20:20"]),
    ],
)  # fmt: skip
def test_the_spreading_rule_middle_of_equal_shares(count, expected):
    """wake + (i - 1/2) * window / n, rounded to the nearest 5 minutes."""
    times = wall_times(wake=T(7, 0), sleep=T(21, 0), count=count)
    assert [f"{t:%H:%M}" for t in times] == expected


def test_a_different_waking_window_moves_every_slot():
    assert [f"{t:%H:%M}" for t in wall_times(wake=T(9, 30), sleep=T(17, 30), count=4)] == [
        "10:30",
        "12:30",
        "14:30",
        "16:30",
    ]


def test_a_window_too_short_for_five_minute_steps_uses_minutes():
    times = wall_times(wake=T(12, 0), sleep=T(12, 30), count=6)
    assert [f"{t:%H:%M}" for t in times] == ["12:03", "12:08", "12:13", "12:18", "12:23", "12:28"]
    times = wall_times(wake=T(12, 0), sleep=T(12, 5), count=10)
    assert len(set(times)) == 10  # one minute apart at worst, never together


def test_no_sessions_no_slots():
    assert (
        plan_day(local_date=dt.date(2026, 6, 10), zone="UTC", wake=T(7), sleep=T(21), count=0) == []
    )


@pytest.mark.parametrize(
    ("zone", "first_utc"),
    [
        ("Europe/London", dt.datetime(2026, 6, 10, 7, 10, tzinfo=UTC)),  # BST, +1
        ("America/New_York", dt.datetime(2026, 6, 10, 12, 10, tzinfo=UTC)),  # EDT, -4
        ("Asia/Kolkata", dt.datetime(2026, 6, 10, 2, 40, tzinfo=UTC)),  # +5:30
        ("Australia/Sydney", dt.datetime(2026, 6, 9, 22, 10, tzinfo=UTC)),  # AEST, +10
        ("Pacific/Chatham", dt.datetime(2026, 6, 9, 19, 25, tzinfo=UTC)),  # +12:45
    ],
)
def test_times_are_in_the_patients_own_zone(zone, first_utc):
    slots = plan_day(local_date=dt.date(2026, 6, 10), zone=zone, wake=T(7), sleep=T(21), count=6)
    assert hhmm(slots)[0] == "08:10"
    assert slots[0].due_at == first_utc
    for slot in slots:
        local = slot.due_at.astimezone(zoneinfo.ZoneInfo(zone))
        assert (local.date(), local.time()) == (dt.date(2026, 6, 10), slot.local_time)


# --- daylight saving ---------------------------------------------------------------

# (zone, date, kind): the six transition days of 2026 the issue names.
DST_DAYS = [
    ("America/New_York", dt.date(2026, 3, 8), "spring"),
    ("America/New_York", dt.date(2026, 11, 1), "fall"),
    ("Europe/Berlin", dt.date(2026, 3, 29), "spring"),
    ("Europe/Berlin", dt.date(2026, 10, 25), "fall"),
    ("Australia/Sydney", dt.date(2026, 4, 5), "fall"),
    ("Australia/Sydney", dt.date(2026, 10, 4), "spring"),
]


def _offsets(zone: str, day: dt.date) -> tuple[dt.timedelta, dt.timedelta]:
    tz = zoneinfo.ZoneInfo(zone)
    start = dt.datetime.combine(day, T(0, 30), tzinfo=tz).utcoffset()
    end = dt.datetime.combine(day, T(23, 30), tzinfo=tz).utcoffset()
    return start, end


@pytest.mark.parametrize(("zone", "day", "kind"), DST_DAYS)
def test_the_listed_days_really_change_the_clocks(zone, day, kind):
    start, end = _offsets(zone, day)
    assert (end > start) if kind == "spring" else (end < start)


def _assert_real_and_distinct(slots, zone: str, day: dt.date) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    instants = [slot.due_at for slot in slots]
    assert instants == sorted(instants) and len(set(instants)) == len(instants)
    for slot in slots:
        local = slot.due_at.astimezone(tz)
        # The shown local time is the wall time at that instant: it exists.
        assert (local.date(), local.time().replace(tzinfo=None)) == (day, slot.local_time)
        # And it fires at the first occurrence of that wall time.
        assert slot.due_at == dt.datetime.combine(day, slot.local_time, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(("zone", "day", "kind"), DST_DAYS)
@pytest.mark.parametrize("count", [2, 6, 10])
def test_a_daytime_window_keeps_its_wall_times_on_transition_days(zone, day, kind, count):
    def plan(d):
        return plan_day(local_date=d, zone=zone, wake=T(7), sleep=T(21), count=count)

    before, on, after = plan(day - dt.timedelta(days=1)), plan(day), plan(day + dt.timedelta(1))
    assert hhmm(on) == hhmm(before) == hhmm(after)
    _assert_real_and_distinct(on, zone, day)
    # The UTC instants shift by exactly the clock change.
    start, end = _offsets(zone, day)
    for yesterday, today in zip(before, on, strict=True):
        assert today.due_at - yesterday.due_at == dt.timedelta(days=1) - (end - start)


def _gap_and_repeat(zone: str, day: dt.date) -> tuple[T, T]:
    """The skipped or repeated local hour: 02:00-03:00, but 01:00-02:00 in New York's fall."""
    if zone == "America/New_York" and day.month == 11:
        return T(1, 0), T(2, 0)
    return T(2, 0), T(3, 0)


@pytest.mark.parametrize(("zone", "day", "kind"), DST_DAYS)
@pytest.mark.parametrize(
    ("wake", "sleep", "count"),
    [(T(1, 0), T(5, 0), 4), (T(2, 0), T(20, 0), 10), (T(1, 0), T(5, 0), 10), (T(1), T(4), 3)],
)
def test_a_window_across_the_changed_hour(zone, day, kind, wake, sleep, count):
    slots = plan_day(local_date=day, zone=zone, wake=wake, sleep=sleep, count=count)
    assert len(slots) == count
    _assert_real_and_distinct(slots, zone, day)
    start, end = _gap_and_repeat(zone, day)
    times = [slot.local_time for slot in slots]
    if kind == "spring":
        # No slot in the hour that does not exist.
        assert not [t for t in times if start <= t < end]
    else:
        # No wall time twice; a repeated-hour time fires at its first occurrence.
        assert len(set(times)) == len(times)
        tz = zoneinfo.ZoneInfo(zone)
        for slot in slots:
            if start <= slot.local_time < end:
                assert slot.due_at.astimezone(tz).fold == 0
                assert slot.due_at.astimezone(tz).utcoffset() == _offsets(zone, day)[0]


@pytest.mark.parametrize(
    ("zone", "day", "expected_local", "expected_utc"),
    [
        # Spring forward: 02:30 is skipped and comes at 03:00, when the clocks jump.
        ("America/New_York", dt.date(2026, 3, 8),
         ["01:30", "03:00", "03:30", "04:30"], ["06:30", "07:00", "07:30", "08:30"]),
        ("Europe/Berlin", dt.date(2026, 3, 29),
         ["01:30", "03:00", "03:30", "04:30"], ["00:30", "01:00", "01:30", "02:30"]),
        ("Australia/Sydney", dt.date(2026, 10, 4),
         ["01:30", "03:00", "03:30", "04:30"], ["15:30", "16:00", "16:30", "17:30"]),
        # Fall back: the repeated hour's time fires once, at its first occurrence.
        ("America/New_York", dt.date(2026, 11, 1),
         ["01:30", "02:30", "03:30", "04:30"], ["05:30", "07:30", "08:30", "09:30"]),
        ("Europe/Berlin", dt.date(2026, 10, 25),
         ["01:30", "02:30", "03:30", "04:30"], ["23:30", "00:30", "02:30", "03:30"]),
        ("Australia/Sydney", dt.date(2026, 4, 5),
         ["01:30", "02:30", "03:30", "04:30"], ["14:30", "15:30", "17:30", "18:30"]),
    ],
)  # fmt: skip
def test_night_window_exact_times_on_transition_days(zone, day, expected_local, expected_utc):
    slots = plan_day(local_date=day, zone=zone, wake=T(1), sleep=T(5), count=4)
    assert hhmm(slots) == expected_local
    assert [f"{slot.due_at:%H:%M}" for slot in slots] == expected_utc


def test_a_skipped_time_landing_on_another_is_moved_a_minute():
    # 10 reminders 01:00-05:00: 02:00, 02:25 and 02:50 do not exist on 8 March.
    slots = plan_day(
        local_date=dt.date(2026, 3, 8), zone="America/New_York", wake=T(1), sleep=T(5), count=10
    )
    assert hhmm(slots) == [
        "01:10", "01:35", "03:00", "03:01", "03:02", "03:10", "03:35", "04:00", "04:25", "04:50",
    ]  # fmt: skip


def test_local_to_utc_rules():
    ny = zoneinfo.ZoneInfo("America/New_York")
    assert local_to_utc(dt.date(2026, 3, 8), T(2, 30), ny) == dt.datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )
    assert local_to_utc(dt.date(2026, 11, 1), T(1, 30), ny) == dt.datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


zones = st.sampled_from(
    ["Europe/London", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata",
     "America/St_Johns", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]
)  # fmt: skip


@given(
    zone=zones,
    day=st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2028, 12, 31)),
    wake_minute=st.integers(min_value=0, max_value=22 * 60),
    length=st.integers(min_value=30, max_value=20 * 60),
    count=st.integers(min_value=2, max_value=10),
)
def test_any_day_any_zone_gives_n_distinct_real_times_in_order(
    zone, day, wake_minute, length, count
):
    end_minute = min(wake_minute + length, 24 * 60 - 1)
    wake = T(wake_minute // 60, wake_minute % 60)
    sleep = T(end_minute // 60, end_minute % 60)
    slots = plan_day(local_date=day, zone=zone, wake=wake, sleep=sleep, count=count)
    assert len(slots) == count
    _assert_real_and_distinct(slots, zone, day)
