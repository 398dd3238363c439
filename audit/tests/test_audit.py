import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from audit.models import AuditEvent
from tests.factories import PASSWORD


def events(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def test_opening_a_patient_page_is_recorded(client, therapist, patient):
    client.force_login(therapist)
    client.get(
        reverse("admin:patients_patient_change", args=[patient.pk]),
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Firefox",
    )
    [event] = events(action="view")
    assert (event.actor, event.patient, event.patient_ref) == (
        therapist,
        patient,
        str(patient.public_id),
    )
    assert (event.ip, event.user_agent) == ("203.0.113.9", "Firefox")
    assert event.path.endswith(f"/{patient.pk}/change/")


def test_listing_records_which_patients_were_shown(client, therapist, patient, other_patient):
    client.force_login(therapist)
    client.get(reverse("admin:patients_patient_changelist"))
    [event] = events(action="list")
    assert event.detail["patients"] == [str(patient.public_id)]


def test_program_changes_are_recorded(client, therapist, patient, flexion_template):
    client.force_login(therapist)
    client.post(
        reverse("admin:patients_patient_assign", args=[patient.pk]),
        {"template": flexion_template.pk, "phase": "acute"},
    )
    [event] = events(action="change")
    assert event.patient == patient and event.detail == {"program": "assigned"}


def test_a_foreign_patient_404_is_not_recorded_as_a_view(client, therapist, other_patient):
    client.force_login(therapist)
    client.get(reverse("admin:patients_patient_change", args=[other_patient.pk]))
    assert events(action="view") == []


def test_sign_ins_and_failures_are_recorded(client, therapist):
    assert not client.login(email=therapist.email, password="wrong")
    assert client.login(email=therapist.email, password=PASSWORD)
    client.logout()
    kinds = [(e.action, e.actor_email) for e in events()]
    assert kinds == [
        ("sign_in_failed", therapist.email),
        ("sign_in", therapist.email),
        ("sign_out", therapist.email),
    ]
    assert "wrong" not in str(AuditEvent.objects.values_list("detail", flat=True))


def test_nobody_can_edit_or_delete_the_trail_in_the_admin(client, clinic_admin, therapist):
    event = AuditEvent.objects.create(action="view", actor_email="x@example.org")
    client.force_login(clinic_admin)
    listing = client.get(reverse("admin:audit_auditevent_changelist"))
    assert listing.status_code == 200
    change = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert change.context["has_change_permission"] is False
    assert (
        client.post(
            reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_therapists_cannot_read_the_trail(client, therapist):
    client.force_login(therapist)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403


def test_clinic_admin_filters_by_patient_and_user(
    client, clinic_admin, therapist, patient, other_patient
):
    client.force_login(therapist)
    client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    client.force_login(clinic_admin)
    client.get(reverse("admin:patients_patient_change", args=[other_patient.pk]))
    by_patient = client.get(
        reverse("admin:audit_auditevent_changelist"), {"patient__id__exact": patient.pk}
    )
    assert {e.patient_id for e in by_patient.context["cl"].result_list} == {patient.pk}
    by_user = client.get(
        reverse("admin:audit_auditevent_changelist"), {"actor__id__exact": clinic_admin.pk}
    )
    assert {e.actor_id for e in by_user.context["cl"].result_list} == {clinic_admin.pk}


@pytest.mark.postgres
def test_database_refuses_to_change_or_delete_audit_rows(patient, therapist):
    event = AuditEvent.objects.create(action="view", patient=patient, patient_ref="abc")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_email="forged@example.org")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    # Erasing the patient keeps the row, unlinked but still readable.
    services_user = patient.user
    patient.delete()
    services_user.delete()
    event.refresh_from_db()
    assert (event.patient_id, event.patient_ref) == (None, "abc")
