"""Every patient page: the owner gets it, others 404, anonymous signs in, 405, htmx fragment."""
# ruff: noqa: F811  (the shared fixtures are imported by name, then requested by name)

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import time_machine
from django.urls import reverse

from patients.signals import schedule_changed
from symptoms import services as symptom_services
from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog
from symptoms.tests.fixtures import (  # noqa: F401
    assigned_patient,
    other_assigned_patient,
    patient_client,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PAGES = [
    # (url name, methods it accepts, text on the page)
    ("patients:today", {"GET"}, "Session 1 of 6 today"),
    ("patients:guided", {"GET"}, "Exercise 1 of 2"),
    ("patients:log_session", {"GET", "POST"}, "I did this session"),
    ("patients:progress", {"GET"}, "My progress"),
    ("patients:settings", {"GET", "POST"}, "My settings"),
    ("patients:warning_signs", {"GET", "POST"}, "Do you have any of these now?"),
]


def make_session(patient, score=None, location="thigh"):
    from patients.selectors import patient_current_assignment

    session, _ = symptom_services.session_log(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        assignment=patient_current_assignment(patient),
    )
    if score is not None:
        symptom_services.pain_report_for_session(session=session, score=score, location=location)
    return session


def object_pages(patient):
    """Pages about one object, for this patient."""
    unscored = make_session(patient)
    scored = make_session(patient, score=4)
    flag = symptom_services.red_flag_report_create(patient=patient, leg_weakness=True)
    return [
        (reverse("patients:log_pain", args=[unscored.public_id]), {"GET", "POST"}, "pain"),
        (reverse("patients:session_result", args=[scored.public_id]), {"GET"}, "Pain 4"),
        (reverse("patients:warning_result", args=[flag.public_id]), {"GET"}, "Call your doctor"),
    ]


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_the_patient_gets_their_page(patient_client, name, methods, text):
    response = patient_client.get(reverse(name))
    assert response.status_code == 200
    body = response.content.decode()
    assert text in body
    assert "<html" in body
    assert reverse("patients:warning_signs") in body  # one tap from every page


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_htmx_gets_only_the_fragment(patient_client, name, methods, text):
    response = patient_client.get(reverse(name), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert text in body
    assert "<html" not in body and "<header" not in body
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_htmx_history_restore_gets_the_whole_page(patient_client, name, methods, text):
    response = patient_client.get(
        reverse(name), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_anonymous_is_sent_to_sign_in_and_back(client, name, methods, text):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("patients:signin") + "?next=")


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_wrong_method_is_405(patient_client, name, methods, text):
    for method in {"PUT", "DELETE", "PATCH", "POST"} - methods:
        response = getattr(patient_client, method.lower())(reverse(name))
        assert response.status_code == 405, method


@pytest.mark.parametrize(("name", "methods", "text"), PAGES)
def test_staff_are_sent_to_the_admin_not_a_500(client, therapist, name, methods, text):
    client.force_login(therapist)
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_a_user_with_no_patient_profile_and_no_staff_role_gets_404(client):
    from accounts.models import User

    client.force_login(User.objects.create_user(email="nobody@example.test"))
    assert client.get(reverse("patients:today")).status_code == 404


def test_object_pages_owner_ok_other_patient_404_anonymous_and_405(
    client, assigned_patient, other_assigned_patient
):
    mine = object_pages(assigned_patient)
    theirs = object_pages(other_assigned_patient)
    for url, _methods, _text in mine + theirs:
        response = client.get(url)
        assert response.status_code == 302 and "next=" in response["Location"]
    client.force_login(assigned_patient.user)
    for url, methods, text in mine:
        response = client.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode()
        fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
        assert text in fragment and "<html" not in fragment
        for method in {"PUT", "DELETE", "POST"} - methods:
            assert getattr(client, method.lower())(url).status_code == 405
    for url, _methods, _text in theirs:
        assert client.get(url).status_code == 404, url
    # Posting pain to someone else's session is a 404 too, and writes nothing.
    their_session = SessionLog.objects.filter(patient=other_assigned_patient, pain__isnull=True)
    url = reverse("patients:log_pain", args=[their_session.get().public_id])
    assert client.post(url, {"score": 9, "location": "thigh"}).status_code == 404
    assert not PainReport.objects.filter(session__patient=other_assigned_patient, score=9).exists()


def test_an_unknown_uuid_is_404(patient_client):
    assert (
        patient_client.get(reverse("patients:session_result", args=[uuid.uuid4()])).status_code
        == 404
    )


# --- Today --------------------------------------------------------------------


def test_today_shows_phase_day_session_count_and_exercises(patient_client, assigned_patient):
    make_session(assigned_patient)
    body = patient_client.get(reverse("patients:today")).content.decode()
    assert "Acute phase, day 1" in body
    assert "Session 2 of 6 today" in body
    assert 'max="6" value="1"' in body
    assert "Lying on your stomach" in body and "Stay for 2 minutes" in body
    assert "10 times, hold 10 seconds each" in body
    assert "/static/programs/illustrations/prone-prop-elbows.svg" in body
    assert reverse("patients:guided") in body


def test_today_without_a_program_says_so(client, patient):
    client.force_login(patient.user)
    body = client.get(reverse("patients:today")).content.decode()
    assert "has not set up your exercises yet" in body


def test_today_when_every_session_is_done(patient_client, assigned_patient):
    for _ in range(6):
        make_session(assigned_patient)
    body = patient_client.get(reverse("patients:today")).content.decode()
    assert "All 6 sessions done today" in body


def _history(patient, days):
    for offset in range(days):
        for _ in range(3):
            session = make_session(patient)
            SessionLog.objects.filter(pk=session.pk).update(
                local_date=session.local_date - dt.timedelta(days=offset + 1)
            )


def test_today_makes_a_fixed_number_of_queries(
    patient_client, assigned_patient, django_assert_num_queries
):
    url = reverse("patients:today")
    patient_client.get(url)  # warm the session
    # The user with its patient profile, then the assignment with its template
    # and today's session count. The session comes from the cache, the
    # phase's exercises from the process's cache (programs.selectors); the
    # session is renewed at most once a day.
    with django_assert_num_queries(2):
        patient_client.get(url)
    _history(assigned_patient, 30)
    make_session(assigned_patient, score=5)
    with django_assert_num_queries(2):
        assert "Session 2 of 6 today" in patient_client.get(url).content.decode()


def test_logging_makes_a_fixed_number_of_queries(
    patient_client, assigned_patient, django_assert_num_queries
):
    url = reverse("patients:log_session")
    patient_client.get(url)

    def post():
        return patient_client.post(url, {"idempotency_key": uuid.uuid4(), "source": "app"})

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert post().status_code == 302  # warm: the phase's exercises are cached from now on
    with CaptureQueriesContext(connection) as few:
        assert post().status_code == 302
    _history(assigned_patient, 30)
    with django_assert_num_queries(len(few)):
        assert post().status_code == 302


# --- Logging ------------------------------------------------------------------


def test_log_from_a_reminder_email_records_the_source(patient_client, assigned_patient):
    response = patient_client.get(reverse("patients:log_session") + "?source=email")
    form = response.context["form"]
    assert form.initial["source"] == "email"
    response = patient_client.post(
        reverse("patients:log_session"),
        {"idempotency_key": form.initial["idempotency_key"], "source": "email"},
    )
    session = SessionLog.objects.get(patient=assigned_patient)
    assert session.source == "email"
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])


def test_each_log_form_has_a_fresh_key(patient_client):
    first = patient_client.get(reverse("patients:log_session")).context["form"]
    second = patient_client.get(reverse("patients:log_session")).context["form"]
    assert first.initial["idempotency_key"] != second.initial["idempotency_key"]


def test_a_replayed_log_form_logs_one_session_and_lands_on_the_same_page(
    patient_client, assigned_patient
):
    data = {"idempotency_key": uuid.uuid4(), "source": "app"}
    first = patient_client.post(reverse("patients:log_session"), data)
    second = patient_client.post(reverse("patients:log_session"), data)
    assert first["Location"] == second["Location"]
    assert SessionLog.objects.filter(patient=assigned_patient).count() == 1


def test_a_log_form_without_a_key_is_refused(patient_client, assigned_patient):
    response = patient_client.post(reverse("patients:log_session"), {"source": "app"})
    assert response.status_code == 400
    assert not SessionLog.objects.exists()


def test_pain_form_then_result_and_replay(patient_client, assigned_patient):
    session = make_session(assigned_patient)
    url = reverse("patients:log_pain", args=[session.public_id])
    body = patient_client.get(url).content.decode()
    for word in ("No pain", "Worst possible", "Below the knee or in the foot", "Buttock"):
        assert word in body
    assert 'name="score"' in body and 'type="radio"' in body
    response = patient_client.post(url, {"score": "4", "location": "thigh", "note": "stiff"})
    result = reverse("patients:session_result", args=[session.public_id])
    assert response["Location"] == result
    replay = patient_client.post(url, {"score": "9", "location": "below_knee"})
    assert replay["Location"] == result
    report = PainReport.objects.get()
    assert (report.score, report.location, report.note) == (4, "thigh", "stiff")
    assert "Pain 4 out of 10" in patient_client.get(result).content.decode()


def test_pain_form_needs_a_score_and_a_location(patient_client, assigned_patient):
    session = make_session(assigned_patient)
    url = reverse("patients:log_pain", args=[session.public_id])
    response = patient_client.post(url, {"score": "11", "location": "elbow"})
    assert response.status_code == 400
    assert "Please answer both questions" in response.content.decode()
    assert not PainReport.objects.exists()


def test_result_before_pain_goes_to_the_pain_form(patient_client, assigned_patient):
    session = make_session(assigned_patient)
    response = patient_client.get(reverse("patients:session_result", args=[session.public_id]))
    assert response["Location"] == reverse("patients:log_pain", args=[session.public_id])


def test_result_says_centralising_is_good(patient_client, assigned_patient):
    make_session(assigned_patient, score=6, location="thigh")
    session = make_session(assigned_patient, score=4, location="buttock")
    body = patient_client.get(
        reverse("patients:session_result", args=[session.public_id])
    ).content.decode()
    assert "A good sign" in body and "Thigh → Buttock" in body
    assert "Stop the exercises" not in body


def test_result_says_stop_when_pain_spreads_and_offers_the_check(patient_client, assigned_patient):
    make_session(assigned_patient, score=4, location="buttock")
    session = make_session(assigned_patient, score=5, location="below_knee")
    body = patient_client.get(
        reverse("patients:session_result", args=[session.public_id])
    ).content.decode()
    assert "Stop the exercises for now" in body
    assert "contact your therapist" in body
    assert "Check the warning signs" in body
    assert Alert.objects.filter(kind="peripheralising").exists()


def test_result_offers_the_check_for_pain_8_or_more(patient_client, assigned_patient):
    session = make_session(assigned_patient, score=8, location="back_centre")
    body = patient_client.get(
        reverse("patients:session_result", args=[session.public_id])
    ).content.decode()
    assert "Check the warning signs" in body


# --- Warning signs ------------------------------------------------------------


def test_bladder_report_shows_the_emergency_at_once(
    patient_client, assigned_patient, therapist, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(
            reverse("patients:warning_signs"), {"bladder": "on"}, follow=True
        )
    body = response.content.decode()
    assert "Go to the emergency room now" in body
    assert 'role="alert"' in body
    report = RedFlagReport.objects.get(patient=assigned_patient)
    assert report.bladder and report.action == "emergency"
    alert = Alert.objects.get(kind="red_flag", patient=assigned_patient)
    assert alert.emailed_at is not None
    assert mailoutbox[-1].to == [therapist.email]


def test_saddle_numbness_says_call_your_doctor_today(patient_client):
    response = patient_client.post(
        reverse("patients:warning_signs"), {"saddle_numbness": "on"}, follow=True
    )
    body = response.content.decode()
    assert "Call your doctor today" in body
    assert "Go to the emergency room now" not in body.split("</h1>")[0]


def test_warning_form_with_nothing_ticked_stores_nothing(patient_client):
    response = patient_client.post(reverse("patients:warning_signs"), {})
    assert response.status_code == 400
    assert "Tick each sign you have" in response.content.decode()
    assert not RedFlagReport.objects.exists()


# --- Progress -----------------------------------------------------------------


def test_progress_shows_charts_with_text_summaries(patient_client, assigned_patient):
    earlier = make_session(assigned_patient, score=6, location="thigh")
    three_days_ago = earlier.local_date - dt.timedelta(days=3)
    SessionLog.objects.filter(pk=earlier.pk).update(local_date=three_days_ago)
    PainReport.objects.filter(session=earlier).update(local_date=three_days_ago)
    make_session(assigned_patient, score=3, location="back_centre")
    body = patient_client.get(reverse("patients:progress")).content.decode()
    assert body.count("<svg") == 3
    assert "<title" in body and "<desc" in body
    assert "style=" not in body
    assert "Pain went down from 6 to 3 over 3 days." in body
    assert "Your pain has moved toward your spine: Thigh → Low back, in the middle." in body
    # Four days shown. The program started today (6 a day); the day with the
    # back-dated session keeps the 6 it was logged against.
    assert "Over the last 4 days you did 2 of 12 sessions." in body


def test_progress_is_empty_before_anything_is_logged(client, patient):
    client.force_login(patient.user)
    body = client.get(reverse("patients:progress")).content.decode()
    assert "Nothing to show yet" in body


# --- Settings -----------------------------------------------------------------


def test_settings_save_through_patient_update_and_tell_the_planner(
    patient_client, assigned_patient, django_capture_on_commit_callbacks
):
    heard = []

    def receiver(sender, patient, **kwargs):
        heard.append(patient.pk)

    schedule_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = patient_client.post(
                reverse("patients:settings"),
                {
                    "wake_time": "06:30",
                    "sleep_time": "22:15",
                    "timezone": "Europe/Madrid",
                    "reminders_enabled": "on",
                    "reminders_paused_until": "2030-01-31",
                },
            )
    finally:
        schedule_changed.disconnect(receiver)
    assert response.status_code == 302
    assigned_patient.refresh_from_db()
    assert assigned_patient.wake_time == dt.time(6, 30)
    assert assigned_patient.sleep_time == dt.time(22, 15)
    assert assigned_patient.timezone == "Europe/Madrid"
    assert assigned_patient.reminders_enabled and assigned_patient.reminder_consent_at
    assert assigned_patient.reminders_paused_until == dt.date(2030, 1, 31)
    assert heard == [assigned_patient.pk]
    assert "Your settings are saved" in patient_client.get(response["Location"]).content.decode()


def test_settings_refuse_bedtime_before_getting_up(patient_client, assigned_patient):
    response = patient_client.post(
        reverse("patients:settings"),
        {"wake_time": "22:00", "sleep_time": "07:00", "timezone": "Europe/London"},
    )
    assert response.status_code == 200
    assert "Bedtime must be later" in response.content.decode()
    assigned_patient.refresh_from_db()
    assert assigned_patient.wake_time == dt.time(7, 0)


def test_settings_show_todays_planned_reminder_times(patient_client, assigned_patient):
    from reminders.planning import wall_times
    from reminders.services import reminder_plan_patient

    Patient = type(assigned_patient)
    Patient.objects.filter(pk=assigned_patient.pk).update(reminders_enabled=True)
    assigned_patient.refresh_from_db()
    # 06:00 in London: the whole day's reminders are still ahead.
    with time_machine.travel(dt.datetime(2027, 6, 1, 5, 0, tzinfo=dt.UTC), tick=False):
        reminder_plan_patient(patient=assigned_patient)
        patient_client.force_login(assigned_patient.user)  # a fresh session in 2027
        body = patient_client.get(reverse("patients:settings")).content.decode()
    assert "Today&#x27;s reminder times" in body or "Today's reminder times" in body
    expected = wall_times(wake=dt.time(7, 0), sleep=dt.time(21, 0), count=6)
    for time in expected:
        assert time.strftime("%H:%M") in body


def test_settings_show_no_times_when_reminders_are_off(patient_client):
    body = patient_client.get(reverse("patients:settings")).content.decode()
    assert "No reminders are planned for today." in body


# --- Manifest, home, sign-out ---------------------------------------------------


def test_manifest_is_installable(client):
    response = client.get(reverse("patients:manifest"))
    assert response["Content-Type"] == "application/manifest+json"
    data = json.loads(response.content)
    assert data["display"] == "standalone" and data["theme_color"]
    assert {icon["sizes"] for icon in data["icons"]} >= {"192x192", "512x512"}
    assert data["start_url"] == reverse("patients:today")


def test_home_sends_a_signed_in_patient_to_today(patient_client, client):
    assert patient_client.get("/")["Location"] == reverse("patients:today")


def test_home_for_visitors_offers_sign_in(client):
    body = client.get("/").content.decode()
    assert reverse("patients:signin") in body
    assert 'rel="manifest"' in body


def test_sign_out_is_a_post(patient_client):
    assert patient_client.get(reverse("patients:signout")).status_code == 405
    response = patient_client.post(reverse("patients:signout"))
    assert response["Location"] == reverse("patients:signin")
    assert patient_client.get(reverse("patients:today")).status_code == 302


def test_password_sign_in_with_the_email(client, assigned_patient):
    assigned_patient.user.set_password(PASSWORD)
    assigned_patient.user.save()
    response = client.post(
        reverse("patients:signin_password"),
        {"username": assigned_patient.user.email, "password": PASSWORD},
    )
    assert response["Location"] == reverse("patients:today")
    assert client.get(reverse("patients:today")).status_code == 200


def test_progress_makes_a_fixed_number_of_queries(
    patient_client, assigned_patient, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("patients:progress")
    make_session(assigned_patient, score=5)
    patient_client.get(url)
    with CaptureQueriesContext(connection) as few:
        patient_client.get(url)
    _history(assigned_patient, 40)
    for _ in range(5):
        make_session(assigned_patient, score=3, location="back_centre")
    with django_assert_num_queries(len(few)):
        assert patient_client.get(url).status_code == 200


def test_today_warns_when_the_day_adds_up_to_more_than_100_repetitions(
    patient_client, assigned_patient
):
    from programs.models import PrescribedExercise

    url = reverse("patients:today")
    warning = "more than 100 repetitions a day"
    assert warning not in patient_client.get(url).content.decode()
    assignment = assigned_patient.assignments.get(status="active")
    item = PrescribedExercise.objects.filter(
        template_phase__template=assignment.template,
        template_phase__phase=assignment.current_phase,
    ).first()
    item.reps, item.sets = 20, 1  # 20 a session, 6 sessions: 120 a day
    item.save()
    assert warning in patient_client.get(url).content.decode()


def test_today_buttons_follow_the_sessions_logged(patient_client, assigned_patient):
    url = reverse("patients:today")
    assert "Start session 1" in patient_client.get(url).content.decode()
    make_session(assigned_patient, score=3)
    page = patient_client.get(url).content.decode()
    assert "Start session 2" in page and "Start session 1" not in page
    for _ in range(5):
        make_session(assigned_patient, score=3)
    page = patient_client.get(url).content.decode()
    assert "Do an extra session" in page and "Start session" not in page
