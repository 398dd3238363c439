"""One-click unsubscribe: GET asks, POST (RFC 8058) stops; bad tokens change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from reminders import services
from reminders.models import ReminderSlot
from reminders.tests.conftest import utc
from reminders.tokens import UNSUBSCRIBE_SALT, unsubscribe_token_make

pytestmark = pytest.mark.django_db

NOW = utc(2026, 6, 10, 5, 0)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def subscribed(make_patient_on_program):
    patient = make_patient_on_program(sessions_per_day=6, email="pat@patients.test")
    services.reminder_plan_patient(patient=patient)
    return patient


@pytest.fixture
def csrf_client():
    """Like a mail client's one-click POST: CSRF checks on, no cookies, no session."""
    return Client(enforce_csrf_checks=True)


def url_for(patient) -> str:
    return reverse(
        "reminders:unsubscribe",
        args=[unsubscribe_token_make(patient_public_id=patient.public_id)],
    )


def planned_count(patient) -> int:
    return ReminderSlot.objects.filter(patient=patient, status="planned").count()


def test_get_asks_and_changes_nothing(client, subscribed):
    response = client.get(url_for(subscribed))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Stop the exercise reminder emails to pat@patients.test?" in body
    assert '<form method="post"' in body
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is True
    assert planned_count(subscribed) == 12


def test_one_click_post_unsubscribes_without_csrf_token_or_session(
    csrf_client, subscribed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_client.post(
            url_for(subscribed),
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    assert response.status_code == 200
    assert "Reminder emails stopped" in response.content.decode()
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is False
    assert subscribed.reminder_consent_at is None
    # The re-plan cancelled every future reminder.
    assert planned_count(subscribed) == 0
    assert set(
        ReminderSlot.objects.filter(patient=subscribed).values_list("skip_reason", flat=True)
    ) == {"schedule_changed"}


def test_posting_again_is_harmless(csrf_client, subscribed):
    url = url_for(subscribed)
    assert csrf_client.post(url).status_code == 200
    assert csrf_client.post(url).status_code == 200
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is False
    assert "already switched off" in csrf_client.get(url).content.decode()


def test_the_link_in_the_email_headers_works(csrf_client, subscribed, mailoutbox, settings):
    row = ReminderSlot.objects.filter(patient=subscribed).order_by("due_at").first()
    with time_machine.travel(row.due_at, tick=False):
        token = services.reminder_claim(slot_id=row.pk)
        services.reminder_send(slot_id=row.pk, claim_token=token)
    header = mailoutbox[0].message()["List-Unsubscribe"]
    path = header.strip("<>").removeprefix(settings.SITE_URL)
    assert csrf_client.post(path).status_code == 200
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is False


def _tampered(patient) -> str:
    token = unsubscribe_token_make(patient_public_id=patient.public_id)
    value, rest = token.split(":", 1)
    return value[:-2] + ("AA" if value[-2:] != "AA" else "BB") + ":" + rest


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda p: "not-a-token", id="garbage"),
        pytest.param(_tampered, id="tampered"),
        pytest.param(
            lambda p: signing.dumps(p.public_id.hex, salt="some.other.salt"), id="wrong-salt"
        ),
        pytest.param(lambda p: signing.dumps("not-a-uuid", salt=UNSUBSCRIBE_SALT), id="not-uuid"),
    ],
)
def test_a_bad_token_gets_a_clear_400_and_changes_nothing(csrf_client, subscribed, make_token):
    url = reverse("reminders:unsubscribe", args=[make_token(subscribed)])
    for response in (csrf_client.get(url), csrf_client.post(url)):
        assert response.status_code == 400
        assert "This link does not work" in response.content.decode()
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is True
    assert planned_count(subscribed) == 12


def test_an_expired_token_gets_a_400(csrf_client, subscribed, settings):
    settings.REMINDER_UNSUBSCRIBE_MAX_AGE_DAYS = 30
    url = url_for(subscribed)
    with time_machine.travel(NOW + dt.timedelta(days=31), tick=False):
        response = csrf_client.post(url)
    assert response.status_code == 400
    subscribed.refresh_from_db()
    assert subscribed.reminders_enabled is True


def test_a_token_for_a_deleted_patient_gets_a_400(csrf_client, subscribed):
    url = url_for(subscribed)
    subscribed.user.delete()
    assert csrf_client.post(url).status_code == 400


def test_other_methods_are_405(client, subscribed):
    url = url_for(subscribed)
    assert client.put(url).status_code == 405
    assert client.delete(url).status_code == 405


def test_only_that_patient_is_unsubscribed(csrf_client, subscribed, make_patient_on_program):
    neighbour = make_patient_on_program(sessions_per_day=6)
    csrf_client.post(url_for(subscribed))
    neighbour.refresh_from_db()
    assert neighbour.reminders_enabled is True
