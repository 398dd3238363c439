"""The patient's "log a session" path: what it costs, and that the rollup stays exact.

The log is written as one INSERT of the session that reads the program and
adds to the day's rollup row (symptoms.services.session_log). These tests
hold it to its budget (issue 7: at most 6 queries, whatever the history) and
check the incremental rollup against a rebuild from the records, including
under real concurrency on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from patients import services as patient_services
from symptoms import services
from symptoms.forms import SessionLogForm, session_log_values
from symptoms.models import DailyAdherence, PainReport, SessionLog

MAX_LOG_QUERIES = 6
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")

# Every rollup column the services write, except the write time itself.
ROLLUP_FIELDS = [
    "local_date",
    *(field for field in services.ROLLUP_FIELDS if field != "updated_at"),
]


def statements(captured) -> tuple[int, int]:
    """(queries, transaction statements) as make bench counts them."""
    sql = [query["sql"].lstrip().upper() for query in captured.captured_queries]
    control = sum(text.startswith(TRANSACTION_CONTROL) for text in sql)
    return len(sql) - control, control


def rollup_rows(patient) -> list[tuple]:
    return list(
        DailyAdherence.objects.filter(patient=patient)
        .order_by("local_date")
        .values_list(*ROLLUP_FIELDS)
    )


def assert_rollup_matches_a_rebuild(patient) -> None:
    kept = rollup_rows(patient)
    assert kept, "the log wrote no rollup row"
    first, last = kept[0][0], kept[-1][0]
    with transaction.atomic():
        services.adherence_rebuild(patient=patient, first=first, last=last)
    assert rollup_rows(patient) == kept


def make_history(patient, days: int) -> None:
    """Sessions and pain on the ``days`` days before today, written through the services."""
    for offset in range(1, days + 1):
        moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=offset)
        with time_machine.travel(moment, tick=False):
            for _ in range(3):
                session, _ = services.session_log(patient=patient, idempotency_key=uuid.uuid4())
            services.pain_report_for_session(session=session, score=4, location="buttock")


# --- The budget, through the real view -------------------------------------------------------


@pytest.mark.django_db
def test_the_log_post_stays_within_six_queries_whatever_the_history(
    patient_client, assigned_patient
):
    url = reverse("patients:log_session")
    patient_client.get(reverse("patients:today"))  # the session row exists and was renewed

    def post(key):
        with CaptureQueriesContext(connection) as captured:
            response = patient_client.post(url, {"idempotency_key": key, "source": "app"})
        assert response.status_code == 302
        return response, captured

    counts = {}
    for label, history in (("short", 0), ("long", 40)):
        make_history(assigned_patient, history)
        key = str(uuid.uuid4())
        fresh, fresh_queries = post(key)
        replay, replay_queries = post(key)
        assert replay["Location"] == fresh["Location"]
        counts[label] = (statements(fresh_queries), statements(replay_queries))
        for captured in (fresh_queries, replay_queries):
            # Every statement counts here, BEGIN/COMMIT too.
            assert len(captured.captured_queries) <= MAX_LOG_QUERIES, captured.captured_queries
    assert counts["short"] == counts["long"], counts  # constant in the history's length
    assert SessionLog.objects.filter(idempotency_key=key).count() == 1
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.django_db
def test_a_log_and_a_replay_are_one_statement_on_postgresql_two_elsewhere(assigned_patient):
    with CaptureQueriesContext(connection) as captured:
        services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    expected = 1 if connection.vendor == "postgresql" else 2
    assert statements(captured) == (expected, 0)
    key = uuid.uuid4()
    services.session_log(patient=assigned_patient, idempotency_key=key)
    with CaptureQueriesContext(connection) as captured:
        services.session_log(patient=assigned_patient, idempotency_key=key)
    # PostgreSQL: the statement that inserts nothing returns the row it found;
    # elsewhere the row is read next.
    assert statements(captured) == (expected, 0)


@pytest.mark.django_db
def test_pain_post_and_result_page_cost_the_same_whatever_the_history(
    patient_client, assigned_patient
):
    def pain_round():
        session, _ = services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
        pain_url = reverse("patients:log_pain", kwargs={"public_id": session.public_id})
        with CaptureQueriesContext(connection) as post:
            response = patient_client.post(pain_url, {"score": "3", "location": "back_centre"})
        assert response.status_code == 302
        with CaptureQueriesContext(connection) as result:
            page = patient_client.get(response["Location"])
        assert page.status_code == 200
        return statements(post)[0], statements(result)[0]

    patient_client.get(reverse("patients:today"))
    pain_round()  # the first report of the day creates nothing special afterwards
    short = pain_round()
    make_history(assigned_patient, 30)
    long = pain_round()
    assert short == long
    # session + user (at most), the session with its report, lock (PostgreSQL),
    # the previous report and baseline, the report, the rollup.
    assert short[0] <= 7
    assert short[1] <= 4  # session + user (at most), the session, its day's count and reps


@given(
    key=st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda key: f" {{{key.hex.upper()}}}\n"),
        st.uuids().map(lambda key: key.urn),
        st.text(max_size=40),
    ),
    source=st.one_of(st.none(), st.sampled_from(["", "app", "guided", "email"]), st.text()),
)
def test_the_log_post_reads_its_two_values_as_the_form_would(key, source):
    data = QueryDict(mutable=True)
    data["idempotency_key"] = key
    if source is not None:
        data["source"] = source
    fast = session_log_values(data)
    form = SessionLogForm(data)
    if fast is None:
        return  # the view falls back to the form itself
    assert form.is_valid(), form.errors
    assert fast == (form.cleaned_data["idempotency_key"], form.cleaned_data["source"])


def test_a_plain_log_post_never_needs_the_form():
    key = uuid.uuid4()
    data = QueryDict(f"idempotency_key={key}&source=email")
    assert session_log_values(data) == (key, "email")
    assert session_log_values(QueryDict(f"idempotency_key={key}")) == (key, "")
    assert session_log_values(QueryDict("idempotency_key=nope")) is None
    assert session_log_values(QueryDict(f"idempotency_key={key}&source=fax")) is None


# --- What a log records ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_log_takes_the_program_as_it_is_now_not_as_the_caller_last_saw_it(
    assigned_patient, therapist
):
    stale = assigned_patient.assignments.get()
    patient_services.assignment_advance_phase(
        assignment=stale, changed_by=therapist, reason="Centralised", sessions_per_day=5
    )
    for assignment in (services.CURRENT_PROGRAM, stale):
        session, _ = services.session_log(
            patient=assigned_patient, idempotency_key=uuid.uuid4(), assignment=assignment
        )
        assert (session.phase, session.sessions_prescribed, session.assignment_id) == (
            "sub_acute",
            5,
            stale.pk,
        )
        session.refresh_from_db()
        assert (session.phase, session.sessions_prescribed) == ("sub_acute", 5)
    # Sub-acute extension: one session is 11 reps as well (lying 1 + press-ups 10).
    assert DailyAdherence.objects.get(patient=assigned_patient).prescribed == 5


@pytest.mark.django_db
def test_a_log_without_a_program_is_extra_on_a_day_with_nothing_prescribed(patient):
    session, created = services.session_log(patient=patient, idempotency_key=uuid.uuid4())
    assert created and session.assignment_id is None
    assert (session.phase, session.sessions_prescribed, session.reps_done) == ("acute", 0, 0)
    explicit, _ = services.session_log(
        patient=patient, idempotency_key=uuid.uuid4(), assignment=None
    )
    assert explicit.assignment_id is None
    row = DailyAdherence.objects.get(patient=patient)
    assert (row.phase, row.prescribed, row.done, row.extra) == ("", 0, 0, 2)
    assert_rollup_matches_a_rebuild(patient)


@pytest.mark.django_db
def test_the_returned_session_is_the_stored_row(assigned_patient):
    session, _ = services.session_log(
        patient=assigned_patient, idempotency_key=uuid.uuid4(), source="guided"
    )
    stored = SessionLog.objects.get(pk=session.pk)
    for field in SessionLog._meta.concrete_fields:
        assert getattr(session, field.attname) == getattr(stored, field.attname), field.name
    assert not session._state.adding


@pytest.mark.django_db
def test_the_first_log_of_a_day_takes_its_prescription_from_the_phase_history(
    assigned_patient, therapist
):
    """Whether the hourly task made the day's row already or not, the result is the same."""
    assignment = assigned_patient.assignments.get()
    patient_services.assignment_set_sessions_per_day(
        assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
    )
    DailyAdherence.objects.all().delete()
    for _ in range(9):
        services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.phase, row.prescribed, row.done, row.extra, row.reps) == ("acute", 8, 8, 1, 99)
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.django_db
def test_pain_reports_keep_the_days_pain_in_the_rollup(assigned_patient):
    reports = [(5, "thigh"), (7, "back_centre"), (2, "below_knee"), (4, "buttock")]
    for score, location in reports:
        session, _ = services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
        feedback, _ = services.pain_report_for_session(
            session=session, score=score, location=location
        )
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.pain_first, row.pain_last, row.pain_min, row.pain_max) == (5, 4, 2, 7)
    assert row.location == "below_knee"
    assert feedback.reps_today == row.reps == 44
    assert PainReport.objects.filter(patient=assigned_patient).count() == 4
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.django_db
def test_the_hourly_task_repairs_a_day_a_straggling_log_wrote_with_the_old_prescription(
    patient, therapist, extension_template
):
    """The one race the locks leave open (see adherence_recheck_changed), repaired."""
    start = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    ended = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assignment = patient_services.assignment_create(
            patient=patient, template=extension_template, assigned_by=therapist
        )
    with time_machine.travel(ended, tick=False):
        patient_services.assignment_end(assignment=assignment, ended_by=therapist, reason="Done")
        services.session_log(patient=patient, idempotency_key=uuid.uuid4())
    # What the straggler would have written: the day as if the program still ran.
    DailyAdherence.objects.filter(patient=patient).update(
        phase="acute", prescribed=6, done=1, extra=0
    )
    services.adherence_materialise(now=ended + dt.timedelta(minutes=2))  # too early
    assert DailyAdherence.objects.get(patient=patient).prescribed == 6
    services.adherence_materialise(now=ended + dt.timedelta(minutes=30))
    row = DailyAdherence.objects.get(patient=patient, local_date=dt.date(2026, 3, 10))
    assert (row.phase, row.prescribed, row.done, row.extra) == ("", 0, 0, 1)
    # The day before, still on the program, was re-derived as well.
    assert DailyAdherence.objects.get(patient=patient, local_date=dt.date(2026, 3, 9)).prescribed
    # Only recent changes are looked at again.
    assert services.adherence_recheck_changed(now=ended + dt.timedelta(hours=3)) == 0


# --- Concurrency, on PostgreSQL --------------------------------------------------------------


def in_thread(target, *args, **kwargs) -> tuple[threading.Thread, dict]:
    """Run ``target`` on its own thread, so on its own database connection."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target(*args, **kwargs)
        except BaseException as error:
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def finish(thread: threading.Thread, outcome: dict):
    thread.join(timeout=30)
    assert not thread.is_alive(), "a log never finished (deadlock?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def wait_until_blocked(count: int = 1, timeout: float = 10.0) -> None:
    """Until ``count`` other connections wait for a lock: the race really happens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


def log_and_hold(patient, key, release: threading.Event, logged: threading.Event):
    """Log inside a transaction that stays open until ``release``."""
    with transaction.atomic():
        result = services.session_log(patient=patient, idempotency_key=key)
        logged.set()
        assert release.wait(timeout=20)
    return result


def hold_a_log_open(patient, key):
    release, logged = threading.Event(), threading.Event()
    holder = in_thread(log_and_hold, patient, key, release, logged)
    assert logged.wait(timeout=20)
    return holder, release


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_logs_with_different_keys_at_once_count_two(assigned_patient):
    holder, release = hold_a_log_open(assigned_patient, uuid.uuid4())
    second = in_thread(services.session_log, patient=assigned_patient, idempotency_key=uuid.uuid4())
    wait_until_blocked()  # the second waits for the first's rollup row
    release.set()
    (_, first_created), (_, second_created) = finish(*holder), finish(*second)
    assert first_created and second_created
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.done, row.extra, row.reps) == (2, 0, 22)
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_key_twice_at_once_counts_one(assigned_patient):
    key = uuid.uuid4()
    holder, release = hold_a_log_open(assigned_patient, key)
    second = in_thread(services.session_log, patient=assigned_patient, idempotency_key=key)
    wait_until_blocked()  # the second waits on the first's key in the unique index
    release.set()
    first, first_created = finish(*holder)
    again, again_created = finish(*second)
    assert first_created and not again_created and again.pk == first.pk
    assert SessionLog.objects.filter(patient=assigned_patient).count() == 1
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.done, row.extra, row.reps) == (1, 0, 11)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_key_after_a_rolled_back_first_attempt_logs_once(assigned_patient):
    key = uuid.uuid4()
    release, logged = threading.Event(), threading.Event()

    def log_then_fail():
        with transaction.atomic():
            services.session_log(patient=assigned_patient, idempotency_key=key)
            logged.set()
            assert release.wait(timeout=20)
            raise RuntimeError("the request failed after logging")

    holder = in_thread(log_then_fail)
    assert logged.wait(timeout=20)
    second = in_thread(services.session_log, patient=assigned_patient, idempotency_key=key)
    wait_until_blocked()
    release.set()
    with pytest.raises(RuntimeError):
        finish(*holder)
    _, created = finish(*second)
    assert created
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.done, row.reps) == (1, 11)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_patients_logging_at_once_lose_nothing(assigned_patient):
    start = threading.Barrier(6)
    keys = [[uuid.uuid4() for _ in range(5)] for _ in range(6)]

    def burst(mine):
        start.wait(timeout=20)
        for key in mine + mine[:2]:  # two replays each
            services.session_log(patient=assigned_patient, idempotency_key=key)

    threads = [in_thread(burst, mine) for mine in keys]
    for thread in threads:
        finish(*thread)
    assert SessionLog.objects.filter(patient=assigned_patient).count() == 30
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.prescribed, row.done, row.extra, row.reps) == (6, 6, 24, 330)
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_program_change_rebuild_waits_for_a_log_in_flight(assigned_patient, therapist):
    """The first log of the day creates the row; the rebuild must count that session."""
    assignment = assigned_patient.assignments.get()
    patient_services.assignment_set_sessions_per_day(
        assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
    )
    DailyAdherence.objects.all().delete()  # the day's row is not there yet
    holder, release = hold_a_log_open(assigned_patient, uuid.uuid4())
    rebuild = in_thread(services.adherence_program_changed, patient=assigned_patient)
    wait_until_blocked()  # the rebuild waits for the log's new row
    release.set()
    finish(*holder), finish(*rebuild)
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.prescribed, row.done, row.extra, row.reps) == (8, 1, 0, 11)
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_log_during_a_rebuild_adds_to_the_rebuilt_row(assigned_patient, therapist):
    for _ in range(2):
        services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    assignment = assigned_patient.assignments.get()
    patient_services.assignment_set_sessions_per_day(
        assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
    )
    release, rebuilt = threading.Event(), threading.Event()

    def rebuild_and_hold():
        with transaction.atomic():
            services.adherence_program_changed(patient=assigned_patient)
            rebuilt.set()
            assert release.wait(timeout=20)

    holder = in_thread(rebuild_and_hold)
    assert rebuilt.wait(timeout=20)
    log = in_thread(services.session_log, patient=assigned_patient, idempotency_key=uuid.uuid4())
    wait_until_blocked()  # the log waits for the rebuilt row
    release.set()
    finish(*holder), finish(*log)
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.prescribed, row.done, row.extra, row.reps) == (8, 3, 0, 33)
    assert_rollup_matches_a_rebuild(assigned_patient)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pain_report_and_a_log_at_once_neither_deadlock_nor_lose_anything(assigned_patient):
    """The pain report holds the patient lock and waits for the log's rollup row; the log's
    foreign-key check at commit must not wait for that lock in turn."""
    earlier, _ = services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    holder, release = hold_a_log_open(assigned_patient, uuid.uuid4())
    report = in_thread(
        services.pain_report_for_session, session=earlier, score=4, location="buttock"
    )
    wait_until_blocked()  # the report waits for the log's rollup row
    release.set()
    finish(*holder)
    feedback, created = finish(*report)
    assert created and feedback.reps_today == 22  # it counted the log that committed first
    row = DailyAdherence.objects.get(patient=assigned_patient)
    assert (row.done, row.reps, row.pain_last, row.location) == (2, 22, 4, "buttock")
    assert_rollup_matches_a_rebuild(assigned_patient)


# --- the tap's commit (SESSION_LOG_ASYNC_COMMIT) -------------------------------------------


def synchronous_commit_now() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def log_statements(queries) -> list[str]:
    return [query["sql"] for query in queries if "symptoms_sessionlog" in query["sql"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_tap_on_its_own_commits_without_waiting_for_the_flush_and_only_itself(
    assigned_patient,
):
    with CaptureQueriesContext(connection) as queries:
        session, created = services.session_log(
            patient=assigned_patient, idempotency_key=uuid.uuid4()
        )
    assert created
    [statement] = log_statements(queries)
    assert "set_config('synchronous_commit', 'off', true)" in statement
    # Local to the statement's own transaction: the connection's next one waits again.
    assert synchronous_commit_now() == "on"
    # Committed: another connection sees the session and the day's count.
    seen = in_thread(
        lambda: (
            SessionLog.objects.filter(pk=session.pk).exists(),
            DailyAdherence.objects.get(patient=assigned_patient).done,
        )
    )
    assert finish(*seen) == (True, 1)


@pytest.mark.postgres
def test_a_tap_inside_a_transaction_leaves_that_transaction_waiting_for_its_flush(
    assigned_patient,
):
    # pytest-django runs this test inside a transaction (atomic), like a caller's block.
    assert connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    assert not any("synchronous_commit" in sql for sql in log_statements(queries))
    assert synchronous_commit_now() == "on"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_async_commit_turned_off_a_tap_waits_for_its_flush(assigned_patient, settings):
    settings.SESSION_LOG_ASYNC_COMMIT = False
    with CaptureQueriesContext(connection) as queries:
        _, created = services.session_log(patient=assigned_patient, idempotency_key=uuid.uuid4())
    assert created
    [statement] = log_statements(queries)
    assert "synchronous_commit" not in statement
