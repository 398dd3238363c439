"""Reads about reminder slots, always for one given patient (or the staff's scope)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from accounts.models import User
from patients.models import Patient
from patients.selectors import patients_for_staff
from programs.models import PrescribedExercise
from reminders.models import ReminderSlot, SlotStatus
from symptoms.models import SessionLog


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


# --- for a batch of reminders: each read is one query, whatever the batch size ---------


def sessions_logged_counts(
    *, days: Iterable[tuple[int, dt.date]]
) -> dict[tuple[int, dt.date], int]:
    """Sessions logged on each (patient id, patient-local date), for many at once.

    What ``symptoms.selectors.sessions_logged_count`` answers for one day; a
    day with no sessions is absent (read it as 0).
    """
    days = set(days)
    if not days:
        return {}
    rows = (
        SessionLog.objects.filter(
            patient_id__in={patient_id for patient_id, _day in days},
            local_date__in={day for _patient_id, day in days},
        )
        .values("patient_id", "local_date")
        .annotate(count=Count("pk"))
        .values_list("patient_id", "local_date", "count")
        .order_by()
    )
    return {(pk, day): count for pk, day, count in rows if (pk, day) in days}


def phase_exercise_lines(
    *, phases: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], tuple[str, ...]]:
    """The email's exercise lines for each (template id, phase), in the phase's order.

    The same exercises as ``programs.selectors.template_phase_exercises``.
    """
    from reminders.emails import exercise_line

    phases = set(phases)
    lines: dict[tuple[int, str], list[str]] = {key: [] for key in phases}
    if not phases:
        return {}
    items = (
        PrescribedExercise.objects.filter(
            template_phase__template_id__in={template_id for template_id, _phase in phases},
            template_phase__phase__in={phase for _template_id, phase in phases},
        )
        .select_related("exercise", "template_phase")
        .order_by("template_phase__template_id", "template_phase__phase", "order", "pk")
    )
    for item in items:
        key = (item.template_phase.template_id, item.template_phase.phase)
        if key in lines:
            lines[key].append(exercise_line(item))
    return {key: tuple(value) for key, value in lines.items()}


@dataclass(frozen=True, slots=True)
class BatchUser:
    email: str
    full_name: str

    def get_short_name(self) -> str:
        return User.get_short_name(self)  # the model's own rule


@dataclass(frozen=True, slots=True)
class BatchPatient:
    pk: int
    public_id: uuid.UUID
    reminders_enabled: bool
    reminders_paused_until: dt.date | None
    user: BatchUser


@dataclass(frozen=True, slots=True)
class BatchAssignment:
    pk: int
    status: str
    current_phase: str
    template_id: int


@dataclass(frozen=True, slots=True)
class BatchSlot:
    """What sending needs of a slot, its patient, user and assignment: plain values.

    Read for a whole batch in one query; the attribute names are the models'
    (``slot.patient.user.email``, ``slot.assignment.status``), so the skip
    rules and the email read it as they would read model instances.
    """

    pk: int
    public_id: uuid.UUID
    patient_id: int
    assignment_id: int
    local_date: dt.date
    slot_number: int
    slots_in_day: int
    due_at: dt.datetime
    attempts: int
    patient: BatchPatient
    assignment: BatchAssignment


_BATCH_COLUMNS = (
    "pk",
    "public_id",
    "patient_id",
    "assignment_id",
    "local_date",
    "slot_number",
    "slots_in_day",
    "due_at",
    "attempts",
    "patient__public_id",
    "patient__reminders_enabled",
    "patient__reminders_paused_until",
    "patient__user__email",
    "patient__user__full_name",
    "assignment__status",
    "assignment__current_phase",
    "assignment__template_id",
)


def reminder_batch_slots(*, slot_ids: Iterable[int], claim_token: uuid.UUID) -> list[BatchSlot]:
    """The slots of a batch still held under ``claim_token``, in due order (one query)."""
    rows = (
        ReminderSlot.objects.filter(
            pk__in=list(slot_ids), status=SlotStatus.SENDING, claim_token=claim_token
        )
        .order_by("due_at", "pk")
        .values_list(*_BATCH_COLUMNS)
    )
    return [
        BatchSlot(
            pk=pk,
            public_id=public_id,
            patient_id=patient_id,
            assignment_id=assignment_id,
            local_date=local_date,
            slot_number=slot_number,
            slots_in_day=slots_in_day,
            due_at=due_at,
            attempts=attempts,
            patient=BatchPatient(
                pk=patient_id,
                public_id=patient_public_id,
                reminders_enabled=reminders_enabled,
                reminders_paused_until=paused_until,
                user=BatchUser(email=email, full_name=full_name),
            ),
            assignment=BatchAssignment(
                pk=assignment_id,
                status=assignment_status,
                current_phase=current_phase,
                template_id=template_id,
            ),
        )
        for (
            pk,
            public_id,
            patient_id,
            assignment_id,
            local_date,
            slot_number,
            slots_in_day,
            due_at,
            attempts,
            patient_public_id,
            reminders_enabled,
            paused_until,
            email,
            full_name,
            assignment_status,
            current_phase,
            template_id,
        ) in rows
    ]
