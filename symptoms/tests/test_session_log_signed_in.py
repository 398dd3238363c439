"""The tap in one statement: the browser's session checked inside the log itself.

On PostgreSQL the log POST does not read the session first: the log's own
statement finds the session row, checks it as Django would (not expired, the
user active, the backend and the password HMAC of sign-in) and logs for the
patient it signs in (symptoms.services.session_log_signed_in,
accounts.sessions.verified_session_sql). Whatever that statement cannot prove
must write nothing and leave the decision to Django, the usual way: these
tests hold every such case to what Django alone does.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import rawsql
from accounts.models import Session
from accounts.sessions import session_auth_hash_sql, verified_session_params
from patients.services import patient_local_today
from symptoms import services
from symptoms.models import DailyAdherence, SessionLog
from tests.factories import TherapistFactory

pytestmark = pytest.mark.django_db

LOG = reverse("patients:log_session")
SIGN_IN = reverse("patients:signin")


def the_form(client, source="") -> dict:
    """The log form as the page renders it for this browser."""
    response = client.get(LOG + (f"?source={source}" if source else ""))
    assert response.status_code == 200
    form = response.context["form"]
    return {name: form[name].value() for name in ("idempotency_key", "source", "zone")}


def post(client, data):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(LOG, data)
    return response, [query["sql"] for query in queries.captured_queries]


def session_row(client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


def test_the_form_carries_the_patients_zone(patient_client, assigned_patient):
    assert the_form(patient_client)["zone"] == assigned_patient.timezone


def test_signing_in_keeps_the_backend_and_the_password_hmac_beside_the_session(
    patient_client, assigned_patient
):
    row = session_row(patient_client)
    user = assigned_patient.user
    assert row.user_id == user.pk
    assert row.auth_backend == "accounts.backends.EmailBackend"
    assert row.auth_hash == user.get_session_auth_hash()


@pytest.mark.postgres
@pytest.mark.parametrize("password", ["correct horse battery", "pässwörd ✓", "", None], ids=str)
def test_postgresql_works_out_djangos_session_hash(patient, password, settings):
    user = patient.user
    user.password = make_password(password)  # None: an unusable password
    params = verified_session_params("unused", "UTC")
    params["password"] = user.password
    [computed] = rawsql.fetch_one(f"SELECT {session_auth_hash_sql('%(password)s')}", params)
    assert computed == user.get_session_auth_hash()
    settings.SECRET_KEY = "another secret, another hash " * 2
    params = {**verified_session_params("unused", "UTC"), "password": user.password}
    [computed] = rawsql.fetch_one(f"SELECT {session_auth_hash_sql('%(password)s')}", params)
    assert computed == user.get_session_auth_hash()


@pytest.mark.postgres
def test_a_tap_is_one_statement_with_the_session_checked_in_it(patient_client, assigned_patient):
    data = the_form(patient_client, source="email")
    response, queries = post(patient_client, data)
    session = SessionLog.objects.get(patient=assigned_patient)
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])
    assert len(queries) == 1, queries
    assert "accounts_session" in queries[0] and "symptoms_sessionlog" in queries[0]
    assert (session.source, session.idempotency_key) == (
        "email",
        uuid.UUID(data["idempotency_key"]),
    )
    assert session.local_date == patient_local_today(assigned_patient)
    rollup = DailyAdherence.objects.get(patient=assigned_patient, local_date=session.local_date)
    assert (rollup.prescribed, rollup.done) == (6, 1)
    # The next page is the patient's, the usual way.
    assert patient_client.get(response["Location"]).status_code == 200


@pytest.mark.postgres
def test_a_replayed_tap_finds_its_session_and_lands_on_the_same_page(
    patient_client, assigned_patient
):
    data = the_form(patient_client)
    first, _ = post(patient_client, data)
    again, queries = post(patient_client, data)
    assert again["Location"] == first["Location"]
    # The statement (which inserts nothing), then the read of the row the key has.
    assert len(queries) == 2, queries
    assert SessionLog.objects.filter(patient=assigned_patient).count() == 1
    assert DailyAdherence.objects.get(patient=assigned_patient).done == 1


@pytest.mark.postgres
def test_the_service_finds_nothing_for_a_session_it_cannot_prove(patient_client):
    data = the_form(patient_client)
    key = patient_client.cookies["sessionid"].value
    for session_key, zone in (
        ("no-such-session-key-at-all-000000", data["zone"]),
        (key, "Pacific/Auckland" if data["zone"] != "Pacific/Auckland" else "UTC"),
        (key, "Not/AZone"),
        (key, "../../etc/passwd"),
        (key, "x" * 65),
    ):
        assert (
            services.session_log_signed_in(
                session_key=session_key, zone=zone, idempotency_key=uuid.uuid4()
            )
            is None
        )
    assert not SessionLog.objects.exists()


def test_only_postgresql_logs_in_one_statement(patient_client):
    data = the_form(patient_client)
    logged = services.session_log_signed_in(
        session_key=patient_client.cookies["sessionid"].value,
        zone=data["zone"],
        idempotency_key=uuid.uuid4(),
    )
    assert (logged is not None) == (connection.vendor == "postgresql")
    assert SessionLog.objects.count() == (1 if logged else 0)


# --- What the statement cannot prove goes the usual way, with Django's answer ---------------


def test_an_expired_session_logs_nothing_and_signs_in_again(patient_client, assigned_patient):
    data = the_form(patient_client)
    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response, _ = post(patient_client, data)
    assert response.status_code == 302
    assert response["Location"].startswith(SIGN_IN)
    assert not SessionLog.objects.exists()


def test_a_changed_password_ends_the_session_before_it_logs(patient_client, assigned_patient):
    data = the_form(patient_client)
    user = assigned_patient.user
    user.set_password("a brand new password, changed elsewhere")
    user.save()
    response, _ = post(patient_client, data)
    assert response["Location"].startswith(SIGN_IN)
    assert not SessionLog.objects.exists()


def test_a_deactivated_account_logs_nothing(patient_client, assigned_patient):
    data = the_form(patient_client)
    type(assigned_patient.user).objects.filter(pk=assigned_patient.user_id).update(is_active=False)
    response, _ = post(patient_client, data)
    assert response["Location"].startswith(SIGN_IN)
    assert not SessionLog.objects.exists()


def test_a_backend_no_longer_configured_logs_nothing(patient_client, assigned_patient, settings):
    data = the_form(patient_client)
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    response, _ = post(patient_client, data)
    assert response["Location"].startswith(SIGN_IN)
    assert not SessionLog.objects.exists()


def test_staff_posting_the_form_go_to_the_admin_and_log_nothing(client, assigned_patient):
    client.force_login(TherapistFactory(email="staff.tap@clinic.test"))
    data = {"idempotency_key": uuid.uuid4(), "source": "app", "zone": "Europe/London"}
    response, _ = post(client, data)
    assert response["Location"] == reverse("admin:index")
    assert not SessionLog.objects.exists()


def test_without_csrf_token_nothing_is_logged(assigned_patient):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(assigned_patient.user)
    data = the_form(browser)
    response, queries = post(browser, data)
    assert response.status_code == 403
    assert not [sql for sql in queries if "symptoms_sessionlog" in sql]
    assert not SessionLog.objects.exists()


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "Not/AZone", ""])
def test_a_form_for_another_zone_logs_on_the_patients_own_day(
    patient_client, assigned_patient, zone
):
    """The zone moved since the form was made (or the form is old or odd):
    the usual way logs it, on the day it is where the patient is now."""
    assigned_patient.timezone = "America/Los_Angeles"
    assigned_patient.save(update_fields=["timezone"])
    data = {**the_form(patient_client), "zone": zone}
    response, _ = post(patient_client, data)
    session = SessionLog.objects.get(patient=assigned_patient)
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])
    assert session.local_date == patient_local_today(assigned_patient)


def test_a_session_from_before_its_auth_columns_still_logs(patient_client, assigned_patient):
    data = the_form(patient_client)
    Session.objects.update(auth_backend="", auth_hash="")
    response, _ = post(patient_client, data)
    session = SessionLog.objects.get(patient=assigned_patient)
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])


def test_a_session_signed_with_the_previous_secret_key_logs_and_moves_to_the_new_one(
    patient_client, assigned_patient, settings
):
    data = the_form(patient_client)
    old_key = patient_client.cookies["sessionid"].value
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the rotated secret key for this test " * 2
    response, _ = post(patient_client, data)
    session = SessionLog.objects.get(patient=assigned_patient)
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])
    new_key = patient_client.cookies["sessionid"].value
    assert new_key != old_key  # Django moved the session to a key of the new secret
    assert session_row(patient_client).auth_hash == assigned_patient.user.get_session_auth_hash()
