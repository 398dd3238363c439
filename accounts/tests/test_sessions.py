"""Sessions read through a real Redis, in the database underneath (accounts/sessions.py).

Each test starts its own redis-server (reminders/tests/live.py), so stopping
it disturbs nobody. The cache is pointed at it for the test only.
"""

from __future__ import annotations

import time
from importlib import import_module

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from redis.backoff import NoBackoff
from redis.retry import Retry

from reminders.tests.live import RedisServer

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def redis_cache(tmp_path):
    """The production cache settings, pointed at a redis-server of the test's own."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    cache = {
        "default": {
            "BACKEND": "accounts.cache.RedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "hep",
            "OPTIONS": {
                "socket_connect_timeout": 0.5,
                "socket_timeout": 0.5,
                "retry": Retry(NoBackoff(), 1),
            },
        }
    }
    with override_settings(CACHES=cache):  # Django resets its cache handlers for this
        yield server
    server.stop()


def session_reads(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "django_session" in q["sql"]]


def test_a_signed_in_page_reads_the_session_from_redis_not_the_database(
    client, patient, redis_cache
):
    client.force_login(patient.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert [name.decode() for name in redis_cache.client().keys(f"*{key}")] == [
        f"hep:1:django.contrib.sessions.cached_db{key}"
    ]
    client.get(reverse("patients:settings"))  # the daily renewal, if due, happens here
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("patients:settings")).status_code == 200
    assert session_reads(captured) == []


def test_with_redis_down_pages_read_the_session_from_the_database_at_once(
    client, patient, redis_cache
):
    client.force_login(patient.user)
    redis_cache.stop()
    started = time.monotonic()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("patients:settings"))
    assert response.status_code == 200
    assert "My settings" in response.content.decode()
    assert session_reads(captured), "the session must come from the database"
    assert time.monotonic() - started < 5  # no waiting on the dead server


def test_with_redis_down_a_patient_can_still_sign_in(client, patient, redis_cache):
    redis_cache.stop()
    client.force_login(patient.user)
    assert client.get(reverse("patients:settings")).status_code == 200


def test_signing_out_removes_the_cached_copy(client, patient, redis_cache):
    client.force_login(patient.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert store(key).load()  # cached and in the database
    client.post(reverse("patients:signout"))
    assert not Session.objects.filter(session_key=key).exists()
    assert store(key).load() == {}
    client.cookies[settings.SESSION_COOKIE_NAME] = key  # a copied cookie, replayed
    page = client.get(reverse("patients:settings"))
    assert page.status_code == 302


def test_signing_out_with_redis_down_fails_instead_of_leaving_a_cached_copy(patient, redis_cache):
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(patient.user.pk)
    store.save()
    redis_cache.stop()
    with pytest.raises(redis.ConnectionError):
        store.flush()


def test_after_a_redis_restart_the_same_client_reconnects_and_refills_the_cache(
    client, patient, redis_cache
):
    client.force_login(patient.user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get(reverse("patients:settings")).status_code == 200
    redis_cache.restart()  # empty now: no persistence
    assert client.get(reverse("patients:settings")).status_code == 200
    assert redis_cache.client().exists(f"hep:1:django.contrib.sessions.cached_db{key}")
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("patients:settings")).status_code == 200
    assert session_reads(captured) == []
