"""The adherence definition (symptoms/adherence.py) and the rollup that serves it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patients import services as patient_services
from patients.models import PhaseChange
from symptoms import adherence, services
from symptoms.adherence import Adherence, Change, adherence_over, prescriptions_for
from symptoms.models import DailyAdherence

D = dt.date(2026, 3, 10)


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


# --- Pure arithmetic -----------------------------------------------------------------------


def test_done_is_capped_at_prescribed_and_the_rest_is_extra():
    assert adherence.split_sessions(logged=8, prescribed=6) == (6, 2)
    assert adherence.split_sessions(logged=3, prescribed=6) == (3, 0)
    assert adherence.split_sessions(logged=2, prescribed=0) == (0, 2)


def test_extra_sessions_never_make_up_for_a_missed_day():
    rows = [(day(-2), 6, 6, 4), (day(-1), 6, 2, 0)]  # 10 logged, then 2
    result = adherence_over(rows, today=D, days=7)
    assert (result.done, result.prescribed, result.extra) == (8, 12, 4)
    assert result.percent == 66 and result.adherent is False


def test_partial_days_count_what_was_done():
    rows = [(day(-i), 5, 4, 0) for i in range(1, 8)]  # 4 of 5 each day: exactly 80%
    result = adherence_over(rows, today=D, days=7)
    assert result.percent == 80 and result.adherent is True
    rows[0] = (day(-1), 5, 3, 0)
    result = adherence_over(rows, today=D, days=7)
    assert (result.done, result.prescribed) == (27, 35)
    assert result.percent == 77 and result.adherent is False


def test_just_under_80_percent_is_not_adherent_and_never_reads_80():
    almost = Adherence(done=399, prescribed=500)  # 79.8%
    assert almost.percent == 79 and almost.adherent is False
    assert Adherence(done=400, prescribed=500).adherent is True


def test_today_is_not_in_the_window_and_old_days_fall_out():
    rows = [(D, 6, 0, 0), (day(-7), 6, 6, 0), (day(-8), 6, 0, 0)]
    week = adherence_over(rows, today=D, days=7)
    assert (week.done, week.prescribed) == (6, 6)
    assert adherence.window(D, 7) == (day(-7), day(-1))


def test_nothing_prescribed_means_no_data_not_zero():
    result = adherence_over([], today=D, days=7)
    assert result.percent is None and result.adherent is None and result.label == "no data"


def test_prescription_follows_the_phase_history_day_by_day():
    changes = [
        Change(day(-10), "assigned", "acute", 8),
        Change(day(-4), "advanced", "sub_acute", 5),
        # Two changes on one day: the later one holds for the whole day.
        Change(day(-2), "sessions_set", "sub_acute", 4),
        Change(day(-2), "sessions_set", "sub_acute", 6),
        Change(day(0), "ended", "sub_acute", 6),
    ]
    got = prescriptions_for(changes, day(-12), day(1))
    assert got[day(-11)].sessions == 0  # before the program
    assert got[day(-10)] == adherence.Prescription("acute", 8)
    assert got[day(-5)].sessions == 8
    assert got[day(-4)] == adherence.Prescription("sub_acute", 5)
    assert got[day(-2)].sessions == 6
    assert got[day(0)].sessions == 0 and got[day(1)].sessions == 0  # ended
    assert adherence.prescription_on(changes, day(-3)).sessions == 5


def test_a_program_replaced_the_same_day_keeps_a_prescription():
    changes = [
        Change(day(-5), "assigned", "acute", 8),
        Change(day(0), "ended", "acute", 8),
        Change(day(0), "assigned", "recovery", 3),
    ]
    assert adherence.prescription_on(changes, day(0)) == adherence.Prescription("recovery", 3)


def test_a_phase_change_mid_window_weights_each_day_by_its_own_prescription():
    changes = [
        Change(day(-10), "assigned", "acute", 8),
        Change(day(-3), "advanced", "sub_acute", 4),
    ]
    prescribed = prescriptions_for(changes, day(-7), day(-1))
    logged = {d: 4 for d in prescribed}  # four sessions every day
    rows = []
    for d, p in prescribed.items():
        done, extra = adherence.split_sessions(logged=logged[d], prescribed=p.sessions)
        rows.append((d, p.sessions, done, extra))
    week = adherence_over(rows, today=D, days=7)
    # 4 days at 8 (16 of 32) + 3 days at 4 (12 of 12) = 28 of 44.
    assert (week.done, week.prescribed) == (28, 44) and week.percent == 63


def test_day_in_phase_against_the_typical_duration():
    progress = adherence.phase_progress(phase="acute", started_on=day(-5), today=D)
    assert progress.day == 6 and progress.overdue
    assert progress.label == "Acute, day 6 of 3-5: review the phase"
    assert not adherence.phase_progress(phase="acute", started_on=day(-4), today=D).overdue
    ongoing = adherence.phase_progress(phase="maintenance", started_on=day(-90), today=D)
    assert ongoing.label == "Maintenance, day 91 (ongoing)" and not ongoing.overdue


# --- The rollup, kept current by the services -----------------------------------------------


pytestmark_db = pytest.mark.django_db


def log(patient, *, score=None, location="back_centre"):
    from patients.selectors import patient_current_assignment

    session, _ = services.session_log(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        assignment=patient_current_assignment(patient),
    )
    if score is not None:
        services.pain_report_for_session(session=session, score=score, location=location)
    return session


def row(patient, local_date) -> DailyAdherence:
    return DailyAdherence.objects.get(patient=patient, local_date=local_date)


@pytest.fixture
def on_program(patient, therapist, extension_template):
    """The patient on the extension program (acute, 6 a day) since 1 March 2026."""
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), tick=False):
        patient_services.assignment_create(
            patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
        )
    return patient


@pytestmark_db
def test_every_session_and_pain_report_updates_the_days_row(on_program):
    with time_machine.travel(dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC), tick=False):
        log(on_program, score=6, location="thigh")
        log(on_program, score=4, location="buttock")
        log(on_program)
    today = row(on_program, D)
    assert (today.prescribed, today.done, today.extra, today.phase) == (6, 3, 0, "acute")
    assert today.reps == 33
    assert (today.pain_first, today.pain_last, today.pain_min, today.pain_max) == (6, 4, 4, 6)
    assert today.location == "thigh"  # the most distal of the day
    assert today.last_session_at == dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)


@pytestmark_db
def test_extra_sessions_are_kept_apart_in_the_rollup(assigned_patient):
    for _ in range(8):
        log(assigned_patient)
    today = DailyAdherence.objects.get(patient=assigned_patient)
    assert (today.prescribed, today.done, today.extra) == (6, 6, 2)


@pytestmark_db
def test_the_rollup_uses_the_patients_own_date(on_program):
    on_program.timezone = "America/Los_Angeles"
    on_program.save()
    # 03:00 UTC on 11 March is still 10 March in Los Angeles (UTC-7 after DST on 8 March).
    with time_machine.travel(dt.datetime(2026, 3, 11, 3, tzinfo=dt.UTC), tick=False):
        log(on_program)
    assert row(on_program, D).done == 1
    assert not DailyAdherence.objects.filter(patient=on_program, local_date=day(1)).exists()


@pytestmark_db
def test_a_mid_day_phase_change_recaps_today(
    on_program, therapist, django_capture_on_commit_callbacks
):
    assignment = on_program.assignments.get()
    with time_machine.travel(dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC), tick=False):
        for _ in range(6):
            log(on_program)
        assert (row(on_program, D).done, row(on_program, D).extra) == (6, 0)
        # Moved on to sub-acute at 4 a day: today is prescribed 4, so two are extra.
        with django_capture_on_commit_callbacks(execute=True):
            patient_services.assignment_advance_phase(
                assignment=assignment,
                changed_by=therapist,
                reason="Centralised",
                sessions_per_day=4,
            )
    today = row(on_program, D)
    assert (today.phase, today.prescribed, today.done, today.extra) == ("sub_acute", 4, 4, 2)


@pytestmark_db
def test_materialise_adds_zero_rows_for_prescribed_days_without_sessions(assigned_patient):
    assignment = assigned_patient.assignments.get()
    start = assignment.started_on
    later = dt.datetime.combine(start + dt.timedelta(days=5), dt.time(12), tzinfo=dt.UTC)
    log(assigned_patient)  # day 1
    written = services.adherence_materialise(now=later)
    dates = set(
        DailyAdherence.objects.filter(patient=assigned_patient).values_list("local_date", flat=True)
    )
    # Today and the 3 days before it; older gaps are the rebuild command's job.
    assert dates == {start + dt.timedelta(days=i) for i in (0, 2, 3, 4, 5)}
    assert written == 4
    empty = row(assigned_patient, start + dt.timedelta(days=4))
    assert (empty.prescribed, empty.done, empty.extra) == (6, 0, 0)
    assert row(assigned_patient, start).done == 1  # the logged day is left as it was
    services.adherence_materialise(now=later)  # again: nothing changes
    assert DailyAdherence.objects.filter(patient=assigned_patient).count() == len(dates)


@pytestmark_db
def test_the_rebuild_command_backfills_rows_written_behind_the_services_back(assigned_patient):
    from symptoms.models import SessionLog

    session = log(assigned_patient)
    yesterday = session.local_date - dt.timedelta(days=1)
    SessionLog.objects.filter(pk=session.pk).update(local_date=yesterday)  # e.g. seed_demo
    DailyAdherence.objects.all().delete()
    call_command("adherence_rebuild", "--days", "5")
    assert row(assigned_patient, yesterday).extra == 1  # before the program: nothing prescribed
    assert row(assigned_patient, session.local_date).prescribed == 6


# --- Property: the rollup always agrees with a rebuild from the records ------------------------


@pytestmark_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4),  # day offset
            st.integers(min_value=0, max_value=3),  # sessions that day
            st.one_of(st.none(), st.integers(min_value=0, max_value=10)),  # pain score
            st.sampled_from(["none", "back_centre", "buttock", "thigh", "below_knee"]),
            st.booleans(),  # change sessions/day after logging
        ),
        max_size=6,
    )
)
def test_the_rollup_matches_a_rebuild_from_scratch(on_program, therapist, events):
    from symptoms.models import Alert, PainReport, SessionLog

    patient = on_program
    assignment = patient.assignments.get()
    # Hypothesis runs many examples in one test transaction: start each afresh.
    for model in (Alert, PainReport, SessionLog, DailyAdherence):
        model.objects.filter(patient=patient).delete()
    PhaseChange.objects.filter(assignment=assignment).exclude(kind="assigned").delete()
    assignment.sessions_per_day = 6
    assignment.save()

    base = dt.datetime(2026, 3, 8, 10, tzinfo=dt.UTC)
    for offset, count, score, location, change in sorted(events, key=lambda e: e[0]):
        with time_machine.travel(base + dt.timedelta(days=offset), tick=False):
            for _ in range(count):
                log(patient, score=score, location=location)
            if change:
                assignment.refresh_from_db()
                target = 8 if assignment.sessions_per_day != 8 else 7
                patient_services.assignment_set_sessions_per_day(
                    assignment=assignment, sessions_per_day=target, changed_by=therapist, reason="r"
                )
                # What the schedule_changed receiver does after the commit.
                services.adherence_program_changed(patient=patient)
    fields = ["local_date", "phase", "prescribed", "done", "extra", "reps"]
    fields += ["pain_first", "pain_last", "pain_min", "pain_max", "location", "last_session_at"]
    rows = DailyAdherence.objects.filter(patient=patient).order_by("local_date")
    kept = list(rows.values_list(*fields))
    # Only days something happened on: the rollup never had to invent the others.
    touched = {row[0] for row in kept}
    services.adherence_rebuild(
        patient=patient, first=dt.date(2026, 3, 1), last=dt.date(2026, 3, 20)
    )
    rebuilt = [r for r in rows.values_list(*fields) if r[0] in touched]
    assert kept == rebuilt


@pytestmark_db
def test_a_rollup_failure_never_breaks_a_program_change(
    on_program, therapist, django_capture_on_commit_callbacks, caplog
):
    from unittest import mock

    assignment = on_program.assignments.get()
    with (
        mock.patch(
            "symptoms.receivers.adherence_program_changed", side_effect=RuntimeError("boom")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        patient_services.assignment_set_sessions_per_day(
            assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
        )
    assignment.refresh_from_db()
    assert assignment.sessions_per_day == 8
    assert "Could not update the adherence rollup" in caplog.text
