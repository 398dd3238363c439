"""Session logs, pain, warning signs and alerts in the admin: read-only and scoped."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from symptoms import services
from symptoms.models import Alert, SessionLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(assigned_patient, other_assigned_patient):
    made = {}
    for patient in (assigned_patient, other_assigned_patient):
        session, _ = services.session_log(
            patient=patient, idempotency_key=uuid.uuid4(), assignment=None
        )
        services.pain_report_for_session(session=session, score=8, location="thigh")
        services.red_flag_report_create(patient=patient, leg_weakness=True)
        made[patient.pk] = session
    return made


MODELS = ["sessionlog", "painreport", "redflagreport", "alert"]


@pytest.mark.parametrize("model", MODELS)
def test_therapist_sees_only_their_own_patients_rows(
    client, therapist, assigned_patient, other_assigned_patient, rows, model
):
    client.force_login(therapist)
    response = client.get(reverse(f"admin:symptoms_{model}_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pat Patient" in body and "Olive Other" not in body
    theirs = response.context["cl"].model.objects.filter(patient=other_assigned_patient).first()
    change = reverse(f"admin:symptoms_{model}_change", args=[theirs.pk])
    assert client.get(change).status_code == 404
    mine = response.context["cl"].model.objects.filter(patient=assigned_patient).first()
    page = client.get(reverse(f"admin:symptoms_{model}_change", args=[mine.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # read-only
    assert client.get(reverse(f"admin:symptoms_{model}_add")).status_code == 403


def test_clinic_admin_sees_everyone(client, clinic_admin, rows):
    client.force_login(clinic_admin)
    body = client.get(reverse("admin:symptoms_alert_changelist")).content.decode()
    assert "Pat Patient" in body and "Olive Other" in body


def test_acknowledge_action_records_who_and_when(client, therapist, assigned_patient, rows):
    client.force_login(therapist)
    alerts = Alert.objects.filter(patient=assigned_patient)
    assert alerts.count() == 2  # high pain and the red flag
    response = client.post(
        reverse("admin:symptoms_alert_changelist"),
        {"action": "acknowledge", "_selected_action": [a.pk for a in Alert.objects.all()]},
        follow=True,
    )
    assert "2 alerts acknowledged" in response.content.decode()
    assert all(a.acknowledged_by == therapist for a in alerts)
    # The other therapist's alerts were out of scope and stay open.
    assert Alert.objects.filter(acknowledged_at__isnull=True).count() == 2


def test_patients_cannot_open_the_admin(client, assigned_patient, rows):
    client.force_login(assigned_patient.user)
    response = client.get(reverse("admin:symptoms_sessionlog_changelist"))
    assert response.status_code == 302
    assert SessionLog.objects.count() == 2
