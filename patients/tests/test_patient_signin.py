"""Signing in with an emailed link (and a password), sessions, the welcome email."""
# ruff: noqa: F811  (the shared fixtures are imported by name, then requested by name)

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from patients import services
from patients.models import LoginLink, SignInRequest
from symptoms.tests.fixtures import assigned_patient, patient_client  # noqa: F401

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^\s\"<>]+/signin/link/([A-Za-z0-9_\-]+)/")


def request_link(client, email, **extra):
    return client.post(reverse("patients:signin"), {"email": email, **extra}, **{})


def token_from(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    html = message.alternatives[0].content
    assert match.group(0) in html  # same link in the HTML part
    return match.group(1)


def test_the_link_is_emailed_stored_hashed_and_signs_in_once(
    client, assigned_patient, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = request_link(client, "PAT@patients.test")
    assert response["Location"] == reverse("patients:signin_sent")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["pat@patients.test"]
    assert "15 minutes" in message.body
    token = token_from(message)
    link = LoginLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in link.token_hash
    assert link.expires_at - link.created_at <= dt.timedelta(minutes=15)
    assert link.requested_ip == "127.0.0.1"

    url = reverse("patients:signin_link", args=[token])
    # Opening the link (a person, or a mail scanner) only shows a button.
    page = client.get(url)
    assert page.status_code == 200 and "Sign in" in page.content.decode()
    assert "_auth_user_id" not in client.session
    LoginLink.objects.get(used_at__isnull=True)

    response = client.post(url)
    assert response["Location"] == reverse("patients:today")
    assert client.get(reverse("patients:today")).status_code == 200
    # Single use.
    other = client.__class__()
    assert other.post(url).status_code == 410
    assert other.get(url).status_code == 410


def test_an_expired_link_does_not_sign_in(client, assigned_patient):
    issued = services.login_link_create(user=assigned_patient.user)
    url = reverse("patients:signin_link", args=[issued.token])
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        response = client.post(url)
    assert response.status_code == 410
    assert "no longer works" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_made_up_token_is_refused(client):
    assert client.post(reverse("patients:signin_link", args=["nope"])).status_code == 410


def test_an_unknown_address_gets_the_same_answer_and_no_email(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = request_link(client, "nobody@example.test")
    assert response["Location"] == reverse("patients:signin_sent")
    assert mailoutbox == []
    assert not LoginLink.objects.exists()
    assert SignInRequest.objects.count() == 1


def test_requests_are_rate_limited_per_address(client, assigned_patient, mailoutbox):
    for _ in range(services.SIGNIN_LIMIT_PER_EMAIL):
        assert request_link(client, assigned_patient.user.email).status_code == 302
    response = request_link(client, assigned_patient.user.email)
    assert response.status_code == 429
    assert "wait 15 minutes" in response.content.decode()
    # The same for an address with no account: nothing to tell them apart.
    for _ in range(services.SIGNIN_LIMIT_PER_EMAIL):
        request_link(client, "ghost@example.test", REMOTE_ADDR="10.0.0.9")
    assert request_link(client, "ghost@example.test").status_code == 429
    # After the window, it works again.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        assert request_link(client, assigned_patient.user.email).status_code == 302


def test_requests_are_rate_limited_per_ip(client):
    for number in range(services.SIGNIN_LIMIT_PER_IP):
        assert request_link(client, f"person{number}@example.test").status_code == 302
    assert request_link(client, "fresh@example.test").status_code == 429
    other_ip = client.post(
        reverse("patients:signin"), {"email": "fresh@example.test"}, REMOTE_ADDR="192.0.2.7"
    )
    assert other_ip.status_code == 302


def test_the_link_brings_the_patient_back_to_where_they_were_going(
    client, assigned_patient, mailoutbox, django_capture_on_commit_callbacks
):
    target = reverse("patients:log_session") + "?source=email"
    response = client.get(target)
    signin_url = response["Location"]
    assert signin_url.startswith(reverse("patients:signin"))
    page = client.get(signin_url)
    next_value = page.context["form"].initial["next"]
    assert next_value == target
    with django_capture_on_commit_callbacks(execute=True):
        request_link(client, assigned_patient.user.email, next=next_value)
    token = token_from(mailoutbox[0])
    response = client.post(reverse("patients:signin_link", args=[token]))
    assert response["Location"] == target
    page = client.get(target)
    assert page.context["form"].initial["source"] == "email"


def test_next_cannot_send_anyone_elsewhere(
    client, assigned_patient, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request_link(client, assigned_patient.user.email, next="https://evil.example/")
    token = token_from(mailoutbox[0])
    response = client.post(reverse("patients:signin_link", args=[token]))
    assert response["Location"] == reverse("patients:today")


def test_sessions_last_30_days_and_are_renewed_on_use(patient_client, assigned_patient):
    import datetime as dt

    import time_machine

    assert settings.SESSION_COOKIE_AGE >= 30 * 24 * 3600
    start = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        patient_client.force_login(assigned_patient.user)
        first = patient_client.get(reverse("patients:today"))
        cookie = first.cookies[settings.SESSION_COOKIE_NAME]
        assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
    with time_machine.travel(start + dt.timedelta(hours=3), tick=False):
        # Renewed at most once a day: no session write for this visit.
        assert (
            settings.SESSION_COOKIE_NAME
            not in patient_client.get(reverse("patients:today")).cookies
        )
    with time_machine.travel(start + dt.timedelta(days=20), tick=False):
        later = patient_client.get(reverse("patients:today"))
        assert later.status_code == 200
        assert int(later.cookies[settings.SESSION_COOKIE_NAME]["max-age"]) == (
            settings.SESSION_COOKIE_AGE
        )
    with time_machine.travel(start + dt.timedelta(days=45), tick=False):
        # 25 days after the last renewal: still signed in.
        assert patient_client.get(reverse("patients:today")).status_code == 200


def test_a_new_patient_gets_a_welcome_email_with_a_sign_in_link(
    client, therapist, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        patient = services.patient_create(
            email="new@patients.test", full_name="Nia New", therapist=therapist
        )
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new@patients.test"]
    assert "Welcome" in message.subject
    assert "Tess Therapist" in message.body
    assert message.alternatives[0].mimetype == "text/html"
    assert "Tess Therapist" in message.alternatives[0].content
    token = token_from(message)
    response = client.post(reverse("patients:signin_link", args=[token]))
    assert response["Location"] == reverse("patients:today")
    assert client.get(reverse("patients:today")).context["patient"] == patient


def test_no_welcome_email_when_creating_the_patient_fails(
    therapist, mailoutbox, django_capture_on_commit_callbacks
):
    services.patient_create(email="dup@patients.test", full_name="A", therapist=therapist)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception):  # noqa: B017
        services.patient_create(email="dup@patients.test", full_name="B", therapist=therapist)
    assert mailoutbox == []


def test_staff_signing_in_by_link_go_to_the_admin(client, therapist):
    issued = services.login_link_create(user=therapist)
    response = client.post(reverse("patients:signin_link", args=[issued.token]))
    assert response["Location"] == reverse("admin:index")


def test_sign_in_pages_render_and_refuse_other_methods(client):
    for name in ("patients:signin", "patients:signin_sent", "patients:signin_password"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert 'inputmode="email"' in response.content.decode() or name.endswith("sent")
    assert client.put(reverse("patients:signin")).status_code == 405
    assert client.post(reverse("patients:signin_sent")).status_code == 405
    fragment = client.get(reverse("patients:signin"), headers={"HX-Request": "true"})
    assert "<html" not in fragment.content.decode()


def test_password_sign_in_is_throttled_after_failures(client, assigned_patient):
    url = reverse("patients:signin_password")
    for _ in range(settings.SIGN_IN_THROTTLE_PER_ACCOUNT):
        client.post(url, {"username": assigned_patient.user.email, "password": "wrong"})
    response = client.post(url, {"username": assigned_patient.user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()


def test_a_therapist_creating_a_patient_in_the_admin_sends_the_welcome(
    client, therapist, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(therapist)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:patients_patient_add"),
            {
                "email": "maria@example.org",
                "full_name": "Maria Lopez",
                "therapist": therapist.pk,
                "timezone": "Europe/Madrid",
                "wake_time": "08:00",
                "sleep_time": "22:00",
                "spinal_stenosis": "none",
            },
        )
    assert response.status_code == 302
    welcome = [m for m in mailoutbox if m.to == ["maria@example.org"]]
    assert len(welcome) == 1 and LINK.search(welcome[0].body)


def test_a_signed_in_patient_skips_the_sign_in_page(patient_client):
    assert patient_client.get(reverse("patients:signin"))["Location"] == reverse("patients:today")
    target = reverse("patients:log_session") + "?source=email"
    response = patient_client.get(reverse("patients:signin"), {"next": target})
    assert response["Location"] == target


def test_password_sign_in_also_goes_back_to_next(client, assigned_patient):
    assigned_patient.user.set_password("a-long-password-123")
    assigned_patient.user.save()
    target = reverse("patients:log_session") + "?source=email"
    page = client.get(reverse("patients:signin_password"), {"next": target})
    assert f'value="{target}"' in page.content.decode().replace("&amp;", "&")
    response = client.post(
        reverse("patients:signin_password"),
        {
            "username": assigned_patient.user.email,
            "password": "a-long-password-123",
            "next": target,
        },
    )
    assert response["Location"] == target
