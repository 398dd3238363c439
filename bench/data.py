"""Data for the benchmarks, written straight into the bench database.

Page benchmarks: a few hundred patients made through the real services, each
with weeks of logged sessions and pain reports. Reminder benchmarks: 100,000
patients with reminders on and an active program, bulk-inserted (accounts
without a usable password, as patients sign in by emailed link).
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from accounts.models import THERAPISTS_GROUP, User
from bench.lib import Progress
from patients import services as patient_services
from patients.models import Assignment, Patient
from programs.models import ProgramTemplate
from programs.phases import Phase
from programs.selectors import template_phase_exercises
from symptoms.models import PainLocation, PainReport, SessionLog, SessionSource

TEMPLATE_SLUG = "mckenzie-extension"
BATCH = 5000

# A spread of zones around the world (planning converts every one of them).
ZONES = [
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Africa/Johannesburg",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Europe/Madrid",
]
# Waking windows as patients set them: from 06:00-20:00 to 09:00-23:30,
# in 15- and 30-minute steps (104 different windows).
WAKING = [
    (dt.time(6 + quarter // 4, 15 * (quarter % 4)), dt.time(20 + half // 2, 30 * (half % 2)))
    for quarter in range(13)
    for half in range(8)
]
# Every phase, with sessions/day inside its guideline: about 5 a day on average.
PHASES = [
    (Phase.ACUTE, 6),
    (Phase.ACUTE, 8),
    (Phase.ACUTE, 10),
    (Phase.SUB_ACUTE, 4),
    (Phase.SUB_ACUTE, 6),
    (Phase.RECOVERY, 3),
    (Phase.RECOVERY, 4),
    (Phase.MAINTENANCE, 2),
    (Phase.MAINTENANCE, 3),
]
LOCATIONS = [
    PainLocation.THIGH,
    PainLocation.BUTTOCK,
    PainLocation.BACK_SIDE,
    PainLocation.BACK_CENTRE,
]


def therapist(email: str = "therapist@bench.invalid") -> User:
    from django.contrib.auth.models import Group

    user = User.objects.create_user(email=email, full_name="Bench Therapist", is_staff=True)
    user.groups.add(Group.objects.get(name=THERAPISTS_GROUP))
    return user


def template() -> ProgramTemplate:
    return ProgramTemplate.objects.get(slug=TEMPLATE_SLUG)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- page benchmarks: patients made through the real services ------------------------------


@dataclass
class PagePatient:
    user: User
    patient: Patient
    history_days: int


def page_patient(
    *, number: int, by: User, program: ProgramTemplate, history_days: int
) -> PagePatient:
    """A patient on the extension program (acute, 6 a day) with ``history_days`` of logs."""
    zone = ZONES[number % len(ZONES)]
    local_today = timezone.now().astimezone(dt.UTC).date()
    with transaction.atomic():
        user = User.objects.create_user(
            email=f"page{number:04d}@patients.bench.invalid",
            password=None,
            full_name=f"Page Patient {number}",
        )
        patient = Patient.objects.create(user=user, therapist=by, timezone=zone)
        assignment = patient_services.assignment_create(
            patient=patient,
            template=program,
            assigned_by=by,
            phase=Phase.ACUTE,
            sessions_per_day=6,
            start_date=local_today - dt.timedelta(days=history_days + 1),
            reason="Bench",
        )
        history(patient=patient, assignment=assignment, days=history_days)
    return PagePatient(user=user, patient=patient, history_days=history_days)


def history(*, patient: Patient, assignment: Assignment, days: int, per_day: int = 5) -> None:
    """``days`` days before today, each with ``per_day`` sessions and one pain report."""
    if days <= 0:
        return
    reps = sum(
        item.total_reps
        for item in template_phase_exercises(assignment.template, assignment.current_phase)
    )
    today = timezone.now().astimezone(patient.tzinfo).date()
    sessions: list[SessionLog] = []
    for days_ago in range(days, 0, -1):
        day = today - dt.timedelta(days=days_ago)
        for number in range(per_day):
            logged_at = dt.datetime.combine(day, dt.time(8 + 2 * number, 15), tzinfo=patient.tzinfo)
            sessions.append(
                SessionLog(
                    patient=patient,
                    assignment=assignment,
                    local_date=day,
                    logged_at=logged_at,
                    phase=assignment.current_phase,
                    sessions_prescribed=assignment.sessions_per_day,
                    reps_done=reps,
                    source=SessionSource.APP,
                    idempotency_key=uuid.uuid4(),
                )
            )
    SessionLog.objects.bulk_create(sessions)
    reports: list[PainReport] = []
    previous: PainReport | None = None
    for index, session in enumerate(sessions[per_day - 1 :: per_day]):
        location = LOCATIONS[min(index * len(LOCATIONS) // days, len(LOCATIONS) - 1)]
        report = PainReport(
            patient=patient,
            session=session,
            reported_at=session.logged_at + dt.timedelta(minutes=5),
            local_date=session.local_date,
            score=max(1, 7 - index * 6 // days),
            location=location,
            trend="first" if previous is None else "unchanged",
            previous_score=previous.score if previous else None,
            previous_location=previous.location if previous else "",
        )
        reports.append(report)
        previous = report
    PainReport.objects.bulk_create(reports)


def page_patients(count: int, *, max_history_days: int = 90) -> tuple[User, list[PagePatient]]:
    """``count`` patients whose histories run from 0 to ``max_history_days`` days."""
    by = therapist()
    program = template()
    # The first two are the short (10 days) and long (90 days) histories the
    # query counts compare; the rest spread evenly from none to the longest.
    days = [10, max_history_days] + [
        number * max_history_days // max(count - 3, 1) for number in range(count - 2)
    ]
    made: list[PagePatient] = []
    bar = Progress("page patients", count)
    for number, history_days in enumerate(days[:count]):
        made.append(page_patient(number=number, by=by, program=program, history_days=history_days))
        bar.update(1)
    bar.close()
    return by, made


# --- reminder benchmarks: 100,000 patients, bulk-inserted ------------------------------------


def reminder_patients(count: int) -> int:
    """``count`` patients with reminders on and an active program. Returns the count.

    Bulk inserts (users with unusable passwords, patients, assignments), so
    100,000 take seconds; the rows are the same the services would write.
    """
    by = therapist("reminders-therapist@bench.invalid")
    program = template()
    now = timezone.now()
    started_on = now.date() - dt.timedelta(days=3)
    bar = Progress("reminder patients", count * 3)
    phases = itertools.cycle(PHASES)
    for numbers in _chunks(range(count), BATCH):
        with transaction.atomic():
            users = User.objects.bulk_create(
                [
                    User(
                        email=f"r{number:06d}@patients.bench.invalid",
                        full_name=f"Reminder Patient {number}",
                        password=make_password(None),
                        date_joined=now,
                    )
                    for number in numbers
                ]
            )
            bar.update(len(users))
            patients = Patient.objects.bulk_create(
                [
                    Patient(
                        user=user,
                        therapist=by,
                        timezone=ZONES[number % len(ZONES)],
                        wake_time=WAKING[number * 7 % len(WAKING)][0],
                        sleep_time=WAKING[number * 7 % len(WAKING)][1],
                        reminders_enabled=True,
                        reminder_consent_at=now,
                    )
                    for number, user in zip(numbers, users, strict=True)
                ]
            )
            bar.update(len(patients))
            assignments = []
            for patient in patients:
                phase, sessions = next(phases)
                assignments.append(
                    Assignment(
                        patient=patient,
                        template=program,
                        current_phase=phase,
                        sessions_per_day=sessions,
                        phase_started_on=started_on,
                        started_on=started_on,
                        assigned_by=by,
                    )
                )
            Assignment.objects.bulk_create(assignments)
            bar.update(len(assignments))
    bar.close()
    return count
