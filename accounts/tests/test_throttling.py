import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from accounts.models import SignInFailure
from tests.factories import PASSWORD

LOGIN = "/admin/login/"


def attempt(client, email, password, ip="198.51.100.7"):
    return client.post(
        LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )


def test_five_failures_pause_password_sign_in_then_it_recovers(client, therapist, settings):
    start = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(settings.SIGN_IN_THROTTLE_PER_ACCOUNT):
            assert attempt(client, therapist.email, "nope").status_code == 200
        blocked = attempt(client, therapist.email, PASSWORD)
        assert blocked.status_code == 200
        assert "Too many failed sign-ins" in blocked.content.decode()
        assert "15 minutes" in blocked.content.decode()
        assert "_auth_user_id" not in client.session
    with time_machine.travel(start + dt.timedelta(minutes=16), tick=False):
        ok = attempt(client, therapist.email, PASSWORD)
        assert ok.status_code == 302
        assert SignInFailure.objects.filter(email=therapist.email).count() == 0


def test_account_throttle_is_case_insensitive(client, therapist, settings):
    for _ in range(settings.SIGN_IN_THROTTLE_PER_ACCOUNT):
        attempt(client, therapist.email.upper(), "nope")
    assert "Too many" in attempt(client, therapist.email, PASSWORD).content.decode()


def test_one_ip_guessing_many_accounts_is_paused(client, therapist, settings):
    for n in range(settings.SIGN_IN_THROTTLE_PER_IP):
        attempt(client, f"guess{n}@example.org", "nope", ip="192.0.2.1")
    assert "Too many" in attempt(client, therapist.email, PASSWORD, ip="192.0.2.1").content.decode()
    # The therapist, from their own address, is not affected by the IP pause.
    assert attempt(client, therapist.email, PASSWORD, ip="192.0.2.99").status_code == 302


def test_failures_below_the_limit_do_not_block(client, therapist, settings):
    for _ in range(settings.SIGN_IN_THROTTLE_PER_ACCOUNT - 1):
        attempt(client, therapist.email, "nope")
    assert attempt(client, therapist.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_unknown_accounts_get_the_same_message_as_wrong_passwords(client, therapist):
    unknown = attempt(client, "nobody@example.org", "x").content.decode()
    wrong = attempt(client, therapist.email, "x").content.decode()
    marker = "Please enter the correct email address and password"
    assert marker in unknown and marker in wrong
    assert reverse("admin:login") == LOGIN
