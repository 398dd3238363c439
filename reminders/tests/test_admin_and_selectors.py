"""Who sees which reminders: the patient's admin page, the slot list, the settings times."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from reminders import services
from reminders.models import ReminderSlot
from reminders.selectors import reminder_times_for_day
from reminders.tests.conftest import utc

pytestmark = pytest.mark.django_db

NOON = utc(2026, 6, 10, 11, 0)  # 12:00 in London


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False):
        yield


@pytest.fixture
def slots(make_patient_on_program):
    """Planned at 06:00 for today and tomorrow; by noon: one sent, one skipped, one failed."""
    with time_machine.travel(utc(2026, 6, 10, 5, 0), tick=False):
        patient = make_patient_on_program(sessions_per_day=6)
        services.reminder_plan_patient(patient=patient)
    today = ReminderSlot.objects.filter(patient=patient, local_date=dt.date(2026, 6, 10))
    today.filter(slot_number=1).update(status="sent", sent_at=utc(2026, 6, 10, 7, 10))
    today.filter(slot_number=2).update(status="skipped", skip_reason="already_logged")
    today.filter(slot_number=3).update(
        status="failed", failure_reason="SMTPRecipientsRefused: 550 No such user"
    )
    # Yesterday's row must not show on the page.
    ReminderSlot.objects.create(
        patient=patient,
        assignment=patient.assignments.get(),
        local_date=dt.date(2026, 6, 9),
        slot_number=1,
        slots_in_day=6,
        local_time=dt.time(8, 10),
        timezone="Europe/London",
        due_at=utc(2026, 6, 9, 7, 10),
        status="sent",
        sent_at=utc(2026, 6, 9, 7, 10),
    )
    return patient


def test_the_patient_page_lists_today_and_tomorrow_with_status_and_reason(client, therapist, slots):
    client.force_login(therapist)
    response = client.get(reverse("admin:patients_patient_change", args=[slots.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Reminder emails today and tomorrow" in body
    inline = next(
        formset for formset in response.context["inline_admin_formsets"]
        if formset.opts.model is ReminderSlot
    )  # fmt: skip
    rows = [form.form.instance for form in inline]
    assert [(r.local_date.day, r.slot_number) for r in rows] == [
        *[(10, n) for n in range(1, 7)],
        *[(11, n) for n in range(1, 7)],
    ]
    assert "Already logged that many sessions today" in body
    assert "SMTPRecipientsRefused: 550 No such user" in body
    assert "1 of 6" in body
    assert "Sent" in body and "Skipped" in body and "Failed" in body and "Planned" in body


def test_saving_the_patient_form_does_not_need_the_reminder_rows(client, therapist, slots):
    client.force_login(therapist)
    response = client.post(
        reverse("admin:patients_patient_change", args=[slots.pk]),
        {
            "therapist": therapist.pk,
            "timezone": "Europe/London",
            "wake_time": "07:00",
            "sleep_time": "21:00",
            "spinal_stenosis": "none",
            "reminders_enabled": "on",
        },
    )
    assert response.status_code == 302


def test_the_slot_list_is_read_only_and_scoped(
    client, therapist, other_therapist, slots, make_patient_on_program
):
    client.force_login(other_therapist)
    assert (
        client.get(
            reverse("admin:reminders_reminderslot_change", args=[slots.reminder_slots.first().pk])
        ).status_code
        == 404
    )
    listing = client.get(reverse("admin:reminders_reminderslot_changelist"))
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 0

    client.force_login(therapist)
    listing = client.get(reverse("admin:reminders_reminderslot_changelist"))
    assert listing.context["cl"].result_count == ReminderSlot.objects.filter(patient=slots).count()
    row = slots.reminder_slots.first()
    page = client.get(reverse("admin:reminders_reminderslot_change", args=[row.pk]))
    assert page.status_code == 200
    assert (
        client.post(
            reverse("admin:reminders_reminderslot_delete", args=[row.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert ReminderSlot.objects.filter(pk=row.pk).exists()
    assert client.get(reverse("admin:reminders_reminderslot_add")).status_code == 403


def test_a_clinic_admin_sees_every_patients_slots(client, clinic_admin, slots):
    client.force_login(clinic_admin)
    listing = client.get(reverse("admin:reminders_reminderslot_changelist"))
    assert listing.context["cl"].result_count == ReminderSlot.objects.count()


def test_reminder_times_for_the_settings_page(slots):
    assert reminder_times_for_day(patient=slots, local_date=dt.date(2026, 6, 10)) == [
        dt.time(8, 10),
        dt.time(10, 30),
        dt.time(12, 50),
        dt.time(15, 10),
        dt.time(17, 30),
        dt.time(19, 50),
    ]
    assert reminder_times_for_day(patient=slots, local_date=dt.date(2026, 6, 12)) == []


def test_reminder_times_leave_out_cancelled_slots(slots, django_capture_on_commit_callbacks):
    from reminders.services import reminder_unsubscribe

    with django_capture_on_commit_callbacks(execute=True):
        reminder_unsubscribe(patient=slots)
    # The three still to come today were cancelled; what already happened stays.
    assert reminder_times_for_day(patient=slots, local_date=dt.date(2026, 6, 10)) == [
        dt.time(8, 10),
        dt.time(10, 30),
        dt.time(12, 50),
    ]
    assert reminder_times_for_day(patient=slots, local_date=dt.date(2026, 6, 11)) == []


def test_the_add_patient_page_has_no_reminder_table(client, therapist):
    client.force_login(therapist)
    response = client.get(reverse("admin:patients_patient_add"))
    assert response.status_code == 200
    assert "Reminder emails today and tomorrow" not in response.content.decode()
