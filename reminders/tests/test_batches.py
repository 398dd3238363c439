"""Batches: claimed together, sent over one SMTP connection, each slot settled on its own.

The SMTP tests talk to a real aiosmtpd server in this process (see live.py),
which can refuse given recipients and answer DATA with given codes.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import smtplib
import uuid
from email import message_from_bytes

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Patient
from reminders import services, tasks
from reminders.emails import ReminderComposer, render_body
from reminders.models import ReminderSlot
from reminders.selectors import phase_exercise_lines, reminder_batch_slots
from reminders.tests.conftest import utc
from symptoms import services as symptom_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_retries_run")]

EARLY = utc(2026, 6, 10, 5, 0)  # 06:00 in London (BST)
SLOT_1_DUE = utc(2026, 6, 10, 7, 10)  # 08:10 London: session 1 of 6
SENDING_AT = SLOT_1_DUE + dt.timedelta(seconds=20)
DAY = dt.date(2026, 6, 10)


@pytest.fixture
def patients(make_patient_on_program):
    """``patients(n)``: n London patients (6 a day), planned at 06:00 on 10 June."""

    def make(count: int, **kwargs) -> list[Patient]:
        made = []
        with time_machine.travel(EARLY, tick=False):
            for number in range(count):
                patient = make_patient_on_program(
                    sessions_per_day=6,
                    email=f"batch{number}-{uuid.uuid4().hex[:6]}@patients.test",
                    **kwargs,
                )
                services.reminder_plan_patient(patient=patient)
                made.append(patient)
        return made

    return make


def first_slot(patient) -> ReminderSlot:
    return ReminderSlot.objects.exclude(status="cancelled").get(
        patient=patient, local_date=DAY, slot_number=1
    )


def claim_all(clock) -> tuple[uuid.UUID, list[int]]:
    clock(SENDING_AT)
    token, ids = services.reminder_claim_batch(limit=100)
    assert ids
    return token, ids


@pytest.fixture
def smtp(settings, smtp_sink):
    """Real SMTP, through Django's SMTP backend, to the in-process sink."""
    smtp_sink.reset()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_sink.port, "timeout": 10},
        }
    }
    yield smtp_sink
    smtp_sink.reset()


def statuses(ids) -> dict[int, tuple[str, str]]:
    return {
        row.pk: (row.status, row.skip_reason or row.failure_reason)
        for row in ReminderSlot.objects.filter(pk__in=ids)
    }


# --- claiming in batches ------------------------------------------------------------------


def test_a_batch_claim_takes_due_slots_in_order_under_one_token(patients, clock):
    made = patients(3)
    clock(SENDING_AT)
    token, ids = services.reminder_claim_batch(limit=2)
    due = sorted((first_slot(p) for p in made), key=lambda row: (row.due_at, row.pk))
    assert ids == [due[0].pk, due[1].pk]
    assert {row.claim_token for row in ReminderSlot.objects.filter(pk__in=ids)} == {token}
    # The next claim takes the rest, under a new token; then nothing is left.
    token2, rest = services.reminder_claim_batch(limit=2)
    assert rest == [due[2].pk] and token2 != token
    assert services.reminder_claim_batch(limit=2)[1] == []
    # Later slots of the day are not due yet.
    assert ReminderSlot.objects.filter(status="planned", local_date=DAY).count() == 3 * 5


def test_dispatch_queues_one_task_per_batch(patients, clock):
    patients(5)
    clock(SENDING_AT)
    batches = []
    result = services.reminder_dispatch_due(
        enqueue=lambda ids, token: batches.append((ids, token)), batch_size=2
    )
    assert [len(ids) for ids, _token in batches] == [2, 2, 1]
    assert len({token for _ids, token in batches}) == 3
    assert result.batches == 3 and len(result.claimed) == 5


def test_a_batch_that_cannot_be_queued_is_released_and_the_sweep_stops(patients, clock):
    patients(3)
    clock(SENDING_AT)
    calls = []

    def broker_down(ids, token):
        calls.append(ids)
        raise ConnectionError("broker unreachable")

    result = services.reminder_dispatch_due(enqueue=broker_down, batch_size=2)
    assert len(calls) == 1  # no point trying the next batch
    assert result.released == calls[0] and result.claimed == []
    assert set(ReminderSlot.objects.filter(local_date=DAY).values_list("status", flat=True)) == {
        "planned"
    }


# --- one connection, each slot on its own ----------------------------------------------------


def test_a_batch_goes_out_over_one_smtp_connection(patients, clock, smtp):
    made = patients(4)
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 4}
    assert smtp.handler.sessions == 1
    assert sorted(smtp.message_ids()) == sorted(
        f"<reminder-{first_slot(p).public_id}@127.0.0.1>" for p in made
    )
    for row in ReminderSlot.objects.filter(pk__in=ids):
        assert row.status == "sent" and row.sent_at == SENDING_AT and row.attempts == 1
        assert row.message_id == f"<reminder-{row.public_id}@127.0.0.1>"


def test_one_refused_recipient_fails_alone_and_the_rest_are_sent(patients, clock, smtp):
    made = patients(4)
    refused = made[1]
    smtp.handler.refuse[refused.user.email] = "550 5.1.1 No such user"
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 3, "failed": 1}
    bad = first_slot(refused)
    assert bad.status == "failed" and "550" in bad.failure_reason
    assert "SMTPRecipientsRefused" in bad.failure_reason
    assert {first_slot(p).status for p in made if p != refused} == {"sent"}
    assert len(smtp.received) == 3 and smtp.handler.sessions == 1  # the connection carried on


def test_a_transient_refusal_is_retried_alone_under_the_same_claim(patients, clock, smtp, settings):
    made = patients(3)
    busy = made[2]
    smtp.handler.refuse[busy.user.email] = "450 4.2.1 Mailbox busy"
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 2, "retry": 1}
    assert result.retry_ids == [first_slot(busy).pk]
    assert 30 <= result.retry_in <= 33
    row = first_slot(busy)
    assert (row.status, row.claim_token, row.attempts) == ("sending", token, 1)
    # The retry: only that slot, same token; the server takes it now.
    smtp.handler.refuse.clear()
    again = services.reminder_send_batch(slot_ids=result.retry_ids, claim_token=token)
    assert again.counts() == {"sent": 1}
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp.message_ids()) == len(set(smtp.message_ids())) == 3


def test_the_task_retries_only_the_slots_that_need_it(patients, clock, smtp, settings):
    made = patients(3)
    settings.REMINDER_MAX_SEND_ATTEMPTS = 3
    smtp.handler.refuse[made[0].user.email] = "451 4.3.0 Try again later"
    token, ids = claim_all(clock)
    tasks.send_reminders.delay(ids, str(token))  # eager: its retries run inline
    assert statuses(ids)[first_slot(made[0]).pk][0] == "failed"
    failed = first_slot(made[0])
    assert failed.attempts == 3 and failed.failure_reason.startswith("Gave up after 3 attempts")
    assert [first_slot(p).attempts for p in made[1:]] == [1, 1]
    assert len(smtp.received) == 2


def test_skipped_slots_inside_a_batch_are_settled_and_the_rest_sent(
    patients, clock, smtp, mailoutbox
):
    made = patients(4)
    unsubscribed, done = made[0], made[2]
    Patient.objects.filter(pk=unsubscribed.pk).update(reminders_enabled=False)
    with time_machine.travel(EARLY, tick=False):
        symptom_services.session_log(
            patient=done, idempotency_key=uuid.uuid4(), assignment=done.assignments.get()
        )
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 2, "skipped": 2}
    assert statuses([first_slot(unsubscribed).pk]) == {
        first_slot(unsubscribed).pk: ("skipped", "unsubscribed")
    }
    assert first_slot(done).skip_reason == "already_logged"
    assert {item.rcpt[0] for item in smtp.received} == {made[1].user.email, made[3].user.email}


def test_a_slot_claimed_again_by_someone_else_is_left_alone(patients, clock, smtp, settings):
    """Recovery released one slot of the batch and a new claim holds it now."""
    made = patients(3)
    token, ids = claim_all(clock)
    stolen = first_slot(made[1])
    ReminderSlot.objects.filter(pk=stolen.pk).update(status="planned", claim_token=None)
    new_token = services.reminder_claim(slot_id=stolen.pk)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.outcomes[stolen.pk].status == "not_claimed"
    assert result.counts() == {"sent": 2, "not_claimed": 1}
    stolen.refresh_from_db()
    assert (stolen.status, stolen.claim_token, stolen.attempts) == ("sending", new_token, 0)
    assert made[1].user.email not in {item.rcpt[0] for item in smtp.received}


def test_a_redelivered_batch_sends_nothing_twice(patients, clock, smtp):
    patients(3)
    token, ids = claim_all(clock)
    assert services.reminder_send_batch(slot_ids=ids, claim_token=token).counts() == {"sent": 3}
    again = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert again.counts() == {"not_claimed": 3}
    assert len(smtp.received) == 3


# --- lost connections and the duplicate window ----------------------------------------------


def test_a_dropped_connection_is_opened_again_once(patients, clock, smtp):
    made = patients(4)
    # The server closes the connection instead of accepting the second message.
    smtp.handler.responses.extend([None, "421 4.3.2 Closing connection"])
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 3, "retry": 1}
    assert smtp.handler.sessions == 2
    assert len(smtp.received) == 3
    assert {first_slot(p).status for p in made} == {"sent", "sending"}


def test_when_the_server_is_gone_the_untried_messages_wait_for_the_retry(
    patients, clock, smtp, monkeypatch
):
    made = patients(4)
    smtp.handler.responses.extend([None, "421 4.3.2 Closing connection"])

    def refused(self):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(services._Mailbox, "reopen", refused)
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 1, "retry": 3}
    assert len(smtp.received) == 1 and smtp.handler.data_started == 2  # 3 and 4 never tried
    assert [first_slot(p).status for p in made].count("sending") == 3


def test_losing_the_server_right_after_a_message_still_settles_its_mark(
    patients, clock, smtp, monkeypatch
):
    """The connection drops before the next message reached DATA: the mark of
    the one before is still read back, and the database connection stays usable."""
    made = patients(3)
    smtp.handler.refuse[made[1].user.email] = "421 4.3.2 Closing connection"

    def refused(self):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(services._Mailbox, "reopen", refused)
    token, ids = claim_all(clock)
    ordered = sorted(made, key=lambda p: (first_slot(p).due_at, first_slot(p).pk))
    assert ordered[1] == made[1]
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 1, "retry": 2}
    assert [first_slot(p).status for p in made] == ["sent", "sending", "sending"]
    assert first_slot(made[0]).message_id


def test_a_server_that_cannot_be_reached_leaves_the_whole_batch_for_the_retry(
    patients, clock, settings
):
    from reminders.tests.live import free_port

    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2},
        }
    }
    patients(3)
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"retry": 3}
    assert "ConnectionRefusedError" in result.outcomes[ids[0]].reason
    assert set(statuses(ids).values()) == {("sending", "")}


def test_dying_mid_batch_repeats_at_most_the_one_message_in_flight(
    patients, clock, smtp, settings, monkeypatch
):
    """The duplicate window is one message wide, never the batch.

    The worker dies right after the server accepted the second of four
    messages: the first is marked sent, the second is not (the window), the
    last two were never tried. Recovery sends the last three; only the
    second arrives twice, with the same Message-ID.
    """
    settings.REMINDER_SENDING_TIMEOUT = 600
    made = patients(4)
    token, ids = claim_all(clock)
    real_mark_sent = services._mark_sent
    marks = []

    def dies_at_the_second(marker, slot_id, message_id):
        marks.append(slot_id)
        if len(marks) == 2:
            raise SystemExit("worker killed")
        return real_mark_sent(marker, slot_id, message_id)

    monkeypatch.setattr(services, "_mark_sent", dies_at_the_second)
    with pytest.raises(SystemExit):
        services.reminder_send_batch(slot_ids=ids, claim_token=token)
    monkeypatch.setattr(services, "_mark_sent", real_mark_sent)
    first, second, *rest = ids
    assert statuses(ids)[first][0] == "sent"
    assert [statuses(ids)[pk][0] for pk in (second, *rest)] == ["sending"] * 3
    assert len(smtp.received) == 2

    clock(SENDING_AT + dt.timedelta(minutes=11))
    tasks.recover_stuck_sending.delay()  # releases the three and dispatches them (eager)
    assert {status for status, _reason in statuses(ids).values()} == {"sent"}
    ids_received = smtp.message_ids()
    assert len(ids_received) == 5
    twice = {mid for mid in ids_received if ids_received.count(mid) > 1}
    assert twice == {f"<reminder-{ReminderSlot.objects.get(pk=second).public_id}@127.0.0.1>"}
    assert len(made) == 4


# --- constant reads -----------------------------------------------------------------------


def _queries_for_a_batch(patients, clock, count: int) -> list[str]:
    made = patients(count)
    clock(SENDING_AT)
    token, ids = services.reminder_claim_batch(limit=100)
    assert len(ids) == count
    with CaptureQueriesContext(connection) as captured:
        result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": count}
    ReminderSlot.objects.filter(pk__in=ids).update(status="skipped", skip_reason="paused")
    Patient.objects.filter(pk__in=[p.pk for p in made]).update(reminders_enabled=False)
    return [query["sql"] for query in captured.captured_queries]


def test_a_batch_reads_in_a_constant_number_of_queries(patients, clock, mailoutbox):
    """Whatever the batch size: the same reads, plus one UPDATE per message sent."""
    small = _queries_for_a_batch(patients, clock, 2)
    large = _queries_for_a_batch(patients, clock, 7)

    def marks(queries):
        return [sql for sql in queries if "SET status = " in sql and "sent_at = " in sql]

    assert len(marks(small)) == 2 and len(marks(large)) == 7
    reads_small = [sql for sql in small if sql not in marks(small)]
    reads_large = [sql for sql in large if sql not in marks(large)]
    # Lease and attempt count, the slots with patient/user/assignment, today's
    # session counts, the exercises of the phases.
    assert len(reads_small) == len(reads_large) == 4
    assert len(mailoutbox) == 9


def test_skips_are_settled_in_one_update_per_reason(patients, clock, django_assert_num_queries):
    made = patients(6)
    Patient.objects.filter(pk__in=[p.pk for p in made[:3]]).update(reminders_enabled=False)
    Patient.objects.filter(pk__in=[p.pk for p in made[3:]]).update(reminders_paused_until=DAY)
    token, ids = claim_all(clock)
    # Lease, slots, session counts, one UPDATE per skip reason; nothing to send.
    with django_assert_num_queries(5):
        result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"skipped": 6}


def test_the_batch_read_holds_what_sending_needs(patients, clock):
    made = patients(2, full_name="Ana María")
    token, ids = claim_all(clock)
    rows = reminder_batch_slots(slot_ids=ids, claim_token=token)
    assert [row.pk for row in rows] == ids
    row = rows[0]
    patient = Patient.objects.select_related("user").get(pk=row.patient_id)
    assert row.patient.user.email == patient.user.email
    assert row.patient.user.get_short_name() == patient.user.get_short_name() == "Ana"
    assert row.patient.public_id == patient.public_id
    assert row.assignment.status == "active" and row.assignment.current_phase == "acute"
    assert len(made) == 2
    assert reminder_batch_slots(slot_ids=ids, claim_token=uuid.uuid4()) == []


# --- the email itself: the fast paths match the reference ones ---------------------------------


NAMES = ["Pat Patient", "", "José Álvarez", "O'Brien & <Sons>"]


@pytest.mark.parametrize("full_name", NAMES)
@pytest.mark.parametrize("logged", [0, 1, 3])
def test_skeleton_rendering_equals_a_full_render(full_name, logged, settings):
    from django.template.loader import render_to_string

    from reminders.emails import HTML_TEMPLATE, TEXT_TEMPLATE

    context = {
        "first_name": full_name.split(" ")[0],
        "slot_number": 2,
        "slots_in_day": 6,
        "phase_label": "Acute",
        "exercises": ("Lying on your stomach: once, hold 2 minutes", "A & B <c>: 10 times"),
        "logged_today": logged,
        "log_url": "https://coach.example.org/log/?source=email&x=<y>",
        "unsubscribe_url": "https://coach.example.org/reminders/unsubscribe/Ijk:1x:ab-_/",
        "site_url": "https://coach.example.org",
    }
    for template in (TEXT_TEMPLATE, HTML_TEMPLATE):
        assert render_body(template, context) == render_to_string(template, context)


def _parsed(raw: bytes):
    return message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("full_name", NAMES)
@pytest.mark.parametrize("reply_to", ["", "Tess at the clinic <tess@clinic.example.org>"])
def test_wire_bytes_say_what_djangos_message_says(patients, clock, settings, full_name, reply_to):
    settings.SITE_URL = "https://coach.example.org"
    settings.REMINDER_MESSAGE_ID_DOMAIN = "coach.example.org"
    settings.DEFAULT_FROM_EMAIL = "Back Exercise Coach <reminders@coach.example.org>"
    settings.REMINDER_REPLY_TO = reply_to
    (patient,) = patients(1, full_name=full_name)
    token, ids = claim_all(clock)
    (slot,) = reminder_batch_slots(slot_ids=ids, claim_token=token)
    lines = phase_exercise_lines(
        phases={(slot.assignment.template_id, slot.assignment.current_phase)}
    )
    composer = ReminderComposer()
    parts = composer.compose(
        slot=slot,
        logged_today=1,
        exercise_lines=lines[(slot.assignment.template_id, slot.assignment.current_phase)],
    )
    fast = _parsed(composer.wire_bytes(parts))
    reference = _parsed(composer.message(parts).message(policy=email.policy.SMTP).as_bytes())
    skip = {"date", "content-type"}
    assert [(k, v) for k, v in fast.items() if k.lower() not in skip] == [
        (k, v) for k, v in reference.items() if k.lower() not in skip
    ]
    assert fast.get_content_type() == reference.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        assert fast.get_body((kind,)).get_content() == reference.get_body((kind,)).get_content()
        assert fast.get_body((kind,))["Content-Type"] == reference.get_body((kind,))["Content-Type"]
    assert fast["To"] == patient.user.email
    assert fast["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw = composer.wire_bytes(parts)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_an_address_that_needs_idna_goes_the_reference_way(patients, clock, smtp):
    (patient,) = patients(1)
    type(patient.user).objects.filter(pk=patient.user.pk).update(email="pat@exämple.org")
    token, ids = claim_all(clock)
    (slot,) = reminder_batch_slots(slot_ids=ids, claim_token=token)
    assert (
        ReminderComposer().wire_bytes(
            ReminderComposer().compose(slot=slot, logged_today=0, exercise_lines=())
        )
        is None
    )
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"sent": 1}
    assert smtp.received[0].rcpt == ["pat@xn--exmple-cua.org"]


def test_an_unusable_address_fails_only_its_own_slot(patients, clock, smtp):
    made = patients(2)
    user = made[0].user
    type(user).objects.filter(pk=user.pk).update(email="pätient@example.org")
    token, ids = claim_all(clock)
    result = services.reminder_send_batch(slot_ids=ids, claim_token=token)
    assert result.counts() == {"failed": 1, "sent": 1}
    assert "ValueError" in first_slot(made[0]).failure_reason


def test_the_batch_signer_makes_djangos_tokens(settings):
    from reminders.tokens import (
        UnsubscribeTokenMaker,
        unsubscribe_token_make,
        unsubscribe_token_read,
    )

    public_id = uuid.uuid4()
    with time_machine.travel(SENDING_AT, tick=False):
        fast = UnsubscribeTokenMaker().make(patient_public_id=public_id)
        assert fast == unsubscribe_token_make(patient_public_id=public_id)
        assert unsubscribe_token_read(fast) == public_id


def test_the_cached_unsubscribe_link_is_what_reverse_gives(patients, clock, settings):
    from reminders.emails import unsubscribe_url_for

    settings.SITE_URL = "https://coach.example.org"
    (patient,) = patients(1)
    with time_machine.travel(SENDING_AT, tick=False):
        url = unsubscribe_url_for(first_slot(patient))
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert url == settings.SITE_URL + reverse("reminders:unsubscribe", args=[token])


def test_smtp_transaction_matches_smtplib_on_errors(smtp):
    """The plain-address transaction raises what smtplib.sendmail raises."""
    smtp.handler.refuse["nobody@patients.test"] = "550 5.1.1 No such user"
    smtp.handler.responses.append("554 5.6.0 Rejected")
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as conn:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            services.smtp_transaction(conn, "a@b.test", "nobody@patients.test", b"x\r\n")
        assert refused.value.recipients == {"nobody@patients.test": (550, b"5.1.1 No such user")}
        with pytest.raises(smtplib.SMTPDataError) as rejected:
            services.smtp_transaction(conn, "a@b.test", "pat@patients.test", b"x\r\n")
        assert rejected.value.smtp_code == 554
        # The connection is still good; a leading dot is escaped on the wire.
        services.smtp_transaction(
            conn, "a@b.test", "pat@patients.test", b"Subject: t\r\n\r\nA\r\n.B\r\n"
        )
    assert smtp.received[-1].message.get_content().replace("\r\n", "\n") == "A\n.B\n"


@pytest.mark.parametrize(
    "data",
    [b"", b".", b".A\r\n", b"A.B\r\n", b"A\r\n.B\r\n", b"A\r\n\r\n.", b"A\n.B", b"A. B\r\n"],
)
def test_the_cheap_dot_check_finds_exactly_what_dot_stuffing_would_change(data):
    assert services._has_leading_dot(data) == bool(services._LEADING_DOT.search(data))


# --- the lease renewal stays out of the indexes ---------------------------------------------


def test_no_index_reads_the_columns_a_lease_renewal_writes():
    """Renewing a claim (claimed_at, attempts, updated_at) must leave every index alone.

    Then PostgreSQL can update the row in place (HOT) for every slot of every batch.
    """
    lease = {"claimed_at", "attempts", "updated_at"}
    for index in ReminderSlot._meta.indexes:
        assert not lease & set(index.fields), index.name
        assert not lease & set(str(index.condition).replace("'", " ").split()), index.name
    for constraint in ReminderSlot._meta.constraints:
        if hasattr(constraint, "fields"):  # unique constraints are indexes too
            assert not lease & set(constraint.fields), constraint.name
    for field in ReminderSlot._meta.concrete_fields:
        if field.attname in lease:
            assert not (field.db_index or field.unique), field.name


@pytest.mark.postgres
def test_the_slot_table_leaves_room_on_each_page_for_renewals():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", [ReminderSlot._meta.db_table]
        )
        assert "fillfactor=90" in (cursor.fetchone()[0] or [])
