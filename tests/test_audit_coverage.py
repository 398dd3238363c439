"""Every admin page that shows a patient's records leaves a row in the audit trail.

A ModelAdmin for a model holding a patient's records (the patient itself, or
anything with a ``patient`` foreign key) must use ``AuditedAdminMixin``; and
opening such a record, or its list, as a therapist is recorded with who,
which patient and from where.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.admin_mixins import AuditedAdminMixin
from audit.models import AuditEvent
from patients.models import Patient

pytestmark = pytest.mark.django_db


def patient_record_admins():
    for model, model_admin in admin.site._registry.items():
        if model is AuditEvent:  # the trail itself: clinic admins only, read-only
            continue
        fields = {f.name for f in model._meta.get_fields()}
        if model is Patient or (
            "patient" in fields and model._meta.get_field("patient").many_to_one
        ):
            yield model, model_admin


def test_every_admin_of_patient_records_is_audited():
    found = list(patient_record_admins())
    assert len(found) >= 7  # patient, assignment, sessions, pain, red flags, alerts, reminders
    unaudited = [m._meta.label for m, a in found if not isinstance(a, AuditedAdminMixin)]
    assert unaudited == [], f"Admins showing patient records without AuditedAdminMixin: {unaudited}"


@pytest.fixture
def records(patient, therapist, extension_template):
    from patients import services as patient_services
    from reminders.models import ReminderSlot
    from reminders.services import reminder_plan_patient
    from symptoms import services as symptom_services
    from symptoms.models import Alert

    Patient.objects.filter(pk=patient.pk).update(reminders_enabled=True)
    patient.refresh_from_db()
    assignment = patient_services.assignment_create(
        patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
    )
    session, _ = symptom_services.session_log(
        patient=patient, idempotency_key=uuid.uuid4(), assignment=assignment
    )
    symptom_services.pain_report_for_session(session=session, score=9, location="thigh")
    flag = symptom_services.red_flag_report_create(patient=patient, bowel=True)
    reminder_plan_patient(patient=patient)
    return {
        Patient: patient,
        type(assignment): assignment,
        type(session): session,
        type(session.pain): session.pain,
        type(flag): flag,
        Alert: Alert.objects.filter(patient=patient).first(),
        ReminderSlot: ReminderSlot.objects.filter(patient=patient).first(),
    }


def test_opening_and_listing_each_kind_of_record_is_recorded(client, therapist, patient, records):
    client.force_login(therapist)
    for model, _model_admin in patient_record_admins():
        obj = records[model]
        opts = model._meta
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        response = client.get(change, REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="audit-test")
        assert response.status_code == 200, opts.label
        event = AuditEvent.objects.filter(action="view", object_type=opts.label).latest("id")
        assert (event.actor, event.patient, event.patient_ref) == (
            therapist,
            patient,
            str(patient.public_id),
        ), opts.label
        assert (event.ip, event.user_agent, event.path) == ("192.0.2.7", "audit-test", change)

        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200
        listed = AuditEvent.objects.filter(action="list").latest("id")
        assert listed.detail["model"] == opts.label
        assert str(patient.public_id) in listed.detail["patients"]
