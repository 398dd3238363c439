"""What the patient receives: both parts, the session number, links and headers."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from email import message_from_bytes, policy

import pytest
import time_machine
from django.urls import reverse

from programs.selectors import template_phase_exercises
from reminders import services
from reminders.models import ReminderSlot
from reminders.tests.conftest import utc
from reminders.tokens import unsubscribe_token_read

pytestmark = pytest.mark.django_db

SLOT_3_DUE = utc(2026, 6, 10, 11, 50)  # 12:50 in London


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://coach.example.org"
    settings.REMINDER_MESSAGE_ID_DOMAIN = "coach.example.org"
    settings.DEFAULT_FROM_EMAIL = "Back Exercise Coach <reminders@coach.example.org>"
    settings.REMINDER_REPLY_TO = "Tess at the clinic <tess@clinic.example.org>"
    return settings


@pytest.fixture
def sent(make_patient_on_program, site, mailoutbox):
    """Session 3 of 6 for Pat, who has logged one session today."""
    with time_machine.travel(utc(2026, 6, 10, 5, 0), tick=False):
        patient = make_patient_on_program(
            sessions_per_day=6, full_name="Pat Patient", email="pat@patients.test"
        )
        services.reminder_plan_patient(patient=patient)
        from symptoms.services import session_log

        session_log(
            patient=patient, idempotency_key=uuid.uuid4(), assignment=patient.assignments.get()
        )
    row = ReminderSlot.objects.get(patient=patient, local_date=dt.date(2026, 6, 10), slot_number=3)
    with time_machine.travel(SLOT_3_DUE, tick=False):
        token = services.reminder_claim(slot_id=row.pk)
        assert services.reminder_send(slot_id=row.pk, claim_token=token).status == "sent"
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    parsed = message_from_bytes(email.message().as_bytes(), policy=policy.default)
    return patient, row, email, parsed


def test_subject_and_both_parts_say_which_session_it_is(sent):
    _patient, _row, email, parsed = sent
    assert email.subject == "Session 3 of 6 today: your back exercises"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "session 3 of 6 today" in text
    assert "Session 3 of 6 today" in html
    assert "Hello Pat," in text and "Hello Pat," in html
    assert "logged 1 session today so far" in text
    assert "logged 1 session today so far" in html


def test_the_exercises_of_the_phase_are_listed(sent, extension_template):
    _patient, _row, _email, parsed = sent
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    exercises = template_phase_exercises(extension_template, "acute")
    assert exercises
    for item in exercises:
        assert item.exercise.name in text
        assert item.exercise.name in html
    assert "(acute phase)" in text
    # Plain words: "once", "10 times", minutes for long holds.
    assert "Lying on your stomach: once, hold 2 minutes" in text
    assert "Propped on your elbows: 10 times, hold 10 seconds" in text


@pytest.mark.parametrize(
    ("reps", "sets", "hold", "expected"),
    [
        (10, 1, 10, "X: 10 times, hold 10 seconds"),
        (1, 1, 120, "X: once, hold 2 minutes"),
        (10, 2, 0, "X: 2 sets of 10 times"),
        (5, 1, 60, "X: 5 times, hold 1 minute"),
        (3, 1, 90, "X: 3 times, hold 90 seconds"),
    ],
)
def test_exercise_lines_read_plainly(reps, sets, hold, expected):
    from programs.models import Exercise, PrescribedExercise
    from reminders.emails import exercise_line

    item = PrescribedExercise(
        exercise=Exercise(name="X"), reps=reps, sets=sets, hold_seconds=hold, rest_seconds=0
    )
    assert exercise_line(item) == expected


def test_the_one_tap_link_opens_the_log_form_from_email(sent, client):
    patient, _row, _email, parsed = sent
    log_url = "https://coach.example.org" + reverse("patients:log_session") + "?source=email"
    assert log_url in parsed.get_body(("plain",)).get_content()
    assert f'href="{log_url}"' in parsed.get_body(("html",)).get_content()
    client.force_login(patient.user)
    page = client.get(reverse("patients:log_session") + "?source=email")
    assert page.status_code == 200
    assert page.context["form"].initial["source"] == "email"


def test_unsubscribe_headers_follow_rfc_8058(sent):
    patient, _row, _email, parsed = sent
    header = parsed["List-Unsubscribe"]
    match = re.fullmatch(r"<(https://coach\.example\.org/reminders/unsubscribe/([^/]+)/)>", header)
    assert match, header
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_token_read(match.group(2)) == patient.public_id
    # The same link is in both parts for people to click.
    assert match.group(1) in parsed.get_body(("plain",)).get_content()
    assert match.group(1) in parsed.get_body(("html",)).get_content()


def test_url_and_id_headers_go_out_verbatim_on_the_wire(sent):
    """Not RFC 2047-encoded (forbidden there), however long the signed URL is."""
    import email.policy

    _patient, row, email_message, parsed = sent
    raw = email_message.message(policy=email.policy.SMTP).as_bytes()
    header = f"List-Unsubscribe: {parsed['List-Unsubscribe']}\r\n".encode()
    assert header in raw
    assert f"Message-ID: <reminder-{row.public_id}@coach.example.org>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0]


def test_message_id_from_and_reply_to(sent):
    _patient, row, _email, parsed = sent
    assert parsed["Message-ID"] == f"<reminder-{row.public_id}@coach.example.org>"
    row.refresh_from_db()
    assert row.message_id == parsed["Message-ID"]
    assert parsed["From"] == "Back Exercise Coach <reminders@coach.example.org>"
    assert parsed["Reply-To"] == "Tess at the clinic <tess@clinic.example.org>"
    assert parsed["To"] == "pat@patients.test"
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_no_reply_to_unless_configured(make_patient_on_program, site, mailoutbox):
    site.REMINDER_REPLY_TO = ""
    with time_machine.travel(utc(2026, 6, 10, 5, 0), tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        services.reminder_plan_patient(patient=patient)
    row = ReminderSlot.objects.filter(patient=patient).order_by("due_at").first()
    with time_machine.travel(row.due_at, tick=False):
        token = services.reminder_claim(slot_id=row.pk)
        services.reminder_send(slot_id=row.pk, claim_token=token)
    assert "Reply-To" not in mailoutbox[0].message()
    assert mailoutbox[0].body.startswith("Hello Pat,")


def test_the_message_id_is_the_same_for_every_attempt_and_differs_between_slots(sent):
    from reminders.emails import message_id_for

    patient, row, _email, _parsed = sent
    again = ReminderSlot.objects.get(pk=row.pk)
    assert message_id_for(again) == message_id_for(row)
    other = ReminderSlot.objects.filter(patient=patient).exclude(pk=row.pk).first()
    assert message_id_for(other) != message_id_for(row)
