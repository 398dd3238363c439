"""The hand-written reads (accounts/rawsql.py) give exactly what the ORM gives.

Run on SQLite and on PostgreSQL (CI runs both), so the database converters
(UUIDs, times, dates, booleans, time zones) are checked on each.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from accounts.backends import EmailBackend, load_user_with_patient
from patients import services as patient_services
from patients.models import Assignment
from patients.selectors import patient_current_assignment
from symptoms import services as symptom_services

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def same_values(ours, theirs) -> None:
    assert type(ours) is type(theirs)
    mine, orm = field_values(ours), field_values(theirs)
    assert mine == orm
    for name, value in mine.items():  # equal and of the same type: a UUID, not its text
        assert type(value) is type(orm[name]), name


def test_a_patient_is_loaded_with_their_profile_in_one_query(patient, django_assert_num_queries):
    orm = get_user_model().objects.select_related("patient").get(pk=patient.user.pk)
    with django_assert_num_queries(1):
        user = load_user_with_patient(patient.user.pk)
        profile = user.patient
        assert profile.user is user
    same_values(user, orm)
    same_values(profile, orm.patient)


def test_staff_have_no_profile_and_asking_makes_no_query(therapist, django_assert_num_queries):
    with django_assert_num_queries(1):
        user = load_user_with_patient(therapist.pk)
        assert not hasattr(user, "patient")
    same_values(user, get_user_model().objects.get(pk=therapist.pk))


@pytest.mark.parametrize("user_id", [987654, "987654", "not-a-number", None, ""])
def test_unknown_or_malformed_ids_are_nobody(db, user_id):
    assert EmailBackend().get_user(user_id) is None


def test_an_inactive_user_is_nobody(patient):
    patient.user.is_active = False
    patient.user.save()
    assert EmailBackend().get_user(patient.user.pk) is None


def test_the_assignment_with_todays_count_matches_the_orm(
    patient, therapist, extension_template, django_assert_num_queries
):
    assert patient_current_assignment(patient, sessions_on=dt.date.today()) is None
    patient_services.assignment_create(
        patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
    )
    orm = Assignment.objects.filter(patient=patient, status="active").select_related("template")
    for _ in range(2):
        symptom_services.session_log(
            patient=patient,
            idempotency_key=uuid.uuid4(),
            assignment=orm.get(),
        )
    day = symptom_services._local_now(patient)[1]
    with django_assert_num_queries(1):
        ours = patient_current_assignment(patient, sessions_on=day)
        assert ours.template.name == extension_template.name
        assert ours.patient is patient
    theirs = orm.annotate(
        sessions_done=Count("patient__sessions", filter=Q(patient__sessions__local_date=day))
    ).get()
    same_values(ours, theirs)
    same_values(ours.template, theirs.template)
    assert ours.sessions_done == theirs.sessions_done == 2
    assert (
        patient_current_assignment(patient, sessions_on=day - dt.timedelta(days=1)).sessions_done
        == 0
    )


def test_the_hand_written_statements_stay_short_enough_for_psycopg_to_keep_them_parsed():
    """psycopg parses a statement's placeholders once and keeps the result only
    for statements up to MAX_CACHED_STATEMENT_LENGTH bytes; a longer one is
    parsed again on every execution (about 70 µs each, on every log)."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from accounts.backends import _user_query
    from accounts.sessions import _session_query
    from patients.selectors import _assignment_query
    from symptoms.services import _session_log_sql

    statements = {
        "session": _session_query(),
        "user": _user_query(),
        "today": _assignment_query()[2],
    }
    for program in ("current", "given", "none"):
        for async_commit in (False, True):
            sql = _session_log_sql("postgresql", program, async_commit)
            statements[f"log ({program}, async commit {async_commit})"] = sql.log
        statements[f"find ({program})"] = sql.find  # the same with either commit
    for async_commit in (False, True):
        sql = _session_log_sql("postgresql", "current", async_commit, signed_in=True)
        statements[f"log with the session's check (async commit {async_commit})"] = sql.log
    for name, sql in statements.items():
        assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, name


# --- the plans PostgreSQL picks for them on a clinic-sized database -----------------------


def explain(sql: str, params) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_the_planner_prices_an_index_lookup_as_a_read_from_memory():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert float(cursor.fetchone()[0]) == 1.1


@pytest.mark.parametrize(
    ("value", "options"),
    [(None, "-c random_page_cost=1.1"), ("1.5", "-c random_page_cost=1.5"), ("", None)],
)
def test_the_planner_cost_can_be_set_or_left_to_the_server(value, options):
    """DATABASE_RANDOM_PAGE_COST: 1.1 unless set; empty sends no option (PgBouncer)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {key: val for key, val in os.environ.items() if key != "DATABASE_RANDOM_PAGE_COST"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL="postgres://nobody@127.0.0.1:5432/nothing",  # settings only, no connection
    )
    if value is not None:
        env["DATABASE_RANDOM_PAGE_COST"] = value
    read = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default'].get('OPTIONS', {}).get('options'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", read],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(options)


@pytest.mark.postgres
def test_a_session_read_looks_up_its_own_user_and_patient_only(therapist):
    """Every signed-in request: one index lookup each, not a scan of every patient
    (what the planner's default random_page_cost chose here) or of the users'
    primary key from its start (the plain join's plan on the bench database)."""
    from django.contrib.auth import SESSION_KEY
    from django.db import connection
    from django.utils import timezone

    from accounts.sessions import SessionStore, _session_query
    from tests.factories import PatientFactory

    # A clinic's worth of signed-in patients; the last has the highest user id,
    # so a scan of the users from the start would read every one of them.
    for patient in PatientFactory.create_batch(200, therapist=therapist):
        for _browser in range(3):  # signed in on a few devices over the weeks
            store = SessionStore()
            store[SESSION_KEY] = str(patient.user.pk)
            store.create()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    plan = explain(_session_query(), [store.session_key, now])
    assert "Merge" not in plan, plan
    scans = [line for line in plan.splitlines() if "Scan" in line]
    for table in ("accounts_user", "patients_patient"):
        [scan] = [line for line in scans if f" on {table}" in line]
        assert "Index Scan" in scan and "actual rows=1 " in scan, plan
