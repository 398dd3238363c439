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

Due slots are claimed and sent in batches (REMINDER_SEND_BATCH_SIZE, 200 by
default): one claim statement and one send task per batch, one connection to
the mail server for the whole batch, and a constant number of reads whatever
its size. Each slot is still settled on its own: skipped, failed or retried
alone, and marked "sent" by its own UPDATE the moment the mail server
accepted its message, before the next message may be accepted.

The one window where a reminder can go out twice: the mail server accepted
the message (or was about to, and the reply never reached us), but the
worker died, timed out or lost the database before the row was marked
"sent". Recovery then sends it again, with the same Message-ID. That is at
most one message per batch in flight, never the batch. Everywhere else a
slot is emailed at most once, and a due slot is never lost.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import logging
import random
import re
import select
import smtplib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core import mail
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from accounts.ids import uuid7
from patients.models import Assignment, Patient
from patients.services import patient_update
from patients.zones import zone_named
from reminders import selectors as reminder_selectors
from reminders.emails import SIMPLE_ADDRESS, ReminderComposer, ReminderParts
from reminders.models import ReminderSlot, SkipReason, SlotStatus
from reminders.planning import PlannedSlot, plan_day
from symptoms.selectors import sessions_logged_count

try:
    from psycopg import pq as psycopg_pq
except ImportError:  # psycopg 2, or no PostgreSQL driver: the plain UPDATE is used
    psycopg_pq = None

logger = logging.getLogger(__name__)

# enqueue(slot_ids, claim_token): queue one send task for a claimed batch.
Enqueue = Callable[[list[int], uuid.UUID], None]


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


# What planning decides for a slot, in this order: the rows it writes and the
# rows re-planning compares.
PLANNED_COLUMNS = (
    "patient_id",
    "assignment_id",
    "local_date",
    "slot_number",
    "slots_in_day",
    "local_time",
    "timezone",
    "due_at",
)
# The columns re-planning compares; read as plain tuples, not model instances
# (a full plan run reads every future slot of every patient).
_PLAN_COLUMNS = ("pk", *PLANNED_COLUMNS, "status")


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
        # and then reads the settled schedule (no stale rows survive). Read as
        # plain values: a full plan run goes through every patient.
        patients = [
            _PlanPatient(*row)
            for row in Patient.objects.select_for_update(of=("self",))
            .filter(pk__in=list(patient_ids))
            .order_by("pk")
            .values_list(*_PlanPatient.COLUMNS)
        ]
        if not patients:
            return result
        ids = [patient.pk for patient in patients]
        assignments = {
            row[0]: _PlanAssignment(*row[1:])
            for row in Assignment.objects.filter(
                patient_id__in=ids, status=Assignment.Status.ACTIVE
            ).values_list("patient_id", *_PlanAssignment.COLUMNS)
        }
        earliest = min(_local_today(patient, now) for patient in patients)
        existing: dict[int, list] = {pk: [] for pk in ids}
        for row in (
            ReminderSlot.objects.filter(patient_id__in=ids)
            .filter(Q(local_date__gte=earliest) | Q(due_at__gt=now))
            .exclude(status=SlotStatus.CANCELLED)
            .order_by()
            .values_list(*_PLAN_COLUMNS, named=True)
        ):
            existing[row.patient_id].append(row)

        to_cancel: list[int] = []
        to_create: list[tuple] = []
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
            if assignment is None:
                continue
            for (local_date, _number), slot in sorted(desired.items()):
                if slot.due_at <= now:
                    continue
                to_create.append(
                    (
                        patient.pk,
                        assignment.pk,
                        local_date,
                        slot.slot_number,
                        slot.slots_in_day,
                        slot.local_time,
                        patient.timezone,
                        slot.due_at,
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
            _insert_planned(to_create, now=now)
            result.created = len(to_create)
        result.patients = len(patients)
    return result


@dataclass(frozen=True, slots=True)
class _PlanPatient:
    """What planning reads of a patient (the attribute names are the model's)."""

    COLUMNS = (
        "pk",
        "timezone",
        "wake_time",
        "sleep_time",
        "reminders_enabled",
        "reminders_paused_until",
    )

    pk: int
    timezone: str
    wake_time: dt.time
    sleep_time: dt.time
    reminders_enabled: bool
    reminders_paused_until: dt.date | None


@dataclass(frozen=True, slots=True)
class _PlanAssignment:
    """What planning reads of an assignment (the attribute names are the model's)."""

    COLUMNS = ("pk", "status", "started_on", "sessions_per_day")

    pk: int
    status: str
    started_on: dt.date
    sessions_per_day: int

    @property
    def is_active(self) -> bool:
        return self.status == Assignment.Status.ACTIVE


# New slots as planned (PLANNED_COLUMNS), then what every new row has.
_NEW_SLOT_COLUMNS = (
    *PLANNED_COLUMNS,
    "public_id",
    "status",
    "skip_reason",
    "failure_reason",
    "attempts",
    "message_id",
    "created_at",
    "updated_at",
)


def _insert_planned(rows: list[tuple], *, now: dt.datetime) -> None:
    """Insert new planned slots; one that is already there (or holds its slot) wins.

    PostgreSQL: COPY, in a savepoint, the values as every new row has them
    (what the model's defaults give); a full plan run inserts a day of slots
    for every patient, and building model instances for them cost more than
    planning them. The patients are locked, so no other planner can have
    inserted one of these slots; should one be there anyway, the savepoint
    is rolled back and the rows go in with ON CONFLICT DO NOTHING instead.
    """
    fixed = (SlotStatus.PLANNED.value, "", "", 0, "", now, now)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(ReminderSlot._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(name) for name in _NEW_SLOT_COLUMNS)
        try:
            with (
                transaction.atomic(),
                connection.cursor() as cursor,
                connection.wrap_database_errors,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row((*row, uuid7(), *fixed))
            return
        except IntegrityError:
            logger.warning("Planning found %d slot(s) already there; skipping them.", len(rows))
    names = PLANNED_COLUMNS
    ReminderSlot.objects.bulk_create(
        [ReminderSlot(**dict(zip(names, row, strict=True))) for row in rows],
        ignore_conflicts=True,
    )


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
    # Only the patients not in the first group: the database leaves out
    # everyone else's future rows (about a day and a half of slots each).
    leftover = (
        ReminderSlot.objects.filter(status=SlotStatus.PLANNED, due_at__gt=now)
        .exclude(patient_id__in=eligible)
        .order_by()
        .values_list("patient_id", flat=True)
        .distinct()
    )
    ids = sorted(set(eligible) | set(leftover))
    result = PlanResult()
    for start in range(0, len(ids), batch_size):
        result.add(reminder_plan_patients(patient_ids=ids[start : start + batch_size], now=now))
    return result


# --- claiming and dispatch ------------------------------------------------------


def send_batch_size() -> int:
    """Slots per send task (one SMTP connection, a constant number of reads).

    200: make bench-reminders sent 10,000 reminders at 0.51-0.55x the SMTP
    sink's rate with it, 0.34-0.47x with 100 (fewer claim statements, fewer
    tasks, connections and batch reads; back to back on a quiet machine:
    860 against 661 emails/s, 0.57 against 0.73 ms of worker CPU an email).
    A batch at a slow relay (200 ms a message) still ends well inside the
    send task's soft time limit; what it does not send in time waits for
    the retry.
    """
    return max(1, int(getattr(settings, "REMINDER_SEND_BATCH_SIZE", 200)))


@dataclass
class DispatchResult:
    claimed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    batches: int = 0


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


def _claim_batch_sql() -> str:
    table = connection.ops.quote_name(ReminderSlot._meta.db_table)
    # The CTE runs once (MATERIALIZED): as a plain "id IN (SELECT ... LIMIT n)"
    # the planner may run the subquery again for each row the UPDATE changes,
    # and claim more than n rows. Its SELECT is served by the partial index
    # reminder_due_planned_idx; SKIP LOCKED lets racing dispatchers take
    # disjoint batches without waiting. The table name is the model's, quoted;
    # every value is a parameter.
    return (
        f"WITH due AS MATERIALIZED (SELECT id FROM {table} "  # noqa: S608
        "WHERE status = %s AND due_at <= %s "
        "ORDER BY due_at, id LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"UPDATE {table} AS slot SET status = %s, claim_token = %s, claimed_at = %s, "
        "updated_at = %s FROM due WHERE slot.id = due.id AND slot.status = %s "
        "RETURNING slot.id, slot.due_at"
    )


def reminder_claim_batch(
    *, now: dt.datetime | None = None, limit: int | None = None
) -> tuple[uuid.UUID, list[int]]:
    """Claim up to ``limit`` due slots at once, under one new claim token.

    One statement on PostgreSQL (a MATERIALIZED CTE SELECT ... FOR UPDATE
    SKIP LOCKED LIMIT n, then UPDATE ... RETURNING), so two dispatchers
    never claim the same row and never wait for each other. Elsewhere (SQLite, whose writes are
    serialised) the same conditional UPDATE by id, then the rows holding the
    new token are read back. Returns (token, claimed ids in due order).
    """
    now = now or timezone.now()
    limit = limit or send_batch_size()
    token = uuid.uuid4()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _claim_batch_sql(),
                [
                    SlotStatus.PLANNED.value,
                    now,
                    limit,
                    SlotStatus.SENDING.value,
                    token,
                    now,
                    now,
                    SlotStatus.PLANNED.value,
                ],
            )
            rows = cursor.fetchall()
        return token, [pk for pk, _due in sorted(rows, key=lambda row: (row[1], row[0]))]
    ids = reminder_due_ids(now=now, limit=limit)
    if not ids:
        return token, []
    ReminderSlot.objects.filter(pk__in=ids, status=SlotStatus.PLANNED, due_at__lte=now).update(
        status=SlotStatus.SENDING, claim_token=token, claimed_at=now, updated_at=now
    )
    claimed = set(
        ReminderSlot.objects.filter(pk__in=ids, claim_token=token).values_list("pk", flat=True)
    )
    return token, [pk for pk in ids if pk in claimed]


def reminder_release(*, slot_id: int, claim_token: uuid.UUID) -> bool:
    """Put a claimed slot back to planned (its send task could not be queued)."""
    return reminder_release_batch(slot_ids=[slot_id], claim_token=claim_token) == 1


def reminder_release_batch(*, slot_ids: list[int], claim_token: uuid.UUID) -> int:
    """Put claimed slots back to planned, only while they still hold this claim."""
    return ReminderSlot.objects.filter(
        pk__in=slot_ids, status=SlotStatus.SENDING, claim_token=claim_token
    ).update(
        status=SlotStatus.PLANNED, claim_token=None, claimed_at=None, updated_at=timezone.now()
    )


def reminder_due_ids(*, now: dt.datetime, limit: int) -> list[int]:
    # Served by the partial index reminder_due_planned_idx.
    return list(
        ReminderSlot.objects.filter(status=SlotStatus.PLANNED, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def reminder_dispatch_due(
    *, enqueue: Enqueue, now: dt.datetime | None = None, batch_size: int | None = None
) -> DispatchResult:
    """Claim every due slot, a batch at a time, and hand each batch to ``enqueue``.

    ``enqueue(slot_ids, claim_token)`` queues one send task for the batch.
    Call it outside a transaction (as the tasks do): each claim then commits
    on its own before its send task is queued, so the worker always finds
    the rows claimed. If queueing fails (broker down), the batch is released
    and the sweep stops; the next sweep tries again. If the process dies in
    between, recovery releases the rows.
    """
    now = now or timezone.now()
    batch_size = batch_size or send_batch_size()
    result = DispatchResult()
    while True:
        token, ids = reminder_claim_batch(now=now, limit=batch_size)
        if not ids:
            return result
        try:
            enqueue(ids, token)
        except Exception:
            logger.exception("Could not queue %d reminder(s); releasing them.", len(ids))
            reminder_release_batch(slot_ids=ids, claim_token=token)
            result.released.extend(ids)
            return result
        result.claimed.extend(ids)
        result.batches += 1


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
    # Served by the partial index reminder_sending_idx (few rows are "sending").
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


def reminder_skip_reason(
    *, slot: ReminderSlot, now: dt.datetime, logged_today: int | None = None
) -> str:
    """Why this slot must not be emailed now ("" if it should be).

    ``slot`` is a ReminderSlot with its patient and assignment, or the
    batch's plain-value copy of them (reminders.selectors.BatchSlot);
    ``logged_today`` is the patient's session count that day, read here if
    not given.
    """
    patient = slot.patient
    if not patient.reminders_enabled:
        return SkipReason.UNSUBSCRIBED
    if patient.reminders_paused_until and slot.local_date <= patient.reminders_paused_until:
        return SkipReason.PAUSED
    # A patient has at most one active assignment (a unique constraint): the
    # slot's own one is active exactly when it is still the patient's program.
    if slot.assignment.status != Assignment.Status.ACTIVE:
        return SkipReason.NO_PROGRAM
    if logged_today is None:
        logged_today = sessions_logged_count(patient=patient, local_date=slot.local_date)
    if logged_today >= slot.slot_number:
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


def connection_lost(error: BaseException) -> bool:
    """After this error the SMTP connection is gone or in an unknown state.

    Refused recipients and 4xx/5xx answers to one message leave it usable
    (smtplib resets the transaction), except 421, after which smtplib closes it.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _msg in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code == 421
    return isinstance(
        error, smtplib.SMTPServerDisconnected | OSError | SoftTimeLimitExceeded | TimeoutError
    )


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent, skipped, failed, retry, not_claimed
    reason: str = ""
    retry_in: int | None = None


@dataclass
class BatchOutcome:
    """What one attempt at a batch did to each of its slots."""

    outcomes: dict[int, SendOutcome] = field(default_factory=dict)
    retry_in: int | None = None

    @property
    def retry_ids(self) -> list[int]:
        """Slots still "sending" under this claim, for the task's next attempt."""
        return [pk for pk, outcome in self.outcomes.items() if outcome.status == "retry"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts


def retry_delay(attempts: int) -> int:
    """Exponential backoff with a little jitter: ~30 s, 60 s, 120 s, ..."""
    base = settings.REMINDER_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    base = min(base, settings.REMINDER_RETRY_BACKOFF_MAX_SECONDS)
    return int(base + random.uniform(0, base / 10))  # noqa: S311 (not security)


def _finish(slot_id: int, claim_token: uuid.UUID, **changes) -> bool:
    return _finish_many([slot_id], claim_token, **changes) == 1


def _finish_many(slot_ids: list[int], claim_token: uuid.UUID, **changes) -> int:
    changed = ReminderSlot.objects.filter(
        pk__in=slot_ids, status=SlotStatus.SENDING, claim_token=claim_token
    ).update(**changes, updated_at=timezone.now())
    if changed != len(slot_ids):
        logger.warning(
            "%d of reminders %s were re-claimed while this attempt ran.",
            len(slot_ids) - changed,
            slot_ids,
        )
    return changed


class _SentMarker:
    """Marks one slot sent, right after the mail server accepted its message.

    One short autocommitted UPDATE per message, conditional on the claim (as
    every state change). ``mark()`` sends it; ``confirm()`` waits for the
    database's answer. Here (any database but PostgreSQL) ``mark()`` waits
    itself; ``_PipelinedSentMarker`` does not.
    """

    def __init__(self, claim_token: uuid.UUID):
        meta = ReminderSlot._meta
        table = connection.ops.quote_name(meta.db_table)
        self.sql = (
            f"UPDATE {table} SET status = %s, sent_at = %s, message_id = %s, "  # noqa: S608
            "failure_reason = %s, updated_at = %s "
            "WHERE id = %s AND status = %s AND claim_token = %s"
        )
        self.sent_at_field = meta.get_field("sent_at")
        self.token = meta.get_field("claim_token").get_db_prep_value(claim_token, connection)

    def params(self, slot_id: int, message_id: str) -> list:
        now = self.sent_at_field.get_db_prep_value(timezone.now(), connection)
        return [
            SlotStatus.SENT.value,
            now,
            message_id,
            "",
            now,
            slot_id,
            SlotStatus.SENDING.value,
            self.token,
        ]

    def mark(self, slot_id: int, message_id: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params(slot_id, message_id))
            self._check(slot_id, cursor.rowcount)

    def confirm(self) -> None:
        """Wait until the last ``mark()`` is committed (here: it already is)."""

    def _check(self, slot_id: int, changed: int | None) -> None:
        if changed != 1:
            logger.warning("Reminder %s was re-claimed while this attempt ran.", slot_id)


class _PipelinedSentMarker(_SentMarker):
    """PostgreSQL: the UPDATE goes out at once, its answer is read a message later.

    The UPDATE is sent (a complete extended-query message with its Sync, so
    the server runs and commits it on its own) the moment the mail server
    accepted the message; the next message's MAIL, RCPT and DATA exchanges
    then run while the database commits. ``confirm()`` reads the answer
    before the mail server is asked to accept anything else, so there is
    never more than one accepted message not yet marked: the documented
    duplicate window stays one message wide. The row is marked as soon as
    with a blocking UPDATE; the worker only stops waiting for the commit
    (under load, about a third of each email's time).

    Run on the connection Django holds (libpq's asynchronous API, through
    psycopg), between Django's own queries: every ``mark()`` is confirmed
    before the connection is used for anything else. Logged in
    ``connection.queries`` like any query, so query counts stay honest.
    """

    def __init__(self, claim_token: uuid.UUID):
        super().__init__(claim_token)
        parts = self.sql.split("%s")
        self.libpq_sql = "".join(
            part + (f"${index}" if index < len(parts) else "")
            for index, part in enumerate(parts, start=1)
        ).encode()
        self.pending: tuple[int, str, float] | None = None
        # The connection itself, not the per-thread proxy: looked up once.
        self.db = connections[DEFAULT_DB_ALIAS]
        self.token_text = str(claim_token).encode()

    def mark(self, slot_id: int, message_id: str) -> None:
        self.confirm()
        db = self.db
        db.ensure_connection()
        pgconn = db.connection.pgconn
        now = timezone.now().isoformat().encode()
        values = [
            b"sent",
            now,
            message_id.encode(),
            b"",
            now,
            str(slot_id).encode(),
            b"sending",
            self.token_text,
        ]
        with db.wrap_database_errors:
            pgconn.send_query_params(self.libpq_sql, values)
            while pgconn.flush():
                select.select([], [pgconn.socket], [])
        self.pending = (slot_id, message_id, time.monotonic())

    def confirm(self) -> None:
        if self.pending is None:
            return
        slot_id, message_id, started = self.pending
        self.pending = None
        db = self.db
        pgconn = db.connection.pgconn
        results = []
        with db.wrap_database_errors:
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    result = pgconn.get_result()
                    if result is None:
                        break
                    results.append(result)
                    continue
                select.select([pgconn.socket], [], [])
        if db.queries_logged:
            db.queries_log.append(
                {
                    "sql": f"{self.sql} -- {slot_id}, {message_id} (pipelined)",
                    "time": f"{time.monotonic() - started:.3f}",
                }
            )
        errors = [r for r in results if r.status != psycopg_pq.ExecStatus.COMMAND_OK]
        if errors or not results:
            message = errors[0].error_message.decode(errors="replace") if errors else "no result"
            raise DatabaseError(f"Marking reminder {slot_id} sent failed: {message}")
        self._check(slot_id, results[-1].command_tuples)


def _sent_marker(claim_token: uuid.UUID) -> _SentMarker:
    if connection.vendor == "postgresql" and psycopg_pq is not None:
        return _PipelinedSentMarker(claim_token)
    return _SentMarker(claim_token)


def _mark_sent(marker: _SentMarker, slot_id: int, message_id: str) -> None:
    """Right after the mail server accepted the message (a hook for tests)."""
    marker.mark(slot_id, message_id)


class _Mailbox:
    """One mailer connection for a whole batch.

    With Django's SMTP backend, each message goes to the open connection
    directly, as the backend itself would send it (its envelope addresses,
    the message bytes from ``ReminderEmail.wire_bytes()``). Any other backend
    (console, file, locmem in tests) gets ``send_messages([message])``.
    """

    def __init__(self):
        self.mailer = mail.mailers.default
        self.smtp = type(self.mailer) is SMTPBackend
        self._envelope_from: dict[str, str] = {}

    def open(self) -> None:
        opener = getattr(self.mailer, "open", None)
        if opener is not None:
            opener()

    def close(self) -> None:
        closer = getattr(self.mailer, "close", None)
        if closer is not None:
            try:
                closer()
            except Exception:  # the connection is being dropped anyway
                logger.debug("Closing the mail connection failed.", exc_info=True)

    def reopen(self) -> None:
        self.close()
        self.open()

    def send(
        self,
        composer: ReminderComposer,
        parts: ReminderParts,
        *,
        before_accept: Callable[[], None],
    ) -> None:
        """Send one reminder; ``before_accept()`` runs before the server may accept it."""
        smtp = self.mailer.connection if self.smtp else None
        if smtp is None:
            before_accept()
            self.mailer.send_messages([composer.message(parts)])
            return
        sender = composer.from_email
        if sender not in self._envelope_from:
            self._envelope_from[sender] = self.mailer.prep_address(sender)
        envelope_from = self._envelope_from[sender]
        if SIMPLE_ADDRESS.fullmatch(envelope_from) and SIMPLE_ADDRESS.fullmatch(parts.to):
            data = composer.wire_bytes(parts)
            if data is not None:
                smtp_transaction(smtp, envelope_from, parts.to, data, before_accept)
                return
        # Anything unusual: exactly what Django's SMTP backend would do.
        message = composer.message(parts)
        recipients = [self.mailer.prep_address(address) for address in message.recipients()]
        data = message.message(policy=email.policy.SMTP).as_bytes()
        before_accept()
        smtp.sendmail(envelope_from, recipients, data)


def _smtp_abort(smtp: smtplib.SMTP, code: int) -> None:
    # As smtplib.SMTP.sendmail: 421 means the server is closing the connection.
    if code == 421:
        smtp.close()
    else:
        smtp._rset()


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _has_leading_dot(data: bytes) -> bool:
    return data.startswith(b".") or b"\n." in data


def smtp_transaction(
    smtp: smtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    before_accept: Callable[[], None] = lambda: None,
) -> None:
    """``smtp.sendmail(sender, [recipient], data)`` for plain addresses, a little cheaper.

    The same commands, options and errors as smtplib's sendmail, without
    parsing the two addresses again for every message (they are plain
    dot-atom addresses, checked by the caller, so "<address>" is their
    quoted form). ``before_accept()`` runs once the server said 354 to DATA,
    just before the content that it accepts or refuses.
    """
    smtp.ehlo_or_helo_if_needed()
    options = f" size={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    smtp.putcmd("mail", f"from:<{sender}>{options}")
    code, answer = smtp.getreply()
    if code != 250:
        _smtp_abort(smtp, code)
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    smtp.putcmd("rcpt", f"to:<{recipient}>")
    code, answer = smtp.getreply()
    if code not in (250, 251):
        _smtp_abort(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, answer)})
    # smtplib.SMTP.data(), with before_accept() between DATA and the content.
    smtp.putcmd("data")
    code, answer = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, answer)
    before_accept()
    # Dot-stuffing (RFC 5321 4.5.2), as smtplib's sendmail; a reminder rarely
    # has a line starting with a dot, and finding none is far cheaper than the
    # substitution.
    content = _LEADING_DOT.sub(b"..", data) if _has_leading_dot(data) else data
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    smtp.send(content + b".\r\n")
    code, answer = smtp.getreply()
    if code != 250:
        _smtp_abort(smtp, code)
        raise smtplib.SMTPDataError(code, answer)


def _error_detail(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def reminder_send_batch(
    *,
    slot_ids: Iterable[int],
    claim_token: uuid.UUID | str,
    now: dt.datetime | None = None,
) -> BatchOutcome:
    """One send attempt for a batch of slots claimed together; only their claim holder acts.

    * Starting the attempt renews the lease (``claimed_at``) and counts an
      attempt for every slot still held under ``claim_token``; a slot that
      is not (sent meanwhile, recovered and claimed again) is "not_claimed"
      and left alone.
    * Everything the batch needs is read in a constant number of queries:
      the slots with their patients, users and assignments, today's session
      counts, the exercises of each phase.
    * The skip rules are checked, and skipped or given-up slots are settled
      in one UPDATE per reason.
    * The rest go out over one connection to the mail server, each marked
      sent the moment the server accepted it (one UPDATE per message).
    * A refused message fails (permanent error) or waits for a retry
      (transient) on its own; the others carry on. If the connection is
      lost, it is opened again once; if that fails too, the messages not
      yet tried wait for the retry with it.

    Slots to retry stay "sending" under the same claim; ``retry_in`` is
    their backoff. The task retries exactly them.
    """
    now = now or timezone.now()
    claim_token = uuid.UUID(str(claim_token))
    ids = list(dict.fromkeys(int(pk) for pk in slot_ids))
    result = BatchOutcome()
    held = ReminderSlot.objects.filter(
        pk__in=ids, status=SlotStatus.SENDING, claim_token=claim_token
    )
    started = held.update(claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    slots = (
        reminder_selectors.reminder_batch_slots(slot_ids=ids, claim_token=claim_token)
        if started
        else []
    )
    found = {slot.pk for slot in slots}
    for pk in ids:
        if pk not in found:
            result.outcomes[pk] = SendOutcome("not_claimed")
    if not slots:
        return result

    max_attempts = settings.REMINDER_MAX_SEND_ATTEMPTS
    logged = reminder_selectors.sessions_logged_counts(
        days={(slot.patient_id, slot.local_date) for slot in slots}
    )
    settle: dict[tuple[str, str, str], list[int]] = {}
    to_send: list[reminder_selectors.BatchSlot] = []
    for slot in slots:
        if slot.attempts > max_attempts:
            # Earlier attempts never finished (killed by the time limit, or the
            # worker died): do not try for ever.
            detail = f"Gave up after {slot.attempts - 1} attempts that did not finish."
            settle.setdefault((SlotStatus.FAILED, "failure_reason", detail), []).append(slot.pk)
            result.outcomes[slot.pk] = SendOutcome("failed", reason=detail)
            continue
        reason = reminder_skip_reason(
            slot=slot, now=now, logged_today=logged.get((slot.patient_id, slot.local_date), 0)
        )
        if reason:
            settle.setdefault((SlotStatus.SKIPPED, "skip_reason", reason), []).append(slot.pk)
            result.outcomes[slot.pk] = SendOutcome("skipped", reason=reason)
            continue
        to_send.append(slot)
    for (status, column, reason), group in settle.items():
        _finish_many(group, claim_token, status=status, **{column: reason})
    if to_send:
        _send_all(to_send, claim_token, logged, result)
    retry = [slot.attempts for slot in slots if result.outcomes[slot.pk].status == "retry"]
    if retry:
        result.retry_in = retry_delay(max(retry))
    return result


def _send_all(
    slots: list[reminder_selectors.BatchSlot],
    claim_token: uuid.UUID,
    logged: dict[tuple[int, dt.date], int],
    result: BatchOutcome,
) -> None:
    exercises = reminder_selectors.phase_exercise_lines(
        phases={(slot.assignment.template_id, slot.assignment.current_phase) for slot in slots}
    )
    max_attempts = settings.REMINDER_MAX_SEND_ATTEMPTS
    marker = _sent_marker(claim_token)
    mailbox = _Mailbox()
    composer = ReminderComposer()

    def failed(slot: reminder_selectors.BatchSlot, error: BaseException) -> None:
        kind = smtp_error_kind(error)
        detail = _error_detail(error)
        if kind == TRANSIENT and slot.attempts < max_attempts:
            # The row stays "sending" under this claim; the task retries later.
            logger.warning("Reminder %s: transient mail error, will retry: %s", slot.pk, detail)
            result.outcomes[slot.pk] = SendOutcome("retry", reason=detail)
            return
        if kind == TRANSIENT:
            detail = f"Gave up after {slot.attempts} attempts. Last error: {detail}"
        marker.confirm()  # the connection is free for Django again
        _finish(slot.pk, claim_token, status=SlotStatus.FAILED, failure_reason=detail)
        result.outcomes[slot.pk] = SendOutcome("failed", reason=detail)

    try:
        mailbox.open()
    except Exception as error:
        for slot in slots:
            failed(slot, error)
        return
    reconnects = 1
    try:
        for index, slot in enumerate(slots):
            assignment = slot.assignment
            parts = composer.compose(
                slot=slot,
                logged_today=logged.get((slot.patient_id, slot.local_date), 0),
                exercise_lines=exercises.get(
                    (assignment.template_id, assignment.current_phase), ()
                ),
            )
            try:
                mailbox.send(composer, parts, before_accept=marker.confirm)
            except Exception as error:
                failed(slot, error)
                if not connection_lost(error):
                    continue
                try:
                    if reconnects < 1 or isinstance(error, SoftTimeLimitExceeded):
                        raise error
                    reconnects -= 1
                    mailbox.reopen()
                except Exception as lost:
                    # The server is gone: what was not tried waits for the retry.
                    for rest in slots[index + 1 :]:
                        failed(rest, lost)
                    return
                continue
            _mark_sent(marker, slot.pk, parts.message_id)
            result.outcomes[slot.pk] = SendOutcome("sent")
    except SoftTimeLimitExceeded as error:
        # Out of time between two messages: what was not tried waits for the retry.
        for rest in slots:
            if rest.pk not in result.outcomes:
                failed(rest, error)
    finally:
        try:
            marker.confirm()  # the last mark, however the loop ended
        finally:
            mailbox.close()


def reminder_send(
    *, slot_id: int, claim_token: uuid.UUID | str, now: dt.datetime | None = None
) -> SendOutcome:
    """One send attempt for one claimed slot (a batch of one)."""
    result = reminder_send_batch(slot_ids=[slot_id], claim_token=claim_token, now=now)
    outcome = result.outcomes[int(slot_id)]
    if outcome.status == "retry":
        return SendOutcome("retry", reason=outcome.reason, retry_in=result.retry_in)
    return outcome


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
