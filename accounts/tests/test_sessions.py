"""Sessions in the database, read in one query with their user (accounts/sessions.py)."""

from __future__ import annotations

import datetime as dt
from importlib import import_module

import pytest
from django.conf import settings
from django.core.signals import request_started
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts import sessions
from accounts.backends import EmailBackend
from accounts.models import Session
from reminders.tests.live import free_port
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SETTINGS_PAGE = reverse("patients:settings")


def store_class():
    return import_module(settings.SESSION_ENGINE).SessionStore


def signed_in_store(user):
    store = store_class()()
    store["_auth_user_id"] = str(user.pk)
    store.save()
    return store_class()(store.session_key)


def test_a_signed_in_page_reads_session_user_and_profile_in_one_query(client, patient):
    client.force_login(patient.user)
    client.get(SETTINGS_PAGE)  # the daily renewal, if due, happens here
    with CaptureQueriesContext(connection) as captured:
        assert client.get(SETTINGS_PAGE).status_code == 200
    reads = [q["sql"] for q in captured.captured_queries if "accounts_user" in q["sql"]]
    assert len(reads) == 1
    assert "accounts_session" in reads[0] and "patients_patient" in reads[0]


def test_each_session_row_names_its_user(client, patient):
    client.force_login(patient.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.get(session_key=key).user_id == patient.user.pk
    anonymous = store_class()()
    anonymous["seen"] = True
    anonymous.save()
    assert Session.objects.get(session_key=anonymous.session_key).user_id is None


def test_with_redis_unreachable_patients_sign_in_and_use_pages(client, patient):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cache = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}
    }
    with override_settings(CACHES=cache):
        response = client.post(
            reverse("patients:signin_password"),
            {"username": patient.user.email, "password": PASSWORD},
        )
        assert response.status_code == 302
        assert client.get(SETTINGS_PAGE).status_code == 200


def test_signing_out_deletes_the_session_and_a_replayed_cookie_is_refused(client, patient):
    client.force_login(patient.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert store_class()(key).load()
    client.post(reverse("patients:signout"))
    assert not Session.objects.filter(session_key=key).exists()
    assert store_class()(key).load() == {}
    client.cookies[settings.SESSION_COOKIE_NAME] = key  # a copied cookie, replayed
    assert client.get(SETTINGS_PAGE).status_code == 302


def test_a_deactivated_account_is_signed_out_on_its_next_request(client, patient):
    client.force_login(patient.user)
    assert client.get(SETTINGS_PAGE).status_code == 200
    type(patient.user).objects.filter(pk=patient.user.pk).update(is_active=False)
    assert client.get(SETTINGS_PAGE).status_code == 302


def test_a_password_change_signs_out_the_other_sessions(client, patient):
    client.force_login(patient.user)
    assert client.get(SETTINGS_PAGE).status_code == 200
    user = type(patient.user).objects.get(pk=patient.user.pk)
    user.set_password("a-new-long-passphrase-42")
    user.save()
    assert client.get(SETTINGS_PAGE).status_code == 302


def test_an_expired_session_reads_as_empty_and_signs_nobody_in(patient):
    store = signed_in_store(patient.user)
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    assert store.load() == {}
    assert sessions.take_loaded_user(patient.user.pk) is None


def test_the_user_read_with_a_session_is_only_given_for_its_own_id(patient, other_patient):
    store = signed_in_store(patient.user)
    assert store.load()["_auth_user_id"] == str(patient.user.pk)
    assert sessions.take_loaded_user(other_patient.user.pk) is None
    # And the backend then reads the other user itself.
    with CaptureQueriesContext(connection) as captured:
        assert EmailBackend().get_user(other_patient.user.pk) == other_patient.user
    assert len(captured) == 1


def test_the_user_read_with_a_session_is_given_once_and_not_to_the_next_request(patient):
    store = signed_in_store(patient.user)
    store.load()
    with CaptureQueriesContext(connection) as captured:
        user = EmailBackend().get_user(str(patient.user.pk))
    assert user == patient.user and user.patient == patient
    assert len(captured) == 0  # read with the session
    assert sessions.take_loaded_user(patient.user.pk) is None  # taken already
    store_class()(store.session_key).load()
    request_started.send(sender=None)  # a new request begins
    assert sessions.take_loaded_user(patient.user.pk) is None


def test_a_session_without_a_cookie_reads_nothing(patient):
    with CaptureQueriesContext(connection) as captured:
        assert store_class()().load() == {}
        assert store_class()("short").load() == {}  # not a well-formed key
    assert len(captured) == 0


# --- Decoding: each stored string's signature checked once per worker ------------------------


def test_decoded_data_is_the_sessions_own_and_never_shared_between_requests(patient):
    store = signed_in_store(patient.user)
    stored = Session.objects.get(session_key=store.session_key).session_data
    first = store_class()().decode(stored)
    first["_auth_user_id"] = "someone else"
    first["added"] = [1]
    again = store_class()().decode(stored)
    assert again == {"_auth_user_id": str(patient.user.pk)}


def test_tampered_session_data_still_reads_as_empty(patient, caplog):
    store = signed_in_store(patient.user)
    stored = Session.objects.get(session_key=store.session_key).session_data
    assert store_class()().decode(stored)  # good, and now remembered
    tampered = stored[:-2] + ("AA" if not stored.endswith("AA") else "BB")
    with caplog.at_level("WARNING", logger="django.security.SuspiciousSession"):
        assert store_class()().decode(tampered) == {}
        assert store_class()().decode(tampered) == {}  # a failure is not remembered
    assert [r.getMessage() for r in caplog.records].count("Session data corrupted") == 2


def test_data_checked_under_one_secret_is_checked_again_under_another(patient):
    store = signed_in_store(patient.user)
    stored = Session.objects.get(session_key=store.session_key).session_data
    assert store_class()().decode(stored)
    with override_settings(SECRET_KEY="a different secret for this test " * 2):
        assert store_class()().decode(stored) == {}  # signed with the old one
    old = settings.SECRET_KEY
    with override_settings(
        SECRET_KEY="a different secret for this test " * 2, SECRET_KEY_FALLBACKS=[old]
    ):
        assert store_class()().decode(stored) == {"_auth_user_id": str(patient.user.pk)}
