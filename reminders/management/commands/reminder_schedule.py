"""Preview a patient's reminder times on a date, without sending or storing anything.

    python manage.py reminder_schedule pat@example.org 2026-03-08

Prints the local times (HH:MM, one per line, in order) the patient's
reminders fall on that date under their current program, waking hours and
time zone. Notes (reminders off, paused) go to stderr, so stdout is only the
times.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from patients.models import Patient
from patients.selectors import patient_active_assignment
from reminders.services import reminder_plan_for_day


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"“{value}” is not a date like 2026-03-08.") from exc


class Command(BaseCommand):
    help = "Print the local times of a patient's reminders on a date (sends and stores nothing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help="The patient's email address.")
        parser.add_argument("date", help="The patient's local date, YYYY-MM-DD.")

    def handle(self, *args, email: str, date: str, **options) -> None:
        local_date = _date(date)
        patient = (
            Patient.objects.select_related("user").filter(user__email__iexact=email.strip()).first()
        )
        if patient is None:
            raise CommandError(f"No patient with the email address {email}.")
        assignment = patient_active_assignment(patient)
        if assignment is None:
            raise CommandError(f"{email} has no active program, so no reminders.")
        if not patient.reminders_enabled:
            self.stderr.write("Note: reminder emails are switched off for this patient.")
        elif patient.reminders_paused_until and local_date <= patient.reminders_paused_until:
            self.stderr.write(
                f"Note: reminders are paused until {patient.reminders_paused_until:%Y-%m-%d}."
            )
        slots = reminder_plan_for_day(
            patient=patient, local_date=local_date, sessions_per_day=assignment.sessions_per_day
        )
        for slot in slots:
            self.stdout.write(f"{slot.local_time:%H:%M}")
