"""`manage.py reminder_schedule EMAIL DATE`: the times, and nothing else happens."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from patients.models import Patient
from reminders.models import ReminderSlot
from reminders.tests.conftest import utc

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reminder_schedule", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(utc(2026, 3, 1, 12, 0), tick=False):
        yield


def test_prints_the_local_times_one_per_line(make_patient_on_program, mailoutbox):
    make_patient_on_program(
        email="pat@patients.test", timezone="America/New_York", sessions_per_day=6
    )
    out, err = run("pat@patients.test", "2026-06-10")
    assert out == "08:10\n10:30\n12:50\n15:10\n17:30\n19:50\n"
    assert err == ""
    assert not ReminderSlot.objects.exists()
    assert mailoutbox == []


def test_a_spring_forward_night_in_new_york(make_patient_on_program):
    make_patient_on_program(
        email="night@patients.test",
        timezone="America/New_York",
        wake=dt.time(1, 0),
        sleep=dt.time(5, 0),
        phase="recovery",
        sessions_per_day=4,
    )
    out, _err = run("NIGHT@patients.test", "2026-03-08")
    assert out.splitlines() == ["01:30", "03:00", "03:30", "04:30"]


def test_uses_the_current_assignment(make_patient_on_program, therapist):
    from patients import services as patient_services

    patient = make_patient_on_program(email="pat@patients.test", sessions_per_day=6)
    patient_services.assignment_advance_phase(
        assignment=patient.assignments.get(),
        changed_by=therapist,
        reason="Better",
        sessions_per_day=4,
    )
    out, _err = run("pat@patients.test", "2026-06-10")
    assert out.splitlines() == ["08:45", "12:15", "15:45", "19:15"]


def test_notes_go_to_stderr_when_reminders_are_off(make_patient_on_program):
    make_patient_on_program(email="pat@patients.test", sessions_per_day=6, reminders_enabled=False)
    out, err = run("pat@patients.test", "2026-06-10")
    assert len(out.splitlines()) == 6
    assert "switched off" in err


def test_notes_a_pause(make_patient_on_program):
    patient = make_patient_on_program(email="pat@patients.test", sessions_per_day=6)
    Patient.objects.filter(pk=patient.pk).update(reminders_paused_until=dt.date(2026, 6, 12))
    _out, err = run("pat@patients.test", "2026-06-10")
    assert "paused until 2026-06-12" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody@patients.test", "2026-06-10"), "No patient"),
        (("pat@patients.test", "10/06/2026"), "is not a date"),
        (("pat@patients.test", "2026-02-30"), "is not a date"),
    ],
)
def test_clear_errors(make_patient_on_program, args, message):
    make_patient_on_program(email="pat@patients.test")
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_no_program_is_an_error(patient):
    with pytest.raises(CommandError, match="no active program"):
        run(patient.user.email, "2026-06-10")
