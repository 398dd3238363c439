"""Logging sessions and pain, warning signs and alerts: the rules from the seeds."""

from __future__ import annotations

import datetime as dt
import uuid
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError

from symptoms import services
from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog, SessionSource
from symptoms.selectors import sessions_logged_count

pytestmark = pytest.mark.django_db


def log(patient, key=None, source=SessionSource.APP):
    from patients.selectors import patient_current_assignment

    return services.session_log(
        patient=patient,
        idempotency_key=key or uuid.uuid4(),
        assignment=patient_current_assignment(patient),
        source=source,
    )


def test_the_same_key_logs_one_session(assigned_patient):
    key = uuid.uuid4()
    first, created = log(assigned_patient, key)
    again, created_again = log(assigned_patient, key)
    assert created and not created_again
    assert first.pk == again.pk
    assert SessionLog.objects.filter(patient=assigned_patient).count() == 1


def test_a_key_taken_by_a_request_that_committed_first_returns_its_row(assigned_patient):
    """The INSERT itself is the check: a row with the key already there is simply found."""
    from symptoms.models import DailyAdherence

    key = uuid.uuid4()
    winner, _ = log(assigned_patient, key)
    rollup = DailyAdherence.objects.get(patient=assigned_patient)
    loser, created = log(assigned_patient, key)
    assert not created and loser.pk == winner.pk and loser.public_id == winner.public_id
    assert SessionLog.objects.count() == 1
    again = DailyAdherence.objects.get(patient=assigned_patient)
    assert (again.done, again.extra, again.reps) == (rollup.done, rollup.extra, rollup.reps)


def test_the_database_refuses_a_duplicate_key(assigned_patient):
    key = uuid.uuid4()
    session, _ = log(assigned_patient, key)
    with pytest.raises(IntegrityError):
        SessionLog.objects.create(
            patient=assigned_patient,
            local_date=session.local_date,
            logged_at=session.logged_at,
            phase="acute",
            sessions_prescribed=6,
            idempotency_key=key,
        )


def test_a_session_snapshots_phase_prescription_and_reps(assigned_patient):
    session, _ = log(assigned_patient, source=SessionSource.EMAIL)
    # Acute extension: lying 1 x 1 and elbow props 10 x 1.
    assert (session.phase, session.sessions_prescribed, session.reps_done) == ("acute", 6, 11)
    assert session.source == "email"


def test_local_date_is_the_patients_own_date(assigned_patient):
    assigned_patient.timezone = "Asia/Tokyo"
    assigned_patient.save()
    with time_machine.travel(dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC), tick=False):
        session, _ = log(assigned_patient)
    assert session.local_date == dt.date(2026, 3, 2)
    assert sessions_logged_count(patient=assigned_patient, local_date=dt.date(2026, 3, 2)) == 1


def pain(patient, score, location, note=""):
    session, _ = log(patient)
    feedback, _ = services.pain_report_for_session(
        session=session, score=score, location=location, note=note
    )
    return feedback


def test_first_report_then_centralising_is_a_good_sign(assigned_patient):
    first = pain(assigned_patient, 6, "thigh")
    assert first.report.trend == "first" and not first.must_stop
    better = pain(assigned_patient, 4, "buttock")
    assert better.centralising and not better.must_stop
    assert (better.report.previous_score, better.report.previous_location) == (6, "thigh")
    assert not Alert.objects.exists()


def test_peripheralising_means_stop_and_alerts_the_therapist(
    assigned_patient, therapist, django_capture_on_commit_callbacks
):
    pain(assigned_patient, 4, "buttock")
    with django_capture_on_commit_callbacks(execute=True):
        worse = pain(assigned_patient, 4, "below_knee")
    assert worse.peripheralising and worse.must_stop and worse.offer_warning_check
    alert = Alert.objects.get(kind=Alert.Kind.PERIPHERALISING)
    assert alert.therapist == therapist
    assert alert.period_key == worse.report.local_date.isoformat()
    assert alert.severity == Alert.Severity.ROUTINE
    # Routine: no email of its own; it waits for the therapist's daily digest.
    assert alert.emailed_at is None and alert.digest is None
    assert mail.outbox == []
    assert "Below the knee" in alert.message


def test_high_and_clearly_rising_pain(assigned_patient, django_capture_on_commit_callbacks):
    pain(assigned_patient, 5, "back_centre")
    with django_capture_on_commit_callbacks(execute=True):
        feedback = pain(assigned_patient, 8, "back_centre")
    assert feedback.high_pain and feedback.pain_rising and feedback.must_stop
    assert feedback.offer_warning_check
    kinds = set(Alert.objects.values_list("kind", flat=True))
    assert kinds == {Alert.Kind.HIGH_PAIN, Alert.Kind.PAIN_RISING}
    # Alerts are once per kind per day: another bad report today adds none.
    pain(assigned_patient, 9, "back_centre")
    assert Alert.objects.count() == 2


def test_a_small_rise_is_not_a_clear_rise(assigned_patient):
    pain(assigned_patient, 4, "back_centre")
    assert not pain(assigned_patient, 5, "back_centre").pain_rising


def test_more_than_100_reps_today_warns(assigned_patient):
    for _ in range(8):
        log(assigned_patient)
    ninth = pain(assigned_patient, 3, "back_centre")  # 9 x 11 = 99 reps
    assert ninth.reps_today == 99 and not ninth.too_many_reps
    tenth = pain(assigned_patient, 3, "back_centre")  # 110 reps
    assert tenth.reps_today == 110 and tenth.too_many_reps


def test_reps_today_over_100_raises_a_routine_alert(assigned_patient):
    for _ in range(10):
        log(assigned_patient)
    feedback = pain(assigned_patient, 3, "back_centre")
    assert feedback.reps_today == 121 and feedback.too_many_reps
    assert Alert.objects.get().kind == Alert.Kind.TOO_MANY_REPS


def test_pain_is_recorded_once_per_session(assigned_patient):
    session, _ = log(assigned_patient)
    services.pain_report_for_session(session=session, score=3, location="thigh")
    feedback, created = services.pain_report_for_session(
        session=session, score=9, location="below_knee"
    )
    assert not created and feedback.report.score == 3
    assert PainReport.objects.count() == 1


@pytest.mark.parametrize(
    ("signs", "action"),
    [
        ({"bladder": True}, "emergency"),
        ({"bowel": True}, "emergency"),
        ({"saddle_numbness": True}, "call_doctor"),
        ({"leg_weakness": True}, "call_doctor"),
        ({"leg_weakness": True, "bowel": True}, "emergency"),
    ],
)
def test_red_flags_tell_the_patient_and_email_the_therapist_at_once(
    assigned_patient, therapist, signs, action, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        report = services.red_flag_report_create(patient=assigned_patient, **signs)
    assert report.action == action
    alert = Alert.objects.get(kind=Alert.Kind.RED_FLAG)
    assert alert.severity == Alert.Severity.URGENT
    assert alert.period_key == str(report.public_id)
    assert alert.emailed_at is not None
    message = mail.outbox[-1]
    assert message.to == [therapist.email]
    assert message.subject.startswith("[URGENT]")
    assert "URGENT" in message.body
    html = message.alternatives[0].content
    assert "URGENT" in html and "/admin/patients/patient/" in html


def test_a_red_flag_report_needs_a_sign(assigned_patient):
    with pytest.raises(ValueError):
        services.red_flag_report_create(patient=assigned_patient)
    assert not RedFlagReport.objects.exists()


def test_a_failed_email_leaves_the_alert_unsent_for_the_retry(assigned_patient):
    alert = services.alert_raise(
        patient=assigned_patient,
        kind=Alert.Kind.HIGH_PAIN,
        severity="routine",
        period_key="2026-01-01",
        message="x",
    )
    with (
        mock.patch("symptoms.services.EmailMultiAlternatives.send", side_effect=OSError("down")),
        pytest.raises(OSError),
    ):
        services.alert_email_send(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.emailed_at is None
    assert services.alert_email_send(alert_id=alert.pk) is True
    assert services.alert_email_send(alert_id=alert.pk) is False  # never twice
    assert len(mail.outbox) == 1


def test_the_task_retries_transient_smtp_errors_with_a_bound():
    from symptoms.tasks import alert_send_email

    assert alert_send_email.max_retries == 8
    assert OSError in tuple(alert_send_email.autoretry_for) or any(
        issubclass(error, OSError) for error in alert_send_email.autoretry_for
    )


def test_acknowledge_records_who_and_when_once(assigned_patient, therapist):
    alert = services.alert_raise(
        patient=assigned_patient, kind="high_pain", severity="routine", period_key="d", message="m"
    )
    assert services.alert_acknowledge(alert=alert, user=therapist)
    assert not services.alert_acknowledge(alert=alert, user=therapist)
    alert.refresh_from_db()
    assert alert.acknowledged_by == therapist and alert.acknowledged_at is not None


def test_a_broker_outage_does_not_hide_the_emergency_instruction(
    assigned_patient, django_capture_on_commit_callbacks
):
    with (
        mock.patch("symptoms.tasks.alert_send_email.delay", side_effect=ConnectionError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        report = services.red_flag_report_create(patient=assigned_patient, bladder=True)
    assert report.action == "emergency"
    alert = Alert.objects.get(kind=Alert.Kind.RED_FLAG)
    assert alert.emailed_at is None  # left for a later sweep to send


def test_no_relief_after_two_weeks():
    from symptoms.charts import no_relief_after_two_weeks
    from symptoms.selectors import DayProgress

    start = dt.date(2026, 1, 1)

    def days(first, last, span):
        return [
            DayProgress(date=start, pain_score=first),
            DayProgress(date=start + dt.timedelta(days=span), pain_score=last),
        ]

    assert no_relief_after_two_weeks(days(5, 5, 14))
    assert no_relief_after_two_weeks(days(5, 6, 20))
    assert not no_relief_after_two_weeks(days(5, 4, 14))
    assert not no_relief_after_two_weeks(days(5, 5, 13))
    assert not no_relief_after_two_weeks(days(5, 5, 0)[:1])


def test_chart_summaries_in_plain_words():
    from symptoms import charts
    from symptoms.selectors import DayProgress

    d = dt.date(2026, 1, 1)
    history = [
        DayProgress(date=d, sessions_done=6, sessions_prescribed=6, pain_score=6, location="thigh"),
        DayProgress(date=d + dt.timedelta(days=1), sessions_prescribed=6),
        DayProgress(
            date=d + dt.timedelta(days=2),
            sessions_done=3,
            sessions_prescribed=6,
            pain_score=7,
            location="below_knee",
        ),
    ]
    assert charts.pain_summary(history) == "Pain went up from 6 to 7 over 2 days."
    assert "further from your spine" in charts.location_summary(history)
    assert charts.sessions_summary(history) == (
        "Over the last 3 days you did 9 of 18 sessions. You did every session on 1 day."
    )
    svg = str(charts.sessions_chart(history).svg)
    assert svg.startswith("<svg") and "<title" in svg and "<desc" in svg and "style=" not in svg
    assert "1 Jan: 6 of 6 sessions" in svg
    gone = [
        DayProgress(date=d, pain_score=3, location="buttock"),
        DayProgress(date=d + dt.timedelta(days=4), pain_score=0, location="none"),
    ]
    assert charts.location_summary(gone) == (
        "At first your pain reached: Buttock. Now you have no pain."
    )
    assert charts.pain_summary([]) == "No pain scores logged yet."


def test_the_patients_note_reaches_the_therapist_with_the_alert(assigned_patient):
    pain(assigned_patient, 9, "thigh", note="Sharp when I stand up")
    alert = Alert.objects.get(kind=Alert.Kind.HIGH_PAIN)
    assert "Sharp when I stand up" in alert.message
