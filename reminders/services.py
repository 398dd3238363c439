"""Writes for reminders: plan, re-plan, claim, send, skip, recover, unsubscribe.

The database is the source of truth (DESIGN.md section 4). Every state change
of a slot is a conditional UPDATE on its current status (and, once claimed,
its claim token), so two processes can never both move the same row.

Lifecycle::

    planned --claim--> sending --mail server said 250--> sent
       |                  |----- skip rule applies ----> skipped (reason)
       |                  |----- permanent error ------> failed (reason)
       |                  |----- transient error ------> sending (task retries with backoff)
       |                  '----- lease expired --------> planned again (recovery)
       '--- schedule changed before it fell due -------> cancelled

The one window where a reminder can go out twice: the mail server accepted
the message (or was about to, and the reply never reached us), but the
worker died, timed out or lost the database before the row was marked
"sent". Recovery then sends it again, with the same Message-ID. Everywhere
else a slot is emailed at most once, and a due slot is never lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from patients.models import Assignment, Patient
from patients.services import patient_update
from reminders.emails import message_id_for, reminder_email_build
from reminders.models import ReminderSlot, SkipReason, SlotStatus
from reminders.planning import PlannedSlot, plan_day, zone_named
from symptoms.selectors import sessions_logged_count

logger = logging.getLogger(__name__)

Enqueue = Callable[[int, uuid.UUID], None]


# --- planning -----------------------------------------------------------------


def reminder_sessions_on(
    *, patient: Patient, assignment: Assignment | None, local_date: dt.date
) -> int:
    """How many reminders the patient should get that day (0: none)."""
    if not patient.reminders_enabled or assignment is None or not assignment.is_active:
        return 0
    if patient.reminders_paused_until and local_date <= patient.reminders_paused_until:
        return 0
    if assignment.started_on > local_date:
        return 0
    # The phase in effect: phase and sessions/day changes take effect at once.
    return assignment.sessions_per_day


def reminder_plan_for_day(
    *, patient: Patient, local_date: dt.date, sessions_per_day: int
) -> list[PlannedSlot]:
    """The slots of one local day for this patient's zone and waking window."""
    return plan_day(
        local_date=local_date,
        zone=zone_named(patient.timezone),
        wake=patient.wake_time,
        sleep=patient.sleep_time,
        count=sessions_per_day,
    )


def _local_today(patient: Patient, now: dt.datetime) -> dt.date:
    return now.astimezone(zone_named(patient.timezone)).date()


@dataclass
class PlanResult:
    patients: int = 0
    created: int = 0
    cancelled: int = 0

    def add(self, other: PlanResult) -> None:
        self.patients += other.patients
        self.created += other.created
        self.cancelled += other.cancelled


def _desired(
    *, patient: Patient, assignment: Assignment | None, now: dt.datetime
) -> dict[tuple[dt.date, int], PlannedSlot]:
    today = _local_today(patient, now)
    desired: dict[tuple[dt.date, int], PlannedSlot] = {}
    for offset in range(settings.REMINDER_PLAN_DAYS_AHEAD + 1):
        local_date = today + dt.timedelta(days=offset)
        count = reminder_sessions_on(patient=patient, assignment=assignment, local_date=local_date)
        for slot in reminder_plan_for_day(
            patient=patient, local_date=local_date, sessions_per_day=count
        ):
            desired[(local_date, slot.slot_number)] = slot
    return desired


# The columns re-planning compares; read as plain tuples, not model instances
# (a full plan run reads every future slot of every patient).
_PLAN_COLUMNS = (
    "pk",
    "patient_id",
    "assignment_id",
    "local_date",
    "slot_number",
    "slots_in_day",
    "local_time",
    "timezone",
    "due_at",
    "status",
)


def _matches(row, slot: PlannedSlot, assignment: Assignment, zone: str) -> bool:
    return (
        row.due_at == slot.due_at
        and row.slots_in_day == slot.slots_in_day
        and row.local_time == slot.local_time
        and row.assignment_id == assignment.pk
        and row.timezone == zone
    )


def reminder_plan_patients(
    *, patient_ids: Iterable[int], now: dt.datetime | None = None
) -> PlanResult:
    """Bring the patients' slots for today and the coming day(s) up to date.

    Creates the missing future slots and cancels planned ones that no longer
    fit (a phase, sessions/day, waking hours, time zone, pause, unsubscribe or
    program change). Rows being sent or already sent, skipped or failed are
    never touched, and their slot numbers are not planned again. Slots whose
    time has already passed today are not created. Running it twice changes
    nothing the second time.
    """
    now = now or timezone.now()
    result = PlanResult()
    with transaction.atomic():
        # Lock the patients so a concurrent re-plan of the same patient waits
        # and then reads the settled schedule (no stale rows survive).
        patients = list(
            Patient.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk__in=list(patient_ids))
            .order_by("pk")
        )
        if not patients:
            return result
        ids = [patient.pk for patient in patients]
        assignments = {
            assignment.patient_id: assignment
            for assignment in Assignment.objects.filter(
                patient_id__in=ids, status=Assignment.Status.ACTIVE
            )
        }
        earliest = min(_local_today(patient, now) for patient in patients)
        existing: dict[int, list] = {pk: [] for pk in ids}
        for row in (
            ReminderSlot.objects.filter(patient_id__in=ids)
            .filter(Q(local_date__gte=earliest) | Q(due_at__gt=now))
            .exclude(status=SlotStatus.CANCELLED)
            .values_list(*_PLAN_COLUMNS, named=True)
        ):
            existing[row.patient_id].append(row)

        to_cancel: list[int] = []
        to_create: list[ReminderSlot] = []
        for patient in patients:
            assignment = assignments.get(patient.pk)
            today = _local_today(patient, now)
            desired = _desired(patient=patient, assignment=assignment, now=now)
            for row in existing[patient.pk]:
                if row.local_date < today and row.due_at <= now:
                    continue  # an earlier day's leftovers: the dispatcher settles them
                key = (row.local_date, row.slot_number)
                slot = desired.get(key)
                if row.status != SlotStatus.PLANNED:
                    desired.pop(key, None)  # taken: never plan that slot again
                elif (
                    slot is not None
                    and assignment is not None
                    and _matches(row, slot, assignment, patient.timezone)
                ):
                    desired.pop(key)
                else:
                    to_cancel.append(row.pk)
            for (local_date, _number), slot in sorted(desired.items()):
                if slot.due_at <= now or assignment is None:
                    continue
                to_create.append(
                    ReminderSlot(
                        patient=patient,
                        assignment=assignment,
                        local_date=local_date,
                        slot_number=slot.slot_number,
                        slots_in_day=slot.slots_in_day,
                        local_time=slot.local_time,
                        timezone=patient.timezone,
                        due_at=slot.due_at,
                    )
                )
        if to_cancel:
            result.cancelled = ReminderSlot.objects.filter(
                pk__in=to_cancel, status=SlotStatus.PLANNED
            ).update(
                status=SlotStatus.CANCELLED,
                skip_reason=SkipReason.SCHEDULE_CHANGED,
                updated_at=now,
            )
        if to_create:
            # A row that appeared meanwhile (or holds the slot) wins: the
            # unique constraint turns the duplicate insert into a no-op.
            ReminderSlot.objects.bulk_create(to_create, ignore_conflicts=True)
            result.created = len(to_create)
        result.patients = len(patients)
    return result


def reminder_plan_patient(*, patient: Patient, now: dt.datetime | None = None) -> PlanResult:
    return reminder_plan_patients(patient_ids=[patient.pk], now=now)


def reminder_plan_all(*, now: dt.datetime | None = None, batch_size: int = 200) -> PlanResult:
    """Plan every patient who gets reminders, plus anyone with planned rows left.

    The second group heals a missed re-plan: a patient who unsubscribed or
    lost their program still has their future rows cancelled here.
    """
    now = now or timezone.now()
    eligible = Patient.objects.filter(
        reminders_enabled=True, assignments__status=Assignment.Status.ACTIVE
    ).values_list("pk", flat=True)
    leftover = ReminderSlot.objects.filter(status=SlotStatus.PLANNED, due_at__gt=now).values_list(
        "patient_id", flat=True
    )
    ids = sorted(set(eligible) | set(leftover))
    result = PlanResult()
    for start in range(0, len(ids), batch_size):
        result.add(reminder_plan_patients(patient_ids=ids[start : start + batch_size], now=now))
    return result


# --- claiming and dispatch ------------------------------------------------------


@dataclass
class DispatchResult:
    claimed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)


def reminder_claim(*, slot_id: int, now: dt.datetime | None = None) -> uuid.UUID | None:
    """Claim one due slot: a conditional UPDATE that must change exactly one row.

    Returns the claim token, or None when another dispatcher got it first.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    changed = ReminderSlot.objects.filter(
        pk=slot_id, status=SlotStatus.PLANNED, due_at__lte=now
    ).update(status=SlotStatus.SENDING, claim_token=token, claimed_at=now, updated_at=now)
    return token if changed == 1 else None


def reminder_release(*, slot_id: int, claim_token: uuid.UUID) -> bool:
    """Put a claimed slot back to planned (its send task could not be queued)."""
    return (
        ReminderSlot.objects.filter(
            pk=slot_id, status=SlotStatus.SENDING, claim_token=claim_token
        ).update(
            status=SlotStatus.PLANNED, claim_token=None, claimed_at=None, updated_at=timezone.now()
        )
        == 1
    )


def reminder_due_ids(*, now: dt.datetime, limit: int) -> list[int]:
    # Served by the partial index reminder_due_planned_idx.
    return list(
        ReminderSlot.objects.filter(status=SlotStatus.PLANNED, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def reminder_dispatch_due(
    *, enqueue: Enqueue, now: dt.datetime | None = None, batch_size: int = 500
) -> DispatchResult:
    """Claim every due slot and hand each to ``enqueue(slot_id, claim_token)``.

    Call it outside a transaction (as the tasks do): each claim then commits
    on its own before its send task is queued, so the worker always finds the
    row claimed. If queueing fails (broker down), the claim is released and
    the next sweep tries again; if the process dies in between, recovery
    releases it.
    """
    now = now or timezone.now()
    result = DispatchResult()
    seen: set[int] = set()
    while True:
        ids = [pk for pk in reminder_due_ids(now=now, limit=batch_size) if pk not in seen]
        if not ids:
            return result
        seen.update(ids)
        for slot_id in ids:
            token = reminder_claim(slot_id=slot_id, now=now)
            if token is None:
                continue  # another dispatcher has it
            try:
                enqueue(slot_id, token)
            except Exception:
                logger.exception("Could not queue reminder %s; releasing it.", slot_id)
                reminder_release(slot_id=slot_id, claim_token=token)
                result.released.append(slot_id)
            else:
                result.claimed.append(slot_id)


def reminder_recover_stuck(*, now: dt.datetime | None = None) -> list[int]:
    """Release slots left "sending" longer than the sending timeout.

    Their worker died (or its task message was lost with a Redis restart).
    They go back to planned and the dispatcher claims them afresh with a new
    token, so a late copy of the old task finds a stale token and does
    nothing. A slot that has used up its attempts is marked failed instead.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.REMINDER_SENDING_TIMEOUT)
    released: list[int] = []
    # Served by the partial index reminder_stuck_sending_idx.
    stuck = ReminderSlot.objects.filter(status=SlotStatus.SENDING, claimed_at__lt=cutoff)
    for slot_id, token, attempts in stuck.values_list("pk", "claim_token", "attempts"):
        same_claim = ReminderSlot.objects.filter(
            pk=slot_id, status=SlotStatus.SENDING, claim_token=token, claimed_at__lt=cutoff
        )
        if attempts >= settings.REMINDER_MAX_SEND_ATTEMPTS:
            same_claim.update(
                status=SlotStatus.FAILED,
                failure_reason=(
                    f"Gave up after {attempts} attempts: the sending worker stopped "
                    "before finishing."
                ),
                updated_at=now,
            )
            continue
        if same_claim.update(
            status=SlotStatus.PLANNED, claim_token=None, claimed_at=None, updated_at=now
        ):
            released.append(slot_id)
    return released


# --- sending --------------------------------------------------------------------


def reminder_skip_reason(*, slot: ReminderSlot, now: dt.datetime) -> str:
    """Why this slot must not be emailed now ("" if it should be)."""
    patient = slot.patient
    if not patient.reminders_enabled:
        return SkipReason.UNSUBSCRIBED
    if patient.reminders_paused_until and slot.local_date <= patient.reminders_paused_until:
        return SkipReason.PAUSED
    active_id = (
        Assignment.objects.filter(patient=patient, status=Assignment.Status.ACTIVE)
        .values_list("pk", flat=True)
        .first()
    )
    if active_id is None or active_id != slot.assignment_id:
        return SkipReason.NO_PROGRAM
    if sessions_logged_count(patient=patient, local_date=slot.local_date) >= slot.slot_number:
        return SkipReason.ALREADY_LOGGED
    if now - slot.due_at > dt.timedelta(minutes=settings.REMINDER_MAX_LATENESS_MINUTES):
        return SkipReason.TOO_LATE
    return ""


TRANSIENT = "transient"
PERMANENT = "permanent"


def smtp_error_kind(error: BaseException) -> str:
    """Transient errors are worth retrying; permanent ones never succeed."""
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return PERMANENT  # the server lacks what we are configured to use (TLS, AUTH)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in error.recipients.values()]
        return TRANSIENT if codes and all(400 <= code < 500 for code in codes) else PERMANENT
    if isinstance(error, smtplib.SMTPResponseException):
        return TRANSIENT if 400 <= error.smtp_code < 500 else PERMANENT
    if isinstance(
        error, smtplib.SMTPServerDisconnected | OSError | SoftTimeLimitExceeded | TimeoutError
    ):
        # Refused or dropped connections, timeouts: the server may be back soon.
        return TRANSIENT
    return PERMANENT


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, skipped, failed, retry, not_claimed
    reason: str = ""
    retry_in: int | None = None


def retry_delay(attempts: int) -> int:
    """Exponential backoff with a little jitter: ~30 s, 60 s, 120 s, ..."""
    base = settings.REMINDER_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    base = min(base, settings.REMINDER_RETRY_BACKOFF_MAX_SECONDS)
    return int(base + random.uniform(0, base / 10))  # noqa: S311 (not security)


def _finish(slot_id: int, claim_token: uuid.UUID, **changes) -> bool:
    changed = ReminderSlot.objects.filter(
        pk=slot_id, status=SlotStatus.SENDING, claim_token=claim_token
    ).update(**changes, updated_at=timezone.now())
    if changed != 1:
        logger.warning("Reminder %s was re-claimed while this attempt ran.", slot_id)
    return changed == 1


def reminder_send(
    *, slot_id: int, claim_token: uuid.UUID | str, now: dt.datetime | None = None
) -> SendOutcome:
    """One send attempt for a claimed slot; only the holder of the claim acts.

    Starting the attempt renews the claim's lease (``claimed_at``) and counts
    it, under the same token: a task holding an older token does nothing.
    The skip rules are checked again here, just before sending.
    """
    now = now or timezone.now()
    claim_token = uuid.UUID(str(claim_token))
    started = ReminderSlot.objects.filter(
        pk=slot_id, status=SlotStatus.SENDING, claim_token=claim_token
    ).update(claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    if started != 1:
        return SendOutcome("not_claimed")
    slot = ReminderSlot.objects.select_related("patient__user", "assignment__template").get(
        pk=slot_id
    )

    if slot.attempts > settings.REMINDER_MAX_SEND_ATTEMPTS:
        # Earlier attempts never finished (killed by the time limit, or the
        # worker died): do not try for ever.
        detail = f"Gave up after {slot.attempts - 1} attempts that did not finish."
        _finish(slot_id, claim_token, status=SlotStatus.FAILED, failure_reason=detail)
        return SendOutcome("failed", reason=detail)

    reason = reminder_skip_reason(slot=slot, now=now)
    if reason:
        _finish(slot_id, claim_token, status=SlotStatus.SKIPPED, skip_reason=reason)
        return SendOutcome("skipped", reason=reason)

    logged = sessions_logged_count(patient=slot.patient, local_date=slot.local_date)
    message = reminder_email_build(slot=slot, logged_today=logged)
    try:
        mail.mailers.default.send_messages([message])
    except Exception as error:
        kind = smtp_error_kind(error)
        detail = f"{type(error).__name__}: {error}"[:500]
        if kind == TRANSIENT and slot.attempts < settings.REMINDER_MAX_SEND_ATTEMPTS:
            # The row stays "sending" under this claim; the task retries later.
            logger.warning("Reminder %s: transient mail error, will retry: %s", slot_id, detail)
            return SendOutcome("retry", reason=detail, retry_in=retry_delay(slot.attempts))
        if kind == TRANSIENT:
            detail = f"Gave up after {slot.attempts} attempts. Last error: {detail}"
        _finish(slot_id, claim_token, status=SlotStatus.FAILED, failure_reason=detail)
        return SendOutcome("failed", reason=detail)
    _finish(
        slot_id,
        claim_token,
        status=SlotStatus.SENT,
        sent_at=timezone.now(),
        message_id=message_id_for(slot),
        failure_reason="",
    )
    return SendOutcome("sent")


# --- unsubscribe ----------------------------------------------------------------


def reminder_unsubscribe(*, patient: Patient) -> bool:
    """Switch reminder emails off. True if they were on. Safe to repeat.

    Goes through ``patient_update`` so the consent stamp is cleared and the
    schedule is re-planned (future slots cancelled) once it commits.
    """
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        if not patient.reminders_enabled:
            return False
        patient.reminders_enabled = False
        patient_update(patient=patient, changed_fields=["reminders_enabled"])
    return True
