"""Reads about reminder slots, always for one given patient (or the staff's scope)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from accounts.models import User
from patients.models import Patient
from patients.selectors import patients_for_staff
from reminders.models import ReminderSlot, SlotStatus


def reminder_slots_for_days(*, patient: Patient, local_dates: list[dt.date]) -> QuerySet:
    """The patient's live (not cancelled) slots on those local dates, in time order."""
    return (
        ReminderSlot.objects.filter(patient=patient, local_date__in=local_dates)
        .exclude(status=SlotStatus.CANCELLED)
        .order_by("local_date", "due_at", "slot_number")
    )


def reminder_times_for_day(*, patient: Patient, local_date: dt.date) -> list[dt.time]:
    """Local times of the patient's reminders that day, in order (for their settings page).

    Every reminder of the day that is or was going to be emailed: planned,
    sending, sent, skipped or failed. Empty when reminders are off or paused
    or there is no program.
    """
    return list(
        reminder_slots_for_days(patient=patient, local_dates=[local_date]).values_list(
            "local_time", flat=True
        )
    )


def reminder_slots_for_staff(user: User) -> QuerySet[ReminderSlot]:
    """Slots of the patients this staff user may see (all, for clinic admins)."""
    return ReminderSlot.objects.filter(patient__in=patients_for_staff(user)).select_related(
        "patient__user", "assignment__template"
    )
