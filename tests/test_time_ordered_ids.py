"""Where the time-ordered ids (accounts/ids.py) are used: the rows written most."""

from __future__ import annotations

from patients.services import assignment_create
from patients.views import session_log_form
from reminders.models import ReminderSlot
from reminders.services import reminder_plan_patient
from symptoms.services import session_log
from tests.factories import PatientFactory


def test_the_busiest_tables_and_the_log_form_use_them(therapist, extension_template):
    patient = PatientFactory(therapist=therapist, reminders_enabled=True)
    assignment_create(
        patient=patient, template=extension_template, assigned_by=therapist, phase="acute"
    )
    patient.refresh_from_db()
    form = session_log_form(patient)
    key = form.initial["idempotency_key"]
    assert key.version == 7
    session, created = session_log(patient=patient, idempotency_key=key)
    assert created
    assert session.public_id.version == 7
    reminder_plan_patient(patient=patient)
    slots = list(ReminderSlot.objects.filter(patient=patient))
    assert slots
    assert {slot.public_id.version for slot in slots} == {7}
