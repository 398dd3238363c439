"""Every alert rule (symptoms/alerts.py), and that each alert is stored once."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core import mail

from patients import services as patient_services
from patients.selectors import patient_current_assignment
from symptoms import alerts, services
from symptoms.models import Alert

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)  # the program starts on 1 March


def at(days: float, hour: int = 12) -> dt.datetime:
    return START.replace(hour=hour) + dt.timedelta(days=days)


@pytest.fixture
def on_program(patient, therapist, extension_template):
    with time_machine.travel(START, tick=False):
        patient_services.assignment_create(
            patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
        )
    return patient


@pytest.fixture
def on_maintenance(patient, therapist, extension_template):
    """Never overdue, so only the rule under test fires."""
    with time_machine.travel(START, tick=False):
        patient_services.assignment_create(
            patient=patient,
            template=extension_template,
            assigned_by=therapist,
            phase="maintenance",
            sessions_per_day=2,
        )
    return patient


def log(patient, when, score=None, location="back_centre"):
    with time_machine.travel(when, tick=False):
        session, _ = services.session_log(
            patient=patient,
            idempotency_key=uuid.uuid4(),
            assignment=patient_current_assignment(patient),
        )
        if score is not None:
            services.pain_report_for_session(session=session, score=score, location=location)
    return session


def kinds(patient) -> list[str]:
    return sorted(Alert.objects.filter(patient=patient).values_list("kind", flat=True))


def evaluate(days: float, hour: int = 12) -> int:
    return services.alerts_evaluate_time_rules(now=at(days, hour))


# --- Raised when pain is logged ----------------------------------------------------------------


def test_peripheralising_once_a_day(on_program):
    log(on_program, at(1), 3, "buttock")
    log(on_program, at(1, 13), 3, "thigh")
    log(on_program, at(1, 14), 3, "below_knee")  # further again, same day: no second alert
    assert kinds(on_program) == ["peripheralising"]
    log(on_program, at(2), 3, "buttock")  # centralising: no alert
    log(on_program, at(3), 3, "thigh")
    assert kinds(on_program) == ["peripheralising", "peripheralising"]


def test_high_pain_at_8_and_not_at_7(on_program):
    log(on_program, at(1), 7)
    assert kinds(on_program) == []
    log(on_program, at(1, 13), 8)
    log(on_program, at(1, 14), 8)
    assert Alert.objects.get(patient=on_program).kind == "high_pain"


@pytest.mark.parametrize(
    ("history", "score", "rising"),
    [
        ([(0, 3)], 5, True),  # +2 since this morning
        ([(-3, 3), (-1, 5)], 5, True),  # +2 over 3 days, though flat since yesterday
        ([(-4, 3), (-1, 5)], 6, False),  # the 3 came 4 days ago: outside the window
        ([(-2, 4)], 5, False),  # +1 only
        ([], 9, False),  # nothing to compare with
        ([(-1, 6), (-2, 2)], 5, True),  # from the lowest, not the latest
    ],
)
def test_pain_rising_means_2_points_over_the_lowest_of_3_days(on_program, history, score, rising):
    for offset, earlier in history:
        log(on_program, at(5 + offset, 9), earlier, "back_centre")
    Alert.objects.all().delete()
    log(on_program, at(5, 15), score, "back_centre")
    assert ("pain_rising" in kinds(on_program)) is rising


def test_the_patient_sees_the_same_rising_rule_as_the_therapist(on_program):
    log(on_program, at(2, 9), 3)
    log(on_program, at(3, 9), 4)
    session = log(on_program, at(4, 9))
    with time_machine.travel(at(4, 9), tick=False):
        feedback, _ = services.pain_report_for_session(session=session, score=5, location="thigh")
    assert feedback.report.rise_baseline == 3
    assert feedback.pain_rising and feedback.must_stop
    assert "up from 3/10 within the last 3 days" in Alert.objects.get(kind="pain_rising").message


def test_more_than_100_reps_in_a_day_once(on_program):
    for hour in range(9):
        log(on_program, at(1, 8 + hour))  # 9 x 11 = 99 reps
    log(on_program, at(1, 18), 2)
    assert kinds(on_program) == ["too_many_reps"]
    log(on_program, at(1, 19), 2)
    assert kinds(on_program) == ["too_many_reps"]


def test_a_red_flag_is_urgent_and_emailed_at_once_every_report(
    on_program, therapist, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.red_flag_report_create(patient=on_program, bowel=True)
        services.red_flag_report_create(patient=on_program, leg_weakness=True)
    urgent = Alert.objects.filter(kind="red_flag")
    assert urgent.count() == 2 and all(a.severity == "urgent" for a in urgent)
    assert all(a.emailed_at for a in urgent)
    assert [m.to for m in mail.outbox] == [[therapist.email], [therapist.email]]


def test_routine_alerts_are_not_emailed_at_once(on_program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        log(on_program, at(1), 3, "buttock")
        log(on_program, at(1, 14), 9, "below_knee")
    assert set(kinds(on_program)) == {"peripheralising", "high_pain", "pain_rising"}
    assert mail.outbox == []
    assert all(a.severity == "routine" for a in Alert.objects.all())


# --- Raised by the periodic evaluation ---------------------------------------------------


def test_no_sessions_for_3_days_once_per_streak(on_maintenance):
    log(on_maintenance, at(1))  # 2 March
    assert evaluate(4) == 0  # 3 and 4 March empty; 5 March not over yet
    assert evaluate(5) == 1  # 3, 4, 5 March: a streak from 3 March
    alert = Alert.objects.get(kind="no_sessions")
    assert alert.period_key == "2026-03-03" and alert.severity == "routine"
    assert evaluate(6) == 0 and evaluate(12) == 0  # the same streak: no new alert
    log(on_maintenance, at(13))
    assert evaluate(15) == 0
    assert evaluate(17) == 1  # a new streak from 15 March
    assert sorted(
        Alert.objects.filter(kind="no_sessions").values_list("period_key", flat=True)
    ) == ["2026-03-03", "2026-03-15"]


def test_no_sessions_counts_from_the_program_start(on_maintenance):
    assert evaluate(2) == 0
    assert evaluate(3) == 1
    assert Alert.objects.get(kind="no_sessions").period_key == "2026-03-01"


def test_no_sessions_uses_the_patients_own_midnight(on_maintenance):
    on_maintenance.timezone = "Pacific/Auckland"  # UTC+13 in March
    on_maintenance.save()
    log(on_maintenance, at(1, 1))  # 2 March 14:00 in Auckland
    # 5 March 10:00 UTC is 5 March 23:00 in Auckland: 3, 4 March done, 5 March not over.
    assert evaluate(4, 10) == 0
    # 5 March 11:00 UTC is 6 March 00:00 in Auckland: 3, 4, 5 March over.
    assert evaluate(4, 11) == 1


def test_no_improvement_after_14_days_once_per_program(on_maintenance):
    log(on_maintenance, at(0), 5)
    log(on_maintenance, at(7), 3)
    log(on_maintenance, at(13), 5)
    assert evaluate(13) == 0  # day 14 of the program is 14 March; 13 days so far
    for _ in range(2):
        evaluate(14)
        evaluate(20)
    alert = Alert.objects.get(kind="no_improvement")
    assert "pain 5/10 on 2026-03-01, 5/10 on 2026-03-14" in alert.message


def test_improvement_means_no_alert(on_maintenance):
    log(on_maintenance, at(0), 5)
    log(on_maintenance, at(13), 4)
    evaluate(16)
    assert "no_improvement" not in kinds(on_maintenance)


def test_phase_overdue_once_per_phase(on_program, therapist):
    for day in range(10):
        log(on_program, at(day))  # keep no_sessions out of the way
    assert evaluate(4) == 0  # acute day 5 of 3-5
    assert evaluate(5) == 1  # day 6
    assert evaluate(9) == 0
    alert = Alert.objects.get(kind="phase_overdue")
    assert alert.message == "Acute phase on day 6; it typically lasts 3-5 days."
    assignment = on_program.assignments.get()
    with time_machine.travel(at(10), tick=False):
        patient_services.assignment_advance_phase(
            assignment=assignment, changed_by=therapist, reason="Better"
        )
    for day in range(10, 26):
        log(on_program, at(day))
    assert evaluate(23) == 0  # sub-acute day 14 of 7-14
    assert evaluate(24) == 1  # day 15
    assert Alert.objects.filter(kind="phase_overdue").count() == 2


def test_maintenance_is_never_overdue():
    facts = alerts.ProgramFacts(
        program_key="x",
        started_on=dt.date(2025, 1, 1),
        phase="maintenance",
        phase_started_on=dt.date(2025, 1, 1),
        today=dt.date(2026, 1, 1),
        last_session_on=dt.date(2025, 12, 31),
        first_pain=None,
        last_pain=None,
    )
    assert alerts.time_alerts(facts) == []


def test_ended_programs_are_not_evaluated(on_program, therapist):
    assignment = on_program.assignments.get()
    with time_machine.travel(at(1), tick=False):
        patient_services.assignment_end(assignment=assignment, ended_by=therapist, reason="Done")
    assert evaluate(20) == 0
    assert kinds(on_program) == []


def test_the_evaluation_task_runs_the_rules(on_program):
    from symptoms.tasks import alerts_evaluate

    with time_machine.travel(at(10), tick=False):
        assert alerts_evaluate.delay().get() >= 1
    assert "no_sessions" in kinds(on_program)


def test_the_database_refuses_a_duplicate_alert(on_program):
    from django.db import IntegrityError, transaction

    services.alert_raise(
        patient=on_program, kind="high_pain", severity="routine", period_key="k", message="m"
    )
    assert (
        services.alert_raise(
            patient=on_program, kind="high_pain", severity="routine", period_key="k", message="m"
        )
        is None
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            patient=on_program,
            therapist=on_program.therapist,
            kind="high_pain",
            severity="routine",
            period_key="k",
            message="m",
        )
