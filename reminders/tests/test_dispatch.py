"""Claiming due slots exactly once, every skip reason, retries and recovery."""

from __future__ import annotations

import datetime as dt
import smtplib
import uuid

import pytest
import time_machine

from patients import services as patient_services
from reminders import services, tasks
from reminders.models import ReminderSlot
from reminders.tests.conftest import utc
from symptoms import services as symptom_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_retries_run")]

EARLY = utc(2026, 6, 10, 5, 0)  # 06:00 in London (BST)
SLOT_1_DUE = utc(2026, 6, 10, 7, 10)  # 08:10 London
SLOT_3_DUE = utc(2026, 6, 10, 11, 50)  # 12:50 London


@pytest.fixture
def planned(make_patient_on_program):
    """A London patient, acute 6 a day, planned at 06:00 on 10 June."""
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=6, full_name="Pat Patient")
        services.reminder_plan_patient(patient=patient)
    return patient


def slot(patient, number, day=dt.date(2026, 6, 10)):
    return (
        ReminderSlot.objects.get(
            patient=patient, local_date=day, slot_number=number, status__in=services.LIVE
        )
        if False
        else ReminderSlot.objects.exclude(status="cancelled").get(
            patient=patient, local_date=day, slot_number=number
        )
    )


class Recorder:
    """An enqueue callable: remembers each batch (slot ids, claim token) it was given."""

    def __init__(self):
        self.calls: list[tuple[list[int], uuid.UUID]] = []

    def __call__(self, slot_ids, token):
        self.calls.append((list(slot_ids), token))

    @property
    def slot_ids(self) -> list[int]:
        return [slot_id for slot_ids, _token in self.calls for slot_id in slot_ids]


# --- claiming and dispatch ------------------------------------------------------------


def test_a_claim_changes_exactly_one_row_once(planned, clock):
    clock(SLOT_1_DUE)
    first = slot(planned, 1)
    token = services.reminder_claim(slot_id=first.pk)
    assert token is not None
    assert services.reminder_claim(slot_id=first.pk) is None
    first.refresh_from_db()
    assert (first.status, first.claim_token, first.claimed_at) == ("sending", token, SLOT_1_DUE)


def test_a_slot_not_yet_due_cannot_be_claimed(planned, clock):
    clock(SLOT_1_DUE - dt.timedelta(seconds=1))
    assert services.reminder_claim(slot_id=slot(planned, 1).pk) is None


def test_dispatch_claims_only_due_slots_and_queues_each_once(planned, clock):
    clock(SLOT_3_DUE)
    queue = Recorder()
    result = services.reminder_dispatch_due(enqueue=queue)
    due = [slot(planned, n).pk for n in (1, 2, 3)]
    assert queue.slot_ids == due
    assert len(queue.calls) == 1  # one batch, one claim token
    assert {slot(planned, n).claim_token for n in (1, 2, 3)} == {queue.calls[0][1]}
    assert result.claimed == due
    assert {slot(planned, n).status for n in (1, 2, 3)} == {"sending"}
    assert {slot(planned, n).status for n in (4, 5, 6)} == {"planned"}
    # A second dispatcher finds nothing left to claim.
    again = Recorder()
    assert services.reminder_dispatch_due(enqueue=again).claimed == []
    assert again.calls == []


def test_dispatch_releases_a_claim_it_could_not_queue(planned, clock):
    clock(SLOT_1_DUE)

    def broker_down(slot_ids, token):
        raise ConnectionError("broker unreachable")

    result = services.reminder_dispatch_due(enqueue=broker_down)
    assert result.released == [slot(planned, 1).pk]
    assert slot(planned, 1).status == "planned"
    # The next sweep, with the broker back, claims it.
    queue = Recorder()
    services.reminder_dispatch_due(enqueue=queue)
    assert queue.slot_ids == [slot(planned, 1).pk]


# --- sending and the skip reasons ------------------------------------------------------


def claim_and_send(patient, number, when):
    with time_machine.travel(when, tick=False):
        row = slot(patient, number)
        token = services.reminder_claim(slot_id=row.pk)
        assert token is not None
        return services.reminder_send(slot_id=row.pk, claim_token=token)


def test_a_due_slot_is_sent_and_marked(planned, mailoutbox):
    outcome = claim_and_send(planned, 1, SLOT_1_DUE + dt.timedelta(seconds=20))
    assert outcome.status == "sent"
    row = slot(planned, 1)
    assert row.status == "sent"
    assert row.sent_at == SLOT_1_DUE + dt.timedelta(seconds=20)
    assert row.message_id == f"<reminder-{row.public_id}@127.0.0.1>"
    assert row.attempts == 1
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [planned.user.email]


def test_skip_when_unsubscribed(planned, mailoutbox):
    type(planned).objects.filter(pk=planned.pk).update(reminders_enabled=False)
    outcome = claim_and_send(planned, 1, SLOT_1_DUE)
    assert (outcome.status, outcome.reason) == ("skipped", "unsubscribed")
    row = slot(planned, 1)
    assert (row.status, row.skip_reason) == ("skipped", "unsubscribed")
    assert mailoutbox == []


def test_skip_when_paused(planned, mailoutbox):
    type(planned).objects.filter(pk=planned.pk).update(reminders_paused_until=dt.date(2026, 6, 10))
    assert claim_and_send(planned, 1, SLOT_1_DUE).reason == "paused"
    assert slot(planned, 1).skip_reason == "paused"
    assert mailoutbox == []


def test_a_pause_that_ended_yesterday_does_not_skip(planned, mailoutbox):
    type(planned).objects.filter(pk=planned.pk).update(reminders_paused_until=dt.date(2026, 6, 9))
    assert claim_and_send(planned, 1, SLOT_1_DUE).status == "sent"


def test_skip_when_the_program_ended(planned, therapist, mailoutbox):
    with time_machine.travel(EARLY, tick=False):
        patient_services.assignment_end(
            assignment=planned.assignments.get(), ended_by=therapist, reason="Done"
        )
    assert claim_and_send(planned, 1, SLOT_1_DUE).reason == "no_program"
    assert mailoutbox == []


def test_skip_when_a_different_program_replaced_it(planned, therapist, flexion_template):
    with time_machine.travel(EARLY, tick=False):
        patient_services.assignment_create(
            patient=planned, template=flexion_template, assigned_by=therapist, phase="acute"
        )
    assert claim_and_send(planned, 1, SLOT_1_DUE).reason == "no_program"


def log_sessions(patient, count, when):
    with time_machine.travel(when, tick=False):
        for _ in range(count):
            symptom_services.session_log(
                patient=patient,
                idempotency_key=uuid.uuid4(),
                assignment=patient.assignments.get(status="active"),
            )


def test_skip_when_that_many_sessions_are_already_logged_today(planned, mailoutbox):
    log_sessions(planned, 3, EARLY)
    for number in (1, 2, 3):
        assert claim_and_send(planned, number, SLOT_3_DUE).reason == "already_logged"
    # Session 4 still gets its reminder, and says so.
    assert claim_and_send(planned, 4, utc(2026, 6, 10, 14, 10)).status == "sent"
    assert len(mailoutbox) == 1
    assert "Session 4 of 6 today" in mailoutbox[0].subject
    assert "logged 3 sessions today" in mailoutbox[0].body


def test_sessions_logged_yesterday_do_not_count(planned, mailoutbox):
    log_sessions(planned, 6, utc(2026, 6, 9, 12, 0))
    assert claim_and_send(planned, 1, SLOT_1_DUE).status == "sent"


def test_fewer_sessions_logged_than_the_slot_number_still_sends(planned, mailoutbox):
    log_sessions(planned, 1, EARLY)
    assert claim_and_send(planned, 2, utc(2026, 6, 10, 9, 30)).status == "sent"


def test_skip_when_too_late(planned, settings, mailoutbox):
    settings.REMINDER_MAX_LATENESS_MINUTES = 60
    on_time = claim_and_send(planned, 1, SLOT_1_DUE + dt.timedelta(minutes=60))
    assert on_time.status == "sent"
    late = claim_and_send(planned, 2, utc(2026, 6, 10, 9, 30) + dt.timedelta(minutes=61))
    assert late.reason == "too_late"
    assert slot(planned, 2).get_skip_reason_display().startswith("Too late")
    assert len(mailoutbox) == 1


def test_every_skip_reason_is_covered():
    from reminders.models import SkipReason

    tested = {"unsubscribed", "paused", "no_program", "already_logged", "too_late"}
    # schedule_changed is the reason of cancelled rows (see test_replanning).
    assert set(SkipReason.values) == tested | {"schedule_changed"}


# --- tokens, retries, failures ---------------------------------------------------------


def test_a_task_holding_an_old_claim_does_nothing(planned, clock, mailoutbox):
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    services.reminder_claim(slot_id=row.pk)
    outcome = services.reminder_send(slot_id=row.pk, claim_token=uuid.uuid4())
    assert outcome.status == "not_claimed"
    assert slot(planned, 1).status == "sending"
    assert mailoutbox == []


def test_a_sent_slot_is_never_sent_again(planned, clock, mailoutbox):
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    token = services.reminder_claim(slot_id=row.pk)
    assert services.reminder_send(slot_id=row.pk, claim_token=token).status == "sent"
    # The same task message delivered again (acks_late redelivery).
    assert services.reminder_send(slot_id=row.pk, claim_token=token).status == "not_claimed"
    assert len(mailoutbox) == 1


class FailingMailer:
    def __init__(self, error):
        self.error = error
        self.calls = 0

    def send_messages(self, messages):
        self.calls += 1
        raise self.error


@pytest.fixture
def failing_mail(monkeypatch):
    def install(error):
        mailer = FailingMailer(error)

        class Mailers:
            default = mailer

        monkeypatch.setattr(services.mail, "mailers", Mailers)
        return mailer

    return install


TRANSIENT_ERRORS = [
    smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError("timed out"),
    smtplib.SMTPResponseException(421, b"Service not available"),
    smtplib.SMTPDataError(451, b"Try again later"),
    smtplib.SMTPRecipientsRefused({"pat@patients.test": (450, b"Mailbox busy")}),
]
PERMANENT_ERRORS = [
    smtplib.SMTPRecipientsRefused({"pat@patients.test": (550, b"No such user")}),
    smtplib.SMTPDataError(554, b"Message rejected"),
    smtplib.SMTPSenderRefused(553, b"Sender not allowed", "no-reply@localhost"),
    ValueError("Invalid address"),
    smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
    smtplib.SMTPAuthenticationError(535, b"Authentication failed"),
]


@pytest.mark.parametrize("error", TRANSIENT_ERRORS, ids=lambda e: type(e).__name__)
def test_transient_errors_keep_the_claim_and_retry_with_backoff(planned, failing_mail, error):
    failing_mail(error)
    outcome = claim_and_send(planned, 1, SLOT_1_DUE)
    assert outcome.status == "retry"
    assert 30 <= outcome.retry_in <= 33
    row = slot(planned, 1)
    assert (row.status, row.attempts) == ("sending", 1)


@pytest.mark.parametrize("error", PERMANENT_ERRORS, ids=lambda e: type(e).__name__)
def test_permanent_errors_mark_the_slot_failed_with_the_reason(planned, failing_mail, error):
    failing_mail(error)
    outcome = claim_and_send(planned, 1, SLOT_1_DUE)
    assert outcome.status == "failed"
    row = slot(planned, 1)
    assert row.status == "failed"
    assert type(error).__name__ in row.failure_reason
    assert row.reason == row.failure_reason


def test_backoff_doubles_up_to_its_cap(settings):
    settings.REMINDER_RETRY_BACKOFF_SECONDS = 30
    settings.REMINDER_RETRY_BACKOFF_MAX_SECONDS = 300
    delays = [services.retry_delay(attempt) for attempt in range(1, 7)]
    for delay, base in zip(delays, [30, 60, 120, 240, 300, 300], strict=True):
        assert base <= delay <= base * 1.1


def test_the_task_retries_transient_errors_then_gives_up(planned, failing_mail, settings, clock):
    """Eager Celery runs the retries at once; the bound comes from the database."""
    settings.REMINDER_MAX_SEND_ATTEMPTS = 4
    mailer = failing_mail(smtplib.SMTPServerDisconnected("gone"))
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    token = services.reminder_claim(slot_id=row.pk)
    tasks.send_reminder.delay(row.pk, str(token))
    row.refresh_from_db()
    assert mailer.calls == 4
    assert (row.status, row.attempts) == ("failed", 4)
    assert row.failure_reason.startswith("Gave up after 4 attempts")


def test_the_task_recovers_when_the_server_comes_back(planned, monkeypatch, clock, mailoutbox):
    from django.core.mail.backends.locmem import EmailBackend

    real = EmailBackend.send_messages
    failures = iter([smtplib.SMTPServerDisconnected("gone"), None])

    def flaky(self, messages):
        error = next(failures)
        if error:
            raise error
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", flaky)
    clock(SLOT_1_DUE)
    tasks.dispatch_due_reminders.delay()
    row = slot(planned, 1)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(mailoutbox) == 1


def test_the_periodic_tasks_plan_dispatch_and_send(make_patient_on_program, clock, mailoutbox):
    clock(EARLY)
    patient = make_patient_on_program(sessions_per_day=6)
    tasks.plan_reminders.delay()
    assert ReminderSlot.objects.filter(patient=patient, status="planned").count() == 12
    for due in (SLOT_1_DUE, utc(2026, 6, 10, 9, 30), SLOT_3_DUE):
        clock(due + dt.timedelta(seconds=30))
        tasks.dispatch_due_reminders.delay()
        tasks.dispatch_due_reminders.delay()  # a second sweep finds nothing more
    assert [m.subject[:20] for m in mailoutbox] == [
        "Session 1 of 6 today",
        "Session 2 of 6 today",
        "Session 3 of 6 today",
    ]


# --- recovery ----------------------------------------------------------------------------


def test_recovery_releases_only_slots_sending_longer_than_the_timeout(planned, settings, clock):
    settings.REMINDER_SENDING_TIMEOUT = 600
    clock(SLOT_1_DUE)
    stale = slot(planned, 1)
    services.reminder_claim(slot_id=stale.pk)
    clock(SLOT_1_DUE + dt.timedelta(minutes=9))
    assert services.reminder_recover_stuck() == []
    clock(SLOT_1_DUE + dt.timedelta(minutes=10, seconds=1))
    assert services.reminder_recover_stuck() == [stale.pk]
    stale.refresh_from_db()
    assert (stale.status, stale.claim_token, stale.claimed_at) == ("planned", None, None)


def test_a_recovered_slot_is_sent_once_and_the_old_task_does_nothing(
    planned, settings, clock, mailoutbox
):
    settings.REMINDER_SENDING_TIMEOUT = 600
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    lost_token = services.reminder_claim(slot_id=row.pk)  # its worker dies before sending
    clock(SLOT_1_DUE + dt.timedelta(minutes=11))
    tasks.recover_stuck_sending.delay()  # releases and dispatches again (eager: sends)
    row.refresh_from_db()
    assert row.status == "sent"
    assert len(mailoutbox) == 1
    # The lost task's message turns up after all (visibility timeout).
    late = services.reminder_send(slot_id=row.pk, claim_token=lost_token)
    assert late.status == "not_claimed"
    assert len(mailoutbox) == 1


def test_an_attempt_renews_its_lease_so_recovery_leaves_it_alone(planned, settings, clock):
    settings.REMINDER_SENDING_TIMEOUT = 600
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    token = services.reminder_claim(slot_id=row.pk)
    # The send task ran late (queue backlog), but it starts before the timeout.
    clock(SLOT_1_DUE + dt.timedelta(minutes=9))
    row.refresh_from_db()
    services.ReminderSlot.objects.filter(pk=row.pk).update(claimed_at=SLOT_1_DUE)
    started = services.ReminderSlot.objects.filter(pk=row.pk, claim_token=token)
    started.update(claimed_at=SLOT_1_DUE + dt.timedelta(minutes=9))  # as reminder_send does
    clock(SLOT_1_DUE + dt.timedelta(minutes=11))
    assert services.reminder_recover_stuck() == []


def test_a_task_redelivered_after_every_attempt_was_killed_gives_up(
    planned, settings, clock, mailoutbox
):
    """A message that keeps killing its worker (hard time limit) must not loop for ever."""
    settings.REMINDER_MAX_SEND_ATTEMPTS = 3
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    token = services.reminder_claim(slot_id=row.pk)
    ReminderSlot.objects.filter(pk=row.pk).update(attempts=3)  # three attempts never returned
    outcome = services.reminder_send(slot_id=row.pk, claim_token=token)
    assert outcome.status == "failed"
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.failure_reason == "Gave up after 3 attempts that did not finish."
    assert mailoutbox == []


def test_recovery_gives_up_after_the_attempt_bound(planned, settings, clock):
    settings.REMINDER_SENDING_TIMEOUT = 600
    settings.REMINDER_MAX_SEND_ATTEMPTS = 3
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    services.reminder_claim(slot_id=row.pk)
    ReminderSlot.objects.filter(pk=row.pk).update(attempts=3)
    clock(SLOT_1_DUE + dt.timedelta(minutes=11))
    assert services.reminder_recover_stuck() == []
    row.refresh_from_db()
    assert row.status == "failed"
    assert "Gave up after 3 attempts" in row.failure_reason


def test_the_duplicate_window_repeats_the_same_message_id(
    planned, settings, clock, mailoutbox, monkeypatch
):
    """The one known window: the server accepted the mail, then the worker died
    before the row said "sent". Recovery sends it again, with the same
    Message-ID, so the two are recognisably one reminder."""
    settings.REMINDER_SENDING_TIMEOUT = 600
    clock(SLOT_1_DUE)
    row = slot(planned, 1)
    token = services.reminder_claim(slot_id=row.pk)
    real_mark_sent = services._mark_sent

    def die_before_marking_sent(marker, slot_id, message_id):
        raise SystemExit("worker killed")

    monkeypatch.setattr(services, "_mark_sent", die_before_marking_sent)
    with pytest.raises(SystemExit):
        services.reminder_send(slot_id=row.pk, claim_token=token)
    monkeypatch.setattr(services, "_mark_sent", real_mark_sent)
    assert slot(planned, 1).status == "sending"
    clock(SLOT_1_DUE + dt.timedelta(minutes=11))
    tasks.recover_stuck_sending.delay()
    assert slot(planned, 1).status == "sent"
    assert len(mailoutbox) == 2
    ids = {message.message()["Message-ID"] for message in mailoutbox}
    assert ids == {f"<reminder-{row.public_id}@127.0.0.1>"}
