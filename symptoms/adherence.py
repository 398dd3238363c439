"""Adherence, defined once. Pure functions: no database, no clock.

For each of the patient's own local days:

- **prescribed** is the sessions/day of the phase in effect that day, read
  from the program's phase history (``PhaseChange.effective_on`` and
  ``to_sessions_per_day``: the last change effective on or before the day
  decides the whole day; a program that ended prescribes nothing from its
  end date on; no program, nothing prescribed);
- **done** is the sessions logged that day, counted up to prescribed;
- **extra** is the sessions logged beyond prescribed: shown, never counted.

Adherence over a window is the sum of done over the sum of prescribed. A
window is made of complete days: the N local days before today (today is
still going on, so it is shown on its own and never counted). A patient is
**adherent** at 80% or more. Days with nothing prescribed (before the
program started, after it ended) add nothing to either side; a window with
nothing prescribed has no adherence at all (shown as "no data").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from django.utils.translation import gettext as _

from programs.phases import guideline_for

ADHERENT_FROM = Fraction(80, 100)
WINDOW_SHORT = 7
WINDOW_LONG = 30

# PhaseChange.Kind.ENDED, spelled out so this module needs no model import.
ENDED = "ended"

HELP_TEXT = (
    "Adherence counts, for each of the patient's own days, the sessions done up to the "
    "number prescribed by the phase in effect that day; extra sessions are shown but not "
    "counted. Over 7 or 30 days it is sessions done divided by sessions prescribed, for the "
    "complete days before today. 80% or more is adherent."
)


@dataclass(frozen=True)
class Change:
    """One row of a program's phase history, as the definition needs it."""

    effective_on: dt.date
    kind: str
    phase: str
    sessions_per_day: int


@dataclass(frozen=True)
class Prescription:
    phase: str  # "" when no program was in effect
    sessions: int


NOTHING = Prescription(phase="", sessions=0)


def prescription_on(changes: Sequence[Change], day: dt.date) -> Prescription:
    """What was prescribed on ``day``. ``changes`` in the order they happened."""
    return prescriptions_for(changes, day, day)[day]


def prescriptions_for(
    changes: Sequence[Change], first: dt.date, last: dt.date
) -> dict[dt.date, Prescription]:
    """``prescription_on`` for every day from ``first`` to ``last``, in one pass."""
    # sorted() is stable: changes on the same day keep the order they happened in.
    ordered = sorted(changes, key=lambda change: change.effective_on)
    result: dict[dt.date, Prescription] = {}
    current = NOTHING
    index = 0
    day = first
    while day <= last:
        while index < len(ordered) and ordered[index].effective_on <= day:
            change = ordered[index]
            current = (
                NOTHING
                if change.kind == ENDED
                else Prescription(phase=change.phase, sessions=change.sessions_per_day)
            )
            index += 1
        result[day] = current
        day += dt.timedelta(days=1)
    return result


def split_sessions(*, logged: int, prescribed: int) -> tuple[int, int]:
    """(done, extra): the sessions logged that count, and those beyond prescribed."""
    done = min(logged, prescribed)
    return done, logged - done


def percent(done: int, prescribed: int) -> int | None:
    """Whole percent, rounded down, so 79.9% never reads as an adherent 80%."""
    return (done * 100) // prescribed if prescribed else None


def is_adherent(done: int, prescribed: int) -> bool | None:
    """80% or more of what was prescribed (exact integer arithmetic); None: nothing prescribed."""
    if not prescribed:
        return None
    # done / prescribed >= 4/5, in integers (exact, and fast enough for an export's rows).
    return done * ADHERENT_FROM.denominator >= prescribed * ADHERENT_FROM.numerator


@dataclass(frozen=True)
class Adherence:
    done: int
    prescribed: int
    extra: int = 0

    @property
    def ratio(self) -> Fraction | None:
        return Fraction(self.done, self.prescribed) if self.prescribed else None

    @property
    def percent(self) -> int | None:
        return percent(self.done, self.prescribed)

    @property
    def adherent(self) -> bool | None:
        return is_adherent(self.done, self.prescribed)

    @property
    def label(self) -> str:
        if self.percent is None:
            return _("no data")
        return _("%(percent)d%% (%(done)d of %(prescribed)d)") % {
            "percent": self.percent,
            "done": self.done,
            "prescribed": self.prescribed,
        }


def window(today: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """The first and last day of the ``days`` complete days before ``today``."""
    return today - dt.timedelta(days=days), today - dt.timedelta(days=1)


def adherence_over(
    rows: Iterable[tuple[dt.date, int, int, int]], *, today: dt.date, days: int
) -> Adherence:
    """Adherence over the window from (local_date, prescribed, done, extra) rows.

    Rows outside the window are ignored; so are days without a row (nothing
    prescribed, nothing logged).
    """
    first, last = window(today, days)
    done = prescribed = extra = 0
    for local_date, day_prescribed, day_done, day_extra in rows:
        if first <= local_date <= last:
            prescribed += day_prescribed
            done += min(day_done, day_prescribed)
            extra += day_extra
    return Adherence(done=done, prescribed=prescribed, extra=extra)


# --- Day in phase -----------------------------------------------------------------


@dataclass(frozen=True)
class PhaseProgress:
    phase: str
    day: int  # 1 on the day the phase started
    typical_min: int | None
    typical_max: int | None
    typical_label: str

    @property
    def overdue(self) -> bool:
        return self.typical_max is not None and self.day > self.typical_max

    @property
    def label(self) -> str:
        from programs.phases import Phase

        name = str(Phase(self.phase).label)
        if self.typical_max is None:
            return _("%(phase)s, day %(day)d (ongoing)") % {"phase": name, "day": self.day}
        text = _("%(phase)s, day %(day)d of %(low)d-%(high)d") % {
            "phase": name,
            "day": self.day,
            "low": self.typical_min,
            "high": self.typical_max,
        }
        if self.overdue:
            return _("%(text)s: review the phase") % {"text": text}
        return text


def phase_progress(*, phase: str, started_on: dt.date, today: dt.date) -> PhaseProgress:
    guideline = guideline_for(phase)
    return PhaseProgress(
        phase=phase,
        day=(today - started_on).days + 1,
        typical_min=guideline.typical_min_days,
        typical_max=guideline.typical_max_days,
        typical_label=guideline.typical_duration,
    )
