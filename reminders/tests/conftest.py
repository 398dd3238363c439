"""Fixtures for the reminder tests: patients on a program, frozen clocks."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from patients import services as patient_services
from tests.factories import PatientFactory

_numbers = itertools.count(1)


@pytest.fixture
def make_patient_on_program(therapist, extension_template):
    """A patient with reminders on and an active program, made through the real services."""

    def make(
        *,
        timezone: str = "Europe/London",
        wake: dt.time = dt.time(7, 0),
        sleep: dt.time = dt.time(21, 0),
        phase: str = "acute",
        sessions_per_day: int = 6,
        reminders_enabled: bool = True,
        email: str | None = None,
        full_name: str = "Pat Patient",
        start_date: dt.date | None = None,
    ):
        patient = PatientFactory(
            therapist=therapist,
            timezone=timezone,
            wake_time=wake,
            sleep_time=sleep,
            reminders_enabled=reminders_enabled,
            user__email=email or f"patient{next(_numbers)}@patients.test",
            user__full_name=full_name,
        )
        patient_services.assignment_create(
            patient=patient,
            template=extension_template,
            assigned_by=therapist,
            phase=phase,
            sessions_per_day=sessions_per_day,
            start_date=start_date,
        )
        patient.refresh_from_db()
        return patient

    return make


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)
