"""Reads about what patients logged, always for one given patient."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Sum

from patients.models import Patient, PhaseChange
from symptoms.models import LOCATION_RANK, PainReport, SessionLog


def sessions_logged_count(*, patient: Patient, local_date: dt.date) -> int:
    """How many sessions the patient logged on their own local date."""
    return SessionLog.objects.filter(patient=patient, local_date=local_date).count()


def sessions_and_reps(*, patient: Patient, local_date: dt.date) -> tuple[int, int]:
    """(sessions logged, repetitions done) on the patient's own local date: one query."""
    totals = SessionLog.objects.filter(patient=patient, local_date=local_date).aggregate(
        count=Count("id"), reps=Sum("reps_done")
    )
    return totals["count"], totals["reps"] or 0


def session_for_patient(*, patient: Patient, public_id) -> SessionLog | None:
    """One of the patient's own sessions with its pain report, or None."""
    session = (
        SessionLog.objects.filter(patient=patient, public_id=public_id)
        .select_related("pain")
        .first()
    )
    if session is not None:
        session.patient = patient  # the same row: no second load
    return session


@dataclass
class DayProgress:
    """One calendar day on the progress page."""

    date: dt.date
    sessions_done: int = 0
    sessions_prescribed: int = 0
    pain_score: int | None = None  # the day's last score
    location: str | None = None  # the day's most distal location

    @property
    def location_rank(self) -> int | None:
        return None if self.location is None else LOCATION_RANK[self.location]


def _prescribed_by_day(patient: Patient, days: list[dt.date]) -> dict[dt.date, int]:
    """Sessions a day in effect on each day, from the program history (one query)."""
    changes = list(
        PhaseChange.objects.filter(assignment__patient=patient, effective_on__lte=days[-1])
        .order_by("effective_on", "changed_at", "id")
        .values_list("effective_on", "kind", "to_sessions_per_day")
    )
    result: dict[dt.date, int] = {}
    for day in days:
        current = 0
        for effective_on, kind, sessions in changes:
            if effective_on > day:
                break
            current = 0 if kind == PhaseChange.Kind.ENDED and effective_on < day else sessions
        result[day] = current
    return result


def progress_days(*, patient: Patient, today: dt.date, days: int = 30) -> list[DayProgress]:
    """The last ``days`` days up to ``today``, trimmed to start at the first activity.

    Three queries whatever the history length.
    """
    start = today - dt.timedelta(days=days - 1)
    calendar = [start + dt.timedelta(days=offset) for offset in range(days)]
    by_day = {day: DayProgress(date=day) for day in calendar}

    sessions = (
        SessionLog.objects.filter(patient=patient, local_date__range=(start, today))
        .values("local_date")
        .annotate(done=Count("id"), prescribed=Max("sessions_prescribed"))
    )
    for row in sessions:
        day = by_day[row["local_date"]]
        day.sessions_done = row["done"]
        day.sessions_prescribed = row["prescribed"] or 0

    reports = (
        PainReport.objects.filter(patient=patient, local_date__range=(start, today))
        .order_by("reported_at", "id")
        .values_list("local_date", "score", "location")
    )
    for local_date, score, location in reports:
        day = by_day[local_date]
        day.pain_score = score
        if day.location is None or LOCATION_RANK[location] > LOCATION_RANK[day.location]:
            day.location = location

    prescribed = _prescribed_by_day(patient, calendar)
    for day in calendar:
        entry = by_day[day]
        if not entry.sessions_done:
            entry.sessions_prescribed = prescribed[day]

    first_active = next(
        (
            day
            for day in calendar
            if by_day[day].sessions_prescribed
            or by_day[day].sessions_done
            or by_day[day].pain_score is not None
        ),
        None,
    )
    if first_active is None:
        return []
    return [by_day[day] for day in calendar if day >= first_active]
