"""The staff pages: who may see what, the review figures, htmx fragments, query counts, export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from patients import services as patient_services
from patients.selectors import patient_current_assignment
from symptoms import services
from symptoms.models import Alert, DailyAdherence
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 20, 12, tzinfo=dt.UTC)
TODAY = NOW.date()
START = TODAY - dt.timedelta(days=40)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def put_on_program(patient, therapist, template, *, days_ago=40, phase="acute", sessions=6):
    with time_machine.travel(NOW - dt.timedelta(days=days_ago), tick=False):
        patient_services.assignment_create(
            patient=patient,
            template=template,
            assigned_by=therapist,
            phase=phase,
            sessions_per_day=sessions,
        )
    return patient


def history(patient, done_by_days_ago: dict[int, int], prescribed=6, pain=None):
    """Rollup rows as the services would leave them (written directly: fast)."""
    rows = []
    for days_ago in range(1, 41):
        logged = done_by_days_ago.get(days_ago, 0)
        rows.append(
            DailyAdherence(
                patient=patient,
                local_date=TODAY - dt.timedelta(days=days_ago),
                phase="acute",
                prescribed=prescribed,
                done=min(logged, prescribed),
                extra=max(0, logged - prescribed),
                pain_last=(pain or {}).get(days_ago),
                location="thigh" if (pain or {}).get(days_ago) is not None else "",
                last_session_at=NOW - dt.timedelta(days=days_ago) if logged else None,
            )
        )
    DailyAdherence.objects.bulk_create(rows)


@pytest.fixture
def mine(therapist, extension_template):
    patient = PatientFactory(
        therapist=therapist, user__email="mia@patients.test", user__full_name="Mia Mine"
    )
    put_on_program(patient, therapist, extension_template, days_ago=5)
    history(patient, {d: 6 for d in range(1, 8)} | {3: 9})
    return patient


@pytest.fixture
def theirs(other_therapist, extension_template):
    patient = PatientFactory(
        therapist=other_therapist, user__email="tom@patients.test", user__full_name="Tom Theirs"
    )
    put_on_program(patient, other_therapist, extension_template)
    history(patient, {d: 2 for d in range(1, 31)})
    services.alert_raise(
        patient=patient, kind="high_pain", severity="routine", period_key="k", message="Theirs"
    )
    return patient


REVIEW = reverse("staff:review")


def detail(patient):
    return reverse("staff:patient", kwargs={"public_id": patient.public_id})


# --- Access ----------------------------------------------------------------


def staff_urls(patient, alert):
    return [
        ("get", REVIEW),
        ("get", detail(patient)),
        ("get", reverse("staff:export")),
        ("post", reverse("staff:alert_acknowledge", kwargs={"pk": alert.pk})),
    ]


def test_signed_out_visitors_go_to_the_admin_sign_in(client, theirs):
    alert = Alert.objects.get()
    for method, url in staff_urls(theirs, alert):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_patients_get_404_everywhere(client, assigned_patient, theirs):
    client.force_login(assigned_patient.user)
    alert = Alert.objects.get()
    for method, url in [*staff_urls(theirs, alert), ("get", detail(assigned_patient))]:
        assert getattr(client, method)(url).status_code == 404
    assert Alert.objects.get().acknowledged_at is None


def test_staff_without_a_clinical_role_get_404(client, theirs):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    assert client.get(REVIEW).status_code == 404


def test_a_therapist_never_sees_another_therapists_patient(client, therapist, mine, theirs):
    client.force_login(therapist)
    body = client.get(REVIEW).content.decode()
    assert "Mia Mine" in body and "Tom Theirs" not in body
    # Not by filter, search or URL either.
    other = theirs.therapist_id
    body = client.get(REVIEW, {"therapist": other, "q": "Tom"}).content.decode()
    assert "Tom Theirs" not in body
    assert client.get(detail(theirs)).status_code == 404
    alert = Alert.objects.get(patient=theirs)
    ack = reverse("staff:alert_acknowledge", kwargs={"pk": alert.pk})
    assert client.post(ack).status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert client.get(reverse("staff:patient", kwargs={"public_id": uuid.uuid4()})).status_code == (
        404
    )


def test_a_clinic_admin_sees_everyone_and_can_filter_by_therapist(
    client, clinic_admin, mine, theirs, therapist
):
    client.force_login(clinic_admin)
    body = client.get(REVIEW).content.decode()
    assert "Mia Mine" in body and "Tom Theirs" in body and "Therapist" in body
    body = client.get(REVIEW, {"therapist": therapist.pk}).content.decode()
    assert "Mia Mine" in body and "Tom Theirs" not in body
    assert client.get(detail(theirs)).status_code == 200


@pytest.mark.parametrize(
    ("method", "name", "kwargs"),
    [
        ("post", "staff:review", {}),
        ("post", "staff:export", {}),
        ("post", "staff:patient", None),
        ("get", "staff:alert_acknowledge", {"pk": 1}),
    ],
)
def test_the_wrong_method_is_405(client, therapist, mine, method, name, kwargs):
    client.force_login(therapist)
    url = reverse(name, kwargs=kwargs if kwargs is not None else {"public_id": mine.public_id})
    assert getattr(client, method)(url).status_code == 405


# --- The review page ----------------------------------------------------------------


def test_the_review_row_says_what_a_therapist_needs(client, therapist, mine):
    Alert.objects.create(
        patient=mine,
        therapist=therapist,
        kind="red_flag",
        severity="urgent",
        period_key="x",
        message="m",
    )
    DailyAdherence.objects.filter(patient=mine, local_date=TODAY - dt.timedelta(days=2)).update(
        pain_last=6, location="thigh"
    )
    DailyAdherence.objects.filter(patient=mine, local_date=TODAY - dt.timedelta(days=1)).update(
        pain_last=4, location="buttock"
    )
    client.force_login(therapist)
    response = client.get(REVIEW)
    body = response.content.decode()
    row = response.review_rows[0]
    # Program since 5 days ago: day 6 of acute, 3-5 days typical.
    assert "Acute, day 6 of 3-5: review the phase" in body
    # Rows are 6/6 for 7 days (one day 9 logged: 3 extra); older days before the program
    # start are written here too, as a rollup from an earlier program would be.
    assert row.week.label == "100% (42 of 42)" and row.week.extra == 3
    assert "+3 extra" in body
    assert row.month.percent == 23  # 42 of 180
    assert "Buttock" in body and "centralising" in body
    assert "Pain 6/10 on 18 Mar, 4/10 on 19 Mar." in body
    assert "Urgent" in body and "Acknowledge" in body
    assert "How adherence is counted" in body and "80% or more is adherent" in body


def test_filters_at_risk_and_alerts_and_phase(client, clinic_admin, mine, theirs):
    client.force_login(clinic_admin)

    def names(**query):
        return [row.patient.name for row in client.get(REVIEW, query).review_rows]

    assert names(at_risk="on") == ["Tom Theirs"]  # 2 of 6 a day
    assert names(alerts="on") == ["Tom Theirs"]
    assert names(phase="acute") == ["Mia Mine", "Tom Theirs"]
    assert names(phase="recovery") == []
    assert names(phase="none") == []
    assert names(q="mia") == ["Mia Mine"]


def test_sorting_by_adherence_uses_the_same_figures_as_the_rows(
    client, clinic_admin, therapist, extension_template
):
    for index, per_day in enumerate([5, 1, 6, 3, 0]):
        patient = PatientFactory(therapist=therapist, user__full_name=f"P{index}")
        put_on_program(patient, therapist, extension_template)
        history(patient, {d: per_day for d in range(1, 41)})
    client.force_login(clinic_admin)
    rows = client.get(REVIEW, {"sort": "adherence7"}).review_rows
    percents = [row.week.percent for row in rows]
    assert percents == sorted(percents) == [0, 16, 50, 83, 100]
    rows = client.get(REVIEW, {"sort": "adherence30", "desc": "on"}).review_rows
    assert [row.month.percent for row in rows] == [100, 83, 50, 16, 0]
    for sort in ("phase", "day", "last_session", "alerts", "therapist", "name"):
        assert client.get(REVIEW, {"sort": sort, "desc": "on"}).status_code == 200


def test_windows_follow_each_patients_own_date(client, therapist, extension_template):
    """At 20 March 12:00 UTC it is already 21 March in Kiritimati (UTC+14)."""
    far = PatientFactory(therapist=therapist, timezone="Pacific/Kiritimati")
    put_on_program(far, therapist, extension_template)
    DailyAdherence.objects.create(
        patient=far, local_date=TODAY, phase="acute", prescribed=6, done=6
    )  # 20 March: yesterday there, so inside its 7-day window
    client.force_login(therapist)
    row = client.get(REVIEW, {"sort": "adherence7"}).review_rows[0]
    assert row.today == TODAY + dt.timedelta(days=1)
    assert (row.week.done, row.week.prescribed) == (6, 6)


def test_htmx_gets_only_the_results_fragment(client, therapist, mine):
    client.force_login(therapist)
    response = client.get(REVIEW, {"sort": "adherence7"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results"')
    assert "<html" not in body and "Mia Mine" in body
    assert "HX-Request" in response["Vary"]
    full = client.get(REVIEW).content.decode()
    assert "<html" in full and 'id="results"' in full


def test_pages_of_50(client, therapist, extension_template):
    for index in range(55):
        PatientFactory(therapist=therapist, user__full_name=f"Patient {index:02d}")
    client.force_login(therapist)
    first = client.get(REVIEW)
    assert len(first.review_rows) == 50 and "Page 1 of 2" in first.content.decode()
    second = client.get(REVIEW, {"page": 2})
    assert [r.patient.name for r in second.review_rows][-1] == "Patient 54"


def test_the_review_page_is_audited_with_the_patients_shown(client, therapist, mine):
    client.force_login(therapist)
    client.get(REVIEW)
    event = AuditEvent.objects.get(action="list")
    assert event.detail["patients"] == [str(mine.public_id)]
    assert event.actor == therapist


def many_patients(count, therapist, other_therapist, template):
    for index in range(count):
        owner = therapist if index % 2 == 0 else other_therapist
        patient = PatientFactory(therapist=owner, user__full_name=f"N{index:02d}")
        put_on_program(patient, owner, template)
        history(patient, {d: index % 7 for d in range(1, 41)}, pain={1: 3, 2: 5})
        services.alert_raise(
            patient=patient, kind="no_sessions", severity="routine", period_key="a", message="m"
        )
        services.alert_raise(
            patient=patient, kind="high_pain", severity="routine", period_key="b", message="m"
        )


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"sort": "adherence7", "at_risk": "on"},
        {"sort": "alerts", "alerts": "on", "desc": "on"},
        {"sort": "last_session", "phase": "acute"},
    ],
)
@pytest.mark.parametrize("who", ["therapist", "clinic_admin"])
def test_the_review_page_makes_the_same_queries_for_5_or_25_patients(
    client, request, who, query, therapist, other_therapist, extension_template
):
    user = request.getfixturevalue(who)
    client.force_login(user)
    many_patients(10, therapist, other_therapist, extension_template)
    client.get(REVIEW, query)
    with CaptureQueriesContext(connection) as few:
        response = client.get(REVIEW, query)
    shown_few = len(response.review_rows)
    many_patients(40, therapist, other_therapist, extension_template)
    with CaptureQueriesContext(connection) as more:
        response = client.get(REVIEW, query)
    shown_more = len(response.review_rows)
    assert shown_more > shown_few >= 1
    if who == "therapist" and not query:
        assert (shown_few, shown_more) == (5, 25)
    assert len(more) == len(few), [q["sql"][:120] for q in more.captured_queries]


@pytest.mark.parametrize(
    ("who", "query", "most"),
    [
        # Signed-in user, their groups; the page of patients (with their open alerts),
        # their rollup figures; the audit row.
        ("therapist", {}, 5),
        # ... and the therapist filter's list.
        ("clinic_admin", {}, 6),
        # ... and the time zones in scope (adherence windows sit on each patient's date);
        # the count comes with the page.
        ("clinic_admin", {"sort": "adherence7", "at_risk": "on"}, 7),
        ("therapist", {"sort": "adherence30", "desc": "on", "alerts": "on"}, 6),
    ],
)
def test_the_review_page_makes_at_most_these_queries(
    client, request, who, query, most, therapist, other_therapist, extension_template
):
    many_patients(12, therapist, other_therapist, extension_template)
    client.force_login(request.getfixturevalue(who))
    client.get(REVIEW, query)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(REVIEW, query)
    assert len(response.review_rows) >= 3
    assert len(queries) <= most, [q["sql"][:100] for q in queries.captured_queries]


def test_the_patient_page_makes_the_same_queries_whatever_its_history(
    client, therapist, mine, django_assert_num_queries
):
    client.force_login(therapist)
    client.get(detail(mine))
    with CaptureQueriesContext(connection) as few:
        client.get(detail(mine))
    for _ in range(3):
        services.alert_raise(
            patient=mine, kind="no_sessions", severity="routine", period_key=str(_), message="m"
        )
    with django_assert_num_queries(len(few)):
        assert client.get(detail(mine)).status_code == 200


# --- Acknowledging ----------------------------------------------------------------


def test_acknowledge_with_htmx_swaps_the_alert_and_records_who(client, therapist, mine):
    alert = services.alert_raise(
        patient=mine, kind="high_pain", severity="routine", period_key="z", message="Sore"
    )
    client.force_login(therapist)
    url = reverse("staff:alert_acknowledge", kwargs={"pk": alert.pk})
    response = client.post(url, {"full": "1"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.startswith("<li") and "Acknowledged by Tess Therapist" in body and "Sore" in body
    alert.refresh_from_db()
    assert alert.acknowledged_by == therapist and alert.acknowledged_at == NOW
    assert AuditEvent.objects.filter(action="change", patient=mine).exists()
    # Again: nothing changes, no second audit entry.
    client.post(url, headers={"HX-Request": "true"})
    assert AuditEvent.objects.filter(action="change", patient=mine).count() == 1


def test_acknowledge_without_javascript_goes_back_safely(client, therapist, mine):
    alert = services.alert_raise(
        patient=mine, kind="high_pain", severity="routine", period_key="z", message="m"
    )
    client.force_login(therapist)
    url = reverse("staff:alert_acknowledge", kwargs={"pk": alert.pk})
    response = client.post(url, {"next": detail(mine)})
    assert response.status_code == 302 and response["Location"] == detail(mine)
    response = client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == REVIEW


# --- Patient detail ----------------------------------------------------------------


def test_the_patient_page_has_charts_phases_alerts_and_notes(
    client, therapist, assigned_patient, django_capture_on_commit_callbacks
):
    patient = assigned_patient
    assignment = patient_current_assignment(patient)
    session, _ = services.session_log(
        patient=patient, idempotency_key=uuid.uuid4(), assignment=assignment
    )
    services.pain_report_for_session(
        session=session, score=8, location="thigh", note="Worse after sitting"
    )
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_advance_phase(
            assignment=assignment, changed_by=therapist, reason="Centralised"
        )
    client.force_login(therapist)
    response = client.get(detail(patient), {"days": 30})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("<svg") >= 3 and "style=" not in body and "<script>" not in body
    assert 'stroke-dasharray="4 3"' in body and "Sub-acute" in body  # the phase change marker
    assert "Pain 8/10 on 20 Mar" in body
    assert "Worse after sitting" in body
    assert "Pain score 8 or more" in body
    assert "Today so far: 1 of 5." in body  # sub-acute from today: 5 a day
    assert body.count("<title>20 Mar: Sub-acute</title>") == 3  # one marker a day, per chart
    assert "20 Mar: Acute</title>" not in body
    assert "Centralised" in body  # the phase history
    event = AuditEvent.objects.get(action="view", patient=patient)
    assert event.actor == therapist


# --- Export ----------------------------------------------------------------

EXPORT = reverse("staff:export")


def read_csv(response):
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_export_is_scoped_to_the_therapists_own_patients(client, therapist, mine, theirs):
    client.force_login(therapist)
    query = {"start": "2026-03-01", "end": "2026-03-19", "therapist": theirs.therapist_id}
    response = client.get(EXPORT, query)
    assert response["Content-Disposition"] == (
        'attachment; filename="adherence-2026-03-01-2026-03-19.csv"'
    )
    rows = read_csv(response)
    assert {row["patient_name"] for row in rows} == {"Mia Mine"}
    assert len(rows) == 19
    day = next(row for row in rows if row["date"] == "2026-03-17")  # 3 days ago: 9 logged
    assert (day["sessions_prescribed"], day["sessions_done"], day["sessions_extra"]) == (
        "6",
        "6",
        "3",
    )
    assert day["adherence_percent"] == "100" and day["adherent"] == "yes"
    event = AuditEvent.objects.get(action="export")
    assert event.detail["start"] == "2026-03-01" and event.detail["scope"] == "own patients"


def test_export_for_a_clinic_admin_covers_everyone_or_one_therapist(
    client, clinic_admin, mine, theirs, other_therapist
):
    client.force_login(clinic_admin)
    rows = read_csv(client.get(EXPORT, {"start": "2026-03-18", "end": "2026-03-19"}))
    assert {row["patient_name"] for row in rows} == {"Mia Mine", "Tom Theirs"}
    theirs_rows = read_csv(
        client.get(
            EXPORT, {"start": "2026-03-18", "end": "2026-03-19", "therapist": other_therapist.pk}
        )
    )
    assert {row["patient_name"] for row in theirs_rows} == {"Tom Theirs"}
    assert theirs_rows[0]["adherence_percent"] == "33" and theirs_rows[0]["adherent"] == "no"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "must be on or after the start date"),
        ({"start": "2025-01-01", "end": "2026-03-01"}, "at most 366 days at a time"),
        ({"start": "2026-03-01"}, "This field is required"),
        ({"start": "yesterday", "end": "2026-03-01"}, "Enter a valid date"),
    ],
)
def test_export_explains_a_bad_range(client, therapist, query, message):
    client.force_login(therapist)
    response = client.get(EXPORT, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action="export").exists()


def test_export_form_suggests_the_last_30_complete_days(client, therapist):
    client.force_login(therapist)
    body = client.get(EXPORT).content.decode()
    assert 'value="2026-02-18"' in body and 'value="2026-03-19"' in body


def test_export_neutralises_spreadsheet_formulas(client, therapist, extension_template):
    patient = PatientFactory(therapist=therapist, user__full_name="=HYPERLINK(evil)")
    put_on_program(patient, therapist, extension_template)
    history(patient, {1: 1})
    client.force_login(therapist)
    rows = read_csv(client.get(EXPORT, {"start": "2026-03-19", "end": "2026-03-19"}))
    assert rows[0]["patient_name"] == "'=HYPERLINK(evil)"


def test_export_streams_in_batches_with_flat_queries(client, clinic_admin, therapist):
    from symptoms import staff_views

    for index in range(7):
        patient = PatientFactory(therapist=therapist, user__full_name=f"E{index}")
        history(patient, {d: 1 for d in range(1, 41)})
    client.force_login(clinic_admin)
    original = staff_views.EXPORT_CHUNK
    staff_views.EXPORT_CHUNK = 50
    try:
        rows = read_csv(client.get(EXPORT, {"start": "2026-02-08", "end": "2026-03-19"}))
    finally:
        staff_views.EXPORT_CHUNK = original
    assert len(rows) == 7 * 40
    assert [(r["patient_name"], r["date"]) for r in rows[:2]] == [
        ("E0", "2026-02-08"),
        ("E0", "2026-02-09"),
    ]


def test_the_export_lines_follow_the_adherence_definition(therapist):
    """The database writes each day's columns (staff_selectors.export_line_sql): its percent
    and verdict must be adherence.percent and adherence.is_adherent, for every small value."""
    from symptoms import adherence
    from symptoms.staff_selectors import export_line_sql

    patient = PatientFactory(therapist=therapist)
    cases = [(p, d) for p in range(0, 12) for d in range(0, p + 1)]
    DailyAdherence.objects.bulk_create(
        DailyAdherence(
            patient=patient,
            local_date=START + dt.timedelta(days=index),
            phase="acute",
            prescribed=prescribed,
            done=done,
            extra=index % 3,
            reps=10 * done,
            pain_last=None if index % 4 == 0 else index % 11,
            pain_max=None if index % 4 == 0 else 10,
            location="" if index % 5 == 0 else "thigh",
        )
        for index, (prescribed, done) in enumerate(cases)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {export_line_sql()} FROM symptoms_dailyadherence r "
            "WHERE r.patient_id = %s ORDER BY r.local_date",
            [patient.pk],
        )
        lines = [line for (line,) in cursor.fetchall()]
    assert len(lines) == len(cases)
    for index, ((prescribed, done), line) in enumerate(zip(cases, lines, strict=True)):
        percent = adherence.percent(done, prescribed)
        adherent = adherence.is_adherent(done, prescribed)
        pain = "" if index % 4 == 0 else str(index % 11)
        assert line == ",".join(
            [
                (START + dt.timedelta(days=index)).isoformat(),
                "acute",
                str(prescribed),
                str(done),
                str(index % 3),
                "" if percent is None else str(percent),
                "" if adherent is None else ("yes" if adherent else "no"),
                str(10 * done),
                pain,
                "" if index % 4 == 0 else "10",
                "" if index % 5 == 0 else "thigh",
            ]
        ), (prescribed, done)


# --- The review list's plain SQL and memos ---------------------------------------------------


@pytest.mark.parametrize("who", ["therapist", "other_therapist", "clinic_admin"])
def test_the_review_list_has_exactly_the_patients_the_user_may_see(
    client, request, who, therapist, other_therapist, extension_template
):
    """The list's own SQL scope equals patients.selectors.patients_for_staff."""
    from patients.selectors import patients_for_staff
    from symptoms import staff_selectors

    many_patients(6, therapist, other_therapist, extension_template)
    PatientFactory(therapist=other_therapist, user__full_name="Never on a program")
    user = request.getfixturevalue(who)
    for filters in (
        staff_selectors.ReviewFilters(),
        staff_selectors.ReviewFilters(therapist=other_therapist.pk),
        staff_selectors.ReviewFilters(sort="adherence30", descending=True),
    ):
        query = staff_selectors.review_query(user, filters)
        shown = {patient.pk for patient in query.page(100, 0)}
        allowed = set(patients_for_staff(user).values_list("pk", flat=True))
        if filters.therapist and who == "clinic_admin":
            allowed = set(
                patients_for_staff(user)
                .filter(therapist=other_therapist)
                .values_list("pk", flat=True)
            )
        assert shown == allowed
        assert query.count() == len(allowed)


def test_patients_on_different_local_dates_share_a_page(client, therapist, extension_template):
    """At 20 March 12:00 UTC it is 21 March in Kiritimati and 20 March in Honolulu:
    each row's windows sit on its own date (one statement per date, joined)."""
    far = PatientFactory(
        therapist=therapist, timezone="Pacific/Kiritimati", user__full_name="A Kiritimati"
    )
    near = PatientFactory(
        therapist=therapist, timezone="Pacific/Honolulu", user__full_name="B Honolulu"
    )
    for patient in (far, near):
        put_on_program(patient, therapist, extension_template)
    DailyAdherence.objects.bulk_create(
        [
            # 20 March: yesterday in Kiritimati (counted), today in Honolulu (not counted).
            DailyAdherence(patient=far, local_date=TODAY, phase="acute", prescribed=6, done=6),
            DailyAdherence(patient=near, local_date=TODAY, phase="acute", prescribed=6, done=2),
            DailyAdherence(
                patient=near,
                local_date=TODAY - dt.timedelta(days=1),
                phase="acute",
                prescribed=6,
                done=3,
                pain_last=7,
                location="thigh",
            ),
        ]
    )
    client.force_login(therapist)
    rows = client.get(REVIEW).review_rows
    assert [row.patient.name for row in rows] == ["A Kiritimati", "B Honolulu"]
    far_row, near_row = rows
    assert far_row.today == TODAY + dt.timedelta(days=1)
    assert (far_row.week.done, far_row.week.prescribed, far_row.today_done) == (6, 6, 0)
    assert near_row.today == TODAY
    assert (near_row.week.done, near_row.week.prescribed) == (3, 6)
    assert (near_row.today_done, near_row.today_prescribed) == (2, 6)
    assert near_row.spark[-2:] == [(TODAY - dt.timedelta(days=1), 7), (TODAY, None)]
    assert (near_row.location, near_row.location_on) == ("thigh", TODAY - dt.timedelta(days=1))
    # Sorting and filtering by adherence place each window on its patient's date too.
    rows = client.get(REVIEW, {"sort": "adherence7"}).review_rows
    assert [row.patient.name for row in rows] == ["B Honolulu", "A Kiritimati"]  # 50%, 100%
    rows = client.get(REVIEW, {"at_risk": "on"}).review_rows
    assert [row.patient.name for row in rows] == ["B Honolulu"]


def test_the_sparkline_days_keep_every_score_and_location(client, therapist, extension_template):
    """Scores 0 and 10, days without a report, "none" and the furthest location all
    survive the database's packing (staff_selectors.PainDays)."""
    patient = PatientFactory(therapist=therapist, user__full_name="Sam Spark")
    put_on_program(patient, therapist, extension_template)
    days = {
        13: (0, "none"),
        12: (10, "below_knee"),
        9: (None, "buttock"),
        5: (3, ""),
        1: (4, "thigh"),
    }
    DailyAdherence.objects.bulk_create(
        DailyAdherence(
            patient=patient,
            local_date=TODAY - dt.timedelta(days=ago),
            phase="acute",
            prescribed=6,
            done=1,
            pain_last=score,
            location=where,
        )
        for ago, (score, where) in days.items()
    )
    # Older than the 14 days: not on the sparkline, not the latest location.
    DailyAdherence.objects.create(
        patient=patient,
        local_date=TODAY - dt.timedelta(days=14),
        phase="acute",
        prescribed=6,
        done=1,
        pain_last=9,
        location="below_knee",
    )
    client.force_login(therapist)
    row = client.get(REVIEW).review_rows[0]
    expected = {TODAY - dt.timedelta(days=ago): score for ago, (score, _) in days.items()}
    assert row.spark == [
        (TODAY - dt.timedelta(days=ago), expected.get(TODAY - dt.timedelta(days=ago)))
        for ago in range(13, -1, -1)
    ]
    assert (row.location, row.location_on) == ("thigh", TODAY - dt.timedelta(days=1))
    assert row.trend == "peripheralising"  # "none" 13 days ago, the thigh yesterday


def test_a_row_changes_as_soon_as_its_data_does(client, therapist, mine):
    """The rendered rows are memoised on everything they show: any change shows at once."""
    client.force_login(therapist)
    first = client.get(REVIEW).content.decode()
    assert "Mia Mine" in first and "none in 14 days" in first
    DailyAdherence.objects.filter(patient=mine, local_date=TODAY - dt.timedelta(days=1)).update(
        pain_last=5, location="buttock", done=0
    )
    mine.user.full_name = "Mia Renamed"
    mine.user.save()
    alert = services.alert_raise(
        patient=mine, kind="high_pain", severity="routine", period_key="z", message="m"
    )
    second = client.get(REVIEW).content.decode()
    assert "Mia Renamed" in second and "Mia Mine" not in second
    assert "Pain 5/10 on 19 Mar." in second and "Buttock" in second
    assert "85% (36 of 42)" in second  # rounded down
    assert f'id="alert-{alert.pk}"' in second
    services.alert_acknowledge(alert=alert, user=therapist)
    assert f'id="alert-{alert.pk}"' not in client.get(REVIEW).content.decode()


def test_each_request_gets_its_own_csrf_token_in_the_memoised_rows(client, therapist, mine):
    services.alert_raise(
        patient=mine, kind="high_pain", severity="routine", period_key="c", message="m"
    )
    client.force_login(therapist)
    first = client.get(REVIEW, {"q": "mia"})
    other = type(client)()
    other.force_login(therapist)
    second = other.get(REVIEW, {"q": "mia"})
    tokens = [
        set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.content.decode()))
        for r in (first, second)
    ]
    assert all(len(found) == 1 for found in tokens)  # one token a page, in every form
    assert tokens[0] != tokens[1]
    for response in (first, second):
        assert 'name="next" value="/staff/?q=mia"' in response.content.decode()
    assert "\x00" not in first.content.decode()


def test_search_treats_like_wildcards_as_text(client, therapist, extension_template):
    for name in ("Ann 100% Fit", "Bob Plain", "Cy_Under"):
        PatientFactory(therapist=therapist, user__full_name=name)
    client.force_login(therapist)

    def names(q):
        return [row.patient.name for row in client.get(REVIEW, {"q": q}).review_rows]

    assert names("100%") == ["Ann 100% Fit"]
    assert names("%") == ["Ann 100% Fit"]
    assert names("_") == ["Cy_Under"]
    assert names("bob") == ["Bob Plain"]


def test_the_page_chrome_is_the_staff_base_template(client, therapist, mine):
    """The review page's chrome is rendered once per language (markers for what varies):
    it must say what base.html says, with this user's name and token."""
    client.force_login(therapist)
    review = client.get(REVIEW).content.decode()
    export = client.get(reverse("staff:export")).content.decode()

    def chrome(body):
        head = body[: body.index('<main id="main"')]
        head = re.sub(r"<title>.*?</title>", "", head, flags=re.S)
        head = re.sub(r'"X-CSRFToken": "[^"]+"', "", head)
        head = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", head)
        return head.replace(' aria-current="page"', "")

    assert chrome(review) == chrome(export)
    assert "Tess Therapist" in review and 'href="/staff/" aria-current="page"' in review
    token = re.search(r'"X-CSRFToken": "([^"]+)"', review).group(1)
    assert f'name="csrfmiddlewaretoken" value="{token}"' in review
