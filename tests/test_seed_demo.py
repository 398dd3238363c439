import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import User
from patients.models import Assignment, Patient, PhaseChange

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        User.objects.count(),
        Patient.objects.count(),
        Assignment.objects.count(),
        PhaseChange.objects.count(),
    )


@override_settings(DEBUG=True)
def test_seed_demo_creates_the_demo_logins_and_is_idempotent(client):
    call_command("seed_demo")
    first = _snapshot()
    call_command("seed_demo")
    assert _snapshot() == first

    admin = User.objects.get(email="admin@example.com")
    therapist = User.objects.get(email="therapist@example.com")
    assert admin.is_clinic_admin and not admin.is_therapist
    assert therapist.is_therapist and not therapist.is_clinic_admin
    for email in ("admin@example.com", "therapist@example.com", "patient@example.com"):
        assert User.objects.get(email=email).check_password("demo-pass-2026")

    patient = Patient.objects.get(user__email="patient@example.com")
    assert patient.therapist == therapist
    assignment = Assignment.objects.get(patient=patient, status="active")
    assert (assignment.template.slug, assignment.current_phase) == ("mckenzie-extension", "acute")

    assert client.login(email="therapist@example.com", password="demo-pass-2026")
    response = client.get("/admin/patients/patient/")
    assert response.status_code == 200
    assert "Pat Patient" in response.content.decode()
    assert "Olive Other" not in response.content.decode()


@override_settings(DEBUG=False)
def test_seed_demo_refuses_without_debug():
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo")
    assert not User.objects.filter(email="admin@example.com").exists()
    call_command("seed_demo", "--force")
    assert User.objects.filter(email="admin@example.com").exists()
