"""The session read opens a signed-in request and doubles as the connection's
health check (accounts.rawsql.fetch_one_first): one round trip fewer, and a
connection the server dropped is still replaced before anything fails."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection, connections, transaction
from django.urls import reverse

from accounts import rawsql

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS_PAGE = reverse("patients:settings")


@pytest.fixture
def health_checks():
    """CONN_HEALTH_CHECKS on and the connection kept between requests, as in
    production, and a count of the pings Django makes."""
    wrapper = connections["default"]
    connection.ensure_connection()
    close_at, wrapper.close_at = wrapper.close_at, None
    pings = []
    is_usable = wrapper.is_usable

    def counted() -> bool:
        pings.append(1)
        return is_usable()

    enabled = wrapper.health_check_enabled
    wrapper.health_check_enabled = True
    wrapper.is_usable = counted
    try:
        yield pings
    finally:
        del wrapper.is_usable
        wrapper.health_check_enabled = enabled
        wrapper.close_at = close_at


def new_request() -> None:
    """What Django does when a request starts (the test client skips it)."""
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is not None
    assert connection.health_check_done is False


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_signed_in_page_needs_no_separate_health_check(client, patient, health_checks):
    client.force_login(patient.user)
    client.get(SETTINGS_PAGE)
    new_request()
    assert client.get(SETTINGS_PAGE).status_code == 200
    assert health_checks == []
    # A request without a session reads nothing first: its first query is pinged before.
    new_request()
    assert rawsql.fetch_one("SELECT 1", []) == (1,)
    assert health_checks == [1]


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_replaced_and_the_page_still_works(
    client, patient, health_checks
):
    client.force_login(patient.user)
    assert client.get(SETTINGS_PAGE).status_code == 200
    dropped = backend_pid()
    new_request()
    with psycopg.connect(_dsn(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [dropped]).fetchone()[0]

    response = client.get(SETTINGS_PAGE)

    assert response.status_code == 200  # signed in: the session was read on the new connection
    assert response.context["patient"] == patient
    assert backend_pid() != dropped


@pytest.mark.postgres
def test_an_error_of_the_read_itself_is_raised_and_the_read_is_not_run_twice(health_checks):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY SEQUENCE first_read_runs")
        cursor.execute("SET statement_timeout = '20ms'")
    pid = backend_pid()
    new_request()
    try:
        with pytest.raises(OperationalError):  # canceled by the timeout
            rawsql.fetch_one_first("SELECT nextval('first_read_runs'), pg_sleep(0.5)", [])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert backend_pid() == pid  # the connection was kept
    assert rawsql.fetch_one("SELECT last_value FROM first_read_runs", [])[0] == 1
    assert health_checks == [1]  # the one check that told the error from a dead connection


def test_inside_a_transaction_the_read_is_a_plain_read(health_checks):
    new_request()
    with transaction.atomic():
        assert rawsql.fetch_one_first("SELECT 1", []) == (1,)
    assert health_checks == [1]  # Django's own check, when the transaction began


def _dsn() -> str:
    db = connection.settings_dict  # NAME is the test database's
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
