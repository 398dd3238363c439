"""Planning rows in the database, and re-planning after every kind of change.

Changes go through the real services (patients.services), whose
``schedule_changed`` signal fires on commit and re-plans the patient.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from patients import services as patient_services
from programs.phases import GUIDELINES
from reminders.models import ReminderSlot
from reminders.services import reminder_plan_all, reminder_plan_patient
from reminders.tests.conftest import utc

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 10)  # London is on BST (UTC+1)
TOMORROW = TODAY + dt.timedelta(days=1)
EARLY = utc(2026, 6, 10, 5, 0)  # 06:00 in London, before anyone's first reminder
NOON = utc(2026, 6, 10, 11, 0)  # 12:00 in London


def live(patient, day):
    """(slot, of, HH:MM, status) of the day's rows that are not cancelled."""
    rows = (
        ReminderSlot.objects.filter(patient=patient, local_date=day)
        .exclude(status="cancelled")
        .order_by("due_at")
    )
    return [(r.slot_number, r.slots_in_day, f"{r.local_time:%H:%M}", r.status) for r in rows]


def times(patient, day):
    return [t for _n, _of, t, _s in live(patient, day)]


def cancelled(patient):
    return ReminderSlot.objects.filter(patient=patient, status="cancelled")


EVERY_PHASE_AND_COUNT = [(g.phase.value, n) for g in GUIDELINES.values() for n in g.sessions_range]


@pytest.mark.parametrize(("phase", "count"), EVERY_PHASE_AND_COUNT)
def test_one_row_per_slot_today_and_tomorrow_for_every_phase_and_count(
    make_patient_on_program, phase, count
):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(phase=phase, sessions_per_day=count)
        reminder_plan_patient(patient=patient)
    for day in (TODAY, TOMORROW):
        rows = live(patient, day)
        assert [n for n, *_ in rows] == list(range(1, count + 1))
        assert {of for _n, of, *_ in rows} == {count}
        assert {status for *_, status in rows} == {"planned"}
    assert ReminderSlot.objects.filter(patient=patient).count() == 2 * count


def test_rows_carry_the_utc_instant_zone_and_program(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(timezone="America/New_York", sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    first = ReminderSlot.objects.filter(patient=patient).order_by("due_at").first()
    assert (first.local_date, first.local_time) == (dt.date(2026, 6, 10), dt.time(8, 10))
    assert first.due_at == utc(2026, 6, 10, 12, 10)
    assert first.timezone == "America/New_York"
    assert first.assignment == patient.assignments.get()


def test_today_and_tomorrow_are_the_patients_own_dates(make_patient_on_program):
    # 23:30 UTC on 9 June is already 10 June in Sydney.
    with time_machine.travel(utc(2026, 6, 9, 23, 30), tick=False):
        patient = make_patient_on_program(timezone="Australia/Sydney", sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    dates = set(ReminderSlot.objects.filter(patient=patient).values_list("local_date", flat=True))
    assert dates == {dt.date(2026, 6, 10), dt.date(2026, 6, 11)}
    # 09:30 local: the 08:10 slot has passed and is not created.
    assert times(patient, dt.date(2026, 6, 10)) == ["10:30", "12:50", "15:10", "17:30", "19:50"]


def test_the_waking_window_decides_the_times(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(
            wake=dt.time(9, 0), sleep=dt.time(17, 0), phase="recovery", sessions_per_day=4
        )
        reminder_plan_patient(patient=patient)
    assert times(patient, TOMORROW) == ["10:00", "12:00", "14:00", "16:00"]


def test_slots_already_past_today_are_not_created(make_patient_on_program):
    with time_machine.travel(NOON, tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    assert live(patient, TODAY) == [
        (3, 6, "12:50", "planned"),
        (4, 6, "15:10", "planned"),
        (5, 6, "17:30", "planned"),
        (6, 6, "19:50", "planned"),
    ]
    assert len(live(patient, TOMORROW)) == 6


def test_planning_again_changes_nothing(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=8)
        reminder_plan_patient(patient=patient)
        before = list(ReminderSlot.objects.order_by("pk").values_list("pk", "due_at", "status"))
        again = reminder_plan_patient(patient=patient)
        everyone = reminder_plan_all()
    after = list(ReminderSlot.objects.order_by("pk").values_list("pk", "due_at", "status"))
    assert after == before
    assert (again.created, again.cancelled) == (0, 0)
    assert (everyone.created, everyone.cancelled) == (0, 0)


def test_the_unique_constraint_refuses_a_second_live_row(make_patient_on_program):
    from django.db import IntegrityError, transaction

    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    row = ReminderSlot.objects.filter(patient=patient).first()
    copy = ReminderSlot(
        patient=patient,
        assignment=row.assignment,
        local_date=row.local_date,
        slot_number=row.slot_number,
        slots_in_day=row.slots_in_day,
        local_time=row.local_time,
        timezone=row.timezone,
        due_at=row.due_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()


def test_plan_all_covers_eligible_patients_only(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        on = make_patient_on_program(sessions_per_day=6)
        off = make_patient_on_program(sessions_per_day=6, reminders_enabled=False)
        result = reminder_plan_all(batch_size=1)
    assert result.created == 12
    assert ReminderSlot.objects.filter(patient=on).count() == 12
    assert not ReminderSlot.objects.filter(patient=off).exists()


def test_a_program_starting_tomorrow_gets_slots_from_tomorrow(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=6, start_date=TOMORROW)
        reminder_plan_patient(patient=patient)
    assert live(patient, TODAY) == []
    assert len(live(patient, TOMORROW)) == 6


# --- re-planning after changes ------------------------------------------------------


@pytest.fixture
def make_midday(make_patient_on_program, django_capture_on_commit_callbacks):
    """Planned early (through the signal); at noon slot 1 was sent and 2 is sending."""
    travellers = []

    def make(sessions_per_day: int = 6):
        with (
            time_machine.travel(EARLY, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            patient = make_patient_on_program(phase="acute", sessions_per_day=sessions_per_day)
        # Planned by the schedule_changed receiver.
        assert len(live(patient, TODAY)) == sessions_per_day
        rows = ReminderSlot.objects.filter(patient=patient, local_date=TODAY)
        rows.filter(slot_number=1).update(
            status="sent", sent_at=utc(2026, 6, 10, 7, 0), message_id="<x@y>"
        )
        rows.filter(slot_number=2).update(
            status="sending", claimed_at=utc(2026, 6, 10, 9, 0), claim_token="0" * 32
        )
        traveller = time_machine.travel(NOON, tick=False)
        traveller.start()
        travellers.append(traveller)
        return patient

    yield make
    for traveller in travellers:
        traveller.stop()


@pytest.fixture
def midday_patient(make_midday):
    return make_midday(6)


DONE_TODAY = [(1, 6, "08:10", "sent"), (2, 6, "10:30", "sending")]


def test_sessions_per_day_down(make_midday, therapist, django_capture_on_commit_callbacks):
    patient = make_midday(8)
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_set_sessions_per_day(
            assignment=patient.assignments.get(),
            sessions_per_day=6,
            changed_by=therapist,
            reason="Fewer",
        )
    # New plan for 6: 08:10 10:30 12:50 15:10 17:30 19:50. Slots 1 and 2 were
    # already taken (sent/sending rows are left alone), so today gets 3..6 of 6.
    assert live(patient, TODAY) == [
        (1, 8, "07:55", "sent"),
        (2, 8, "09:40", "sending"),
        (3, 6, "12:50", "planned"),
        (4, 6, "15:10", "planned"),
        (5, 6, "17:30", "planned"),
        (6, 6, "19:50", "planned"),
    ]
    assert times(patient, TOMORROW) == ["08:10", "10:30", "12:50", "15:10", "17:30", "19:50"]
    assert set(cancelled(patient).values_list("skip_reason", flat=True)) == {"schedule_changed"}
    # Today's 3..8 of 8 and tomorrow's eight.
    assert cancelled(patient).count() == 6 + 8


def test_phase_set_to_fewer_sessions(midday_patient, therapist, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_set_phase(
            assignment=midday_patient.assignments.get(),
            phase="sub_acute",
            sessions_per_day=4,
            changed_by=therapist,
            reason="Settling",
        )
    # New plan for 4: 08:45, 12:15, 15:45, 19:15. Slots 1 and 2 are taken.
    assert live(midday_patient, TODAY) == [
        *DONE_TODAY,
        (3, 4, "15:45", "planned"),
        (4, 4, "19:15", "planned"),
    ]
    assert times(midday_patient, TOMORROW) == ["08:45", "12:15", "15:45", "19:15"]


def test_sessions_per_day_up(midday_patient, therapist, django_capture_on_commit_callbacks):
    assignment = midday_patient.assignments.get()
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_set_sessions_per_day(
            assignment=assignment, sessions_per_day=8, changed_by=therapist, reason="More"
        )
    # New plan for 8: 07:55 09:40 11:25 13:10 14:55 16:40 18:25 20:10. Slot 3
    # (11:25) has passed; 4..8 are still to come.
    assert live(midday_patient, TODAY) == [
        *DONE_TODAY,
        (4, 8, "13:10", "planned"),
        (5, 8, "14:55", "planned"),
        (6, 8, "16:40", "planned"),
        (7, 8, "18:25", "planned"),
        (8, 8, "20:10", "planned"),
    ]
    assert len(live(midday_patient, TOMORROW)) == 8


def test_phase_advance(midday_patient, therapist, django_capture_on_commit_callbacks):
    assignment = midday_patient.assignments.get()
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_advance_phase(
            assignment=assignment, changed_by=therapist, reason="Better", sessions_per_day=5
        )
    # Sub-acute, 5 a day: 08:25 11:10 14:00 16:50 19:35.
    assert live(midday_patient, TODAY) == [
        *DONE_TODAY,
        (3, 5, "14:00", "planned"),
        (4, 5, "16:50", "planned"),
        (5, 5, "19:35", "planned"),
    ]
    assert times(midday_patient, TOMORROW) == ["08:25", "11:10", "14:00", "16:50", "19:35"]


def test_phase_set_back_to_acute_from_recovery(
    make_patient_on_program, therapist, django_capture_on_commit_callbacks
):
    with time_machine.travel(EARLY, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            patient = make_patient_on_program(phase="recovery", sessions_per_day=3)
        assert times(patient, TODAY) == ["09:20", "14:00", "18:40"]
        with django_capture_on_commit_callbacks(execute=True):
            patient_services.assignment_set_phase(
                assignment=patient.assignments.get(),
                phase="acute",
                sessions_per_day=10,
                changed_by=therapist,
                reason="Flare-up",
            )
    assert len(live(patient, TODAY)) == 10
    assert len(live(patient, TOMORROW)) == 10


def test_waking_hours(midday_patient, django_capture_on_commit_callbacks):
    midday_patient.wake_time = dt.time(9, 0)
    midday_patient.sleep_time = dt.time(23, 0)
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.patient_update(
            patient=midday_patient, changed_fields=["wake_time", "sleep_time"]
        )
    # Same 6 a day, two hours later: 10:10 12:30 14:50 17:10 19:30 21:50.
    assert live(midday_patient, TODAY) == [
        *DONE_TODAY,
        (3, 6, "14:50", "planned"),
        (4, 6, "17:10", "planned"),
        (5, 6, "19:30", "planned"),
        (6, 6, "21:50", "planned"),
    ]
    assert times(midday_patient, TOMORROW) == ["10:10", "12:30", "14:50", "17:10", "19:30", "21:50"]


def test_timezone(midday_patient, django_capture_on_commit_callbacks):
    midday_patient.timezone = "America/New_York"
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.patient_update(patient=midday_patient, changed_fields=["timezone"])
    # It is 07:00 on 10 June in New York: slots 3..6 of today (New York time)
    # and all of tomorrow, at New York wall times.
    rows = ReminderSlot.objects.filter(patient=midday_patient, status="planned")
    assert {row.timezone for row in rows} == {"America/New_York"}
    assert live(midday_patient, TODAY)[2:] == [
        (3, 6, "12:50", "planned"),
        (4, 6, "15:10", "planned"),
        (5, 6, "17:30", "planned"),
        (6, 6, "19:50", "planned"),
    ]
    first_new = rows.filter(local_date=TODAY).order_by("due_at").first()
    assert first_new.due_at == utc(2026, 6, 10, 16, 50)  # 12:50 EDT
    assert live(midday_patient, TODAY)[:2] == DONE_TODAY


def test_pause_until_today(midday_patient, django_capture_on_commit_callbacks):
    midday_patient.reminders_paused_until = TODAY
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.patient_update(
            patient=midday_patient, changed_fields=["reminders_paused_until"]
        )
    assert live(midday_patient, TODAY) == DONE_TODAY
    assert len(live(midday_patient, TOMORROW)) == 6  # the pause ends tonight
    # Lifting the pause brings today's remaining slots back.
    midday_patient.reminders_paused_until = None
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.patient_update(
            patient=midday_patient, changed_fields=["reminders_paused_until"]
        )
    assert len(live(midday_patient, TODAY)) == 6


def test_unsubscribe(midday_patient, django_capture_on_commit_callbacks):
    from reminders.services import reminder_unsubscribe

    with django_capture_on_commit_callbacks(execute=True):
        assert reminder_unsubscribe(patient=midday_patient) is True
    assert live(midday_patient, TODAY) == DONE_TODAY
    assert live(midday_patient, TOMORROW) == []
    midday_patient.refresh_from_db()
    assert midday_patient.reminders_enabled is False
    assert midday_patient.reminder_consent_at is None


def test_program_ended(midday_patient, therapist, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.assignment_end(
            assignment=midday_patient.assignments.get(), ended_by=therapist, reason="Discharged"
        )
    assert live(midday_patient, TODAY) == DONE_TODAY
    assert live(midday_patient, TOMORROW) == []


def test_program_replaced(
    midday_patient, therapist, flexion_template, django_capture_on_commit_callbacks
):
    old = midday_patient.assignments.get()
    with django_capture_on_commit_callbacks(execute=True):
        new = patient_services.assignment_create(
            patient=midday_patient,
            template=flexion_template,
            assigned_by=therapist,
            phase="maintenance",
            sessions_per_day=2,
        )
    # Maintenance, 2 a day: 10:30 and 17:30. Slot 2 is taken, so today only
    # the 17:30 slot is new; tomorrow both, all on the new program.
    assert live(midday_patient, TODAY) == [*DONE_TODAY]
    assert times(midday_patient, TOMORROW) == ["10:30", "17:30"]
    planned = ReminderSlot.objects.filter(patient=midday_patient, status="planned")
    assert {row.assignment_id for row in planned} == {new.pk}
    assert not ReminderSlot.objects.filter(assignment=old, status="planned").exists()


def test_plan_all_heals_a_missed_replan(midday_patient):
    """If the signal's re-plan was lost, the periodic plan cancels what no longer fits."""
    type(midday_patient).objects.filter(pk=midday_patient.pk).update(reminders_enabled=False)
    result = reminder_plan_all()
    assert result.cancelled == 4 + 6
    assert live(midday_patient, TOMORROW) == []


# --- how new rows are written ------------------------------------------------------------


def test_new_rows_have_what_the_model_defaults_give(make_patient_on_program):
    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    rows = list(ReminderSlot.objects.filter(patient=patient))
    assert len(rows) == 12
    assert len({row.public_id for row in rows}) == 12
    for row in rows:
        assert (row.status, row.skip_reason, row.failure_reason, row.message_id) == (
            "planned",
            "",
            "",
            "",
        )
        assert (row.attempts, row.claim_token, row.claimed_at, row.sent_at) == (0, None, None, None)
        assert row.created_at == row.updated_at == EARLY
        assert row.assignment_id == patient.assignments.get().pk
        assert row.timezone == patient.timezone


def test_inserting_a_slot_that_is_already_there_keeps_the_first(make_patient_on_program):
    """The patient lock keeps planners apart; should a row be there anyway, it wins."""
    from reminders.services import _insert_planned

    with time_machine.travel(EARLY, tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        reminder_plan_patient(patient=patient)
    first = ReminderSlot.objects.get(patient=patient, local_date=TODAY, slot_number=1)
    row = (
        patient.pk,
        first.assignment_id,
        TODAY,
        1,
        6,
        first.local_time,
        patient.timezone,
        first.due_at,
    )
    other = (patient.pk, first.assignment_id, TODAY + dt.timedelta(days=2), 1, 6,
             first.local_time, patient.timezone, first.due_at + dt.timedelta(days=2))  # fmt: skip
    _insert_planned([row, other], now=NOON)
    assert ReminderSlot.objects.get(patient=patient, local_date=TODAY, slot_number=1) == first
    assert ReminderSlot.objects.filter(
        patient=patient, local_date=TODAY + dt.timedelta(days=2)
    ).exists()
