"""Patient data rights: download everything (JSON, CSV); clinic admins erase or anonymise."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.models import SignInFailure
from audit.models import AuditEvent
from patients.models import Assignment, LoginLink, Patient, PhaseChange, SignInRequest
from patients.selectors import patient_current_assignment
from patients.services import login_link_create, login_link_request
from reminders.models import ReminderSlot
from reminders.services import reminder_plan_patient
from symptoms import services as symptom_services
from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_program(patient, therapist, other_patient, other_therapist, extension_template):
    from patients import services

    for person, who in ((patient, therapist), (other_patient, other_therapist)):
        services.assignment_create(
            patient=person, template=extension_template, assigned_by=who, sessions_per_day=6
        )
    Patient.objects.filter(pk=patient.pk).update(reminders_enabled=True)
    patient.refresh_from_db()
    return patient


def log(patient, score=5, location="thigh", note=""):
    session, _ = symptom_services.session_log(
        patient=patient,
        idempotency_key=uuid.uuid4(),
        assignment=patient_current_assignment(patient),
    )
    symptom_services.pain_report_for_session(
        session=session, score=score, location=location, note=note
    )
    return session


@pytest.fixture
def history(on_program, other_patient):
    """Records for the patient (with a formula-like note) and for another patient."""
    log(on_program, score=3, location="back_centre")
    log(on_program, score=9, location="below_knee", note='=HYPERLINK("http://x") hurts')
    symptom_services.red_flag_report_create(patient=on_program, leg_weakness=True)
    reminder_plan_patient(patient=on_program)
    login_link_create(user=on_program.user)
    log(other_patient, score=2, note="OTHER PATIENT NOTE")
    return on_program


# --- Downloads ----------------------------------------------------------------


def test_json_download_has_all_the_patients_data_and_none_of_anyone_elses(client, history):
    client.force_login(history.user)
    response = client.get(reverse("patients:export_json"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    data = json.loads(response.content)
    assert data["patient_id"] == str(history.public_id)
    assert data["profile"][0]["email"] == history.user.email
    assert data["profile"][0]["reminders_enabled"] is True
    assert len(data["sessions"]) == 2
    assert {r["score"] for r in data["pain_reports"]} == {3, 9}
    assert len(data["warning_sign_reports"]) == 1
    assert len(data["programs"]) == 1 and data["programs"][0]["current_phase"] == "acute"
    assert len(data["program_history"]) == 1
    assert data["alerts_to_therapist"]
    assert len(data["reminder_emails"]) == ReminderSlot.objects.filter(patient=history).count()
    assert len(data["sign_in_links"]) == 1
    body = response.content.decode()
    assert "OTHER PATIENT NOTE" not in body
    for secret in ("token_hash", "idempotency_key", "claim_token"):
        assert secret not in body
    assert AuditEvent.objects.filter(
        action="export", patient=history, actor=history.user, detail__download="json"
    ).exists()


def test_csv_download_is_a_zip_of_csvs_safe_for_spreadsheets(client, history):
    client.force_login(history.user)
    response = client.get(reverse("patients:export_csv"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {"profile.csv", "sessions.csv", "pain_reports.csv", "access_log.csv"} <= names
    text = archive.read("pain_reports.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(r["score"]) for r in rows) == [3, 9]
    notes = [r["note"] for r in rows if r["note"]]
    # A note that starts like a formula is plain text in a spreadsheet.
    assert notes == ['\'=HYPERLINK("http://x") hurts']
    assert b"OTHER PATIENT NOTE" not in b"".join(archive.read(n) for n in names)
    assert AuditEvent.objects.filter(action="export", detail__download="csv").count() == 1


@pytest.mark.parametrize("name", ["patients:export_json", "patients:export_csv"])
def test_downloads_only_for_the_signed_in_patient(client, therapist, history, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302 and "/signin/" in response["Location"]
    client.force_login(therapist)
    assert client.get(url).status_code == 302  # staff: to the admin, no patient data
    client.force_login(history.user)
    assert client.post(url).status_code == 405


def test_settings_page_links_to_both_downloads(client, history):
    client.force_login(history.user)
    body = client.get(reverse("patients:settings")).content.decode()
    assert reverse("patients:export_json") in body
    assert reverse("patients:export_csv") in body


# --- Erase and anonymise (admin actions) -------------------------------------------


def admin_action(client, action, patients, **extra):
    return client.post(
        reverse("admin:patients_patient_changelist"),
        {"action": action, "_selected_action": [p.pk for p in patients], **extra},
    )


def counts(patient):
    return {
        "sessions": SessionLog.objects.filter(patient=patient).count(),
        "pain": PainReport.objects.filter(patient=patient).count(),
        "flags": RedFlagReport.objects.filter(patient=patient).count(),
        "alerts": Alert.objects.filter(patient=patient).count(),
        "programs": Assignment.objects.filter(patient=patient).count(),
    }


def test_erase_asks_first_then_deletes_everything_but_the_audit_trail(
    client, clinic_admin, history, other_patient
):
    patient, user = history, history.user
    public_id = str(patient.public_id)
    # Traces that name the person elsewhere.
    login_link_request(email=user.email, ip="10.0.0.9")
    SignInFailure.objects.create(email=user.email, ip="10.0.0.9")
    LogEntry.objects.create(
        user=clinic_admin,
        content_type=ContentType.objects.get_for_model(Patient),
        object_id=str(patient.pk),
        object_repr=str(patient),
        action_flag=CHANGE,
    )
    assert LogEntry.objects.filter(object_repr__icontains="Pat Patient").exists()
    client.force_login(user)
    client.get(reverse("patients:today"))
    client.logout()
    client.force_login(clinic_admin)
    client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    other_before = counts(other_patient)
    audit_before = AuditEvent.objects.count()

    page = admin_action(client, "patient_erase", [patient])
    assert page.status_code == 200
    assert "cannot be undone" in page.content.decode()
    assert Patient.objects.filter(pk=patient.pk).exists()  # only asked

    unconfirmed = admin_action(client, "patient_erase", [patient], apply="1")
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    assert Patient.objects.filter(pk=patient.pk).exists()

    done = admin_action(client, "patient_erase", [patient], apply="1", confirm="on")
    assert done.status_code == 302
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert counts(patient) == dict.fromkeys(counts(patient), 0)
    assert not ReminderSlot.objects.filter(patient_id=patient.pk).exists()
    assert not LoginLink.objects.filter(user_id=user.pk).exists()
    assert not SignInFailure.objects.filter(email=user.email).exists()
    assert not SignInRequest.objects.filter(ip="10.0.0.9").exists()
    assert not LogEntry.objects.filter(object_repr__icontains="Pat Patient").exists()
    assert counts(other_patient) == other_before

    # The trail stays, naming the patient by public id only.
    trail = AuditEvent.objects.filter(patient_ref=public_id)
    assert AuditEvent.objects.count() > audit_before
    assert trail.filter(action="delete", detail__data_rights="erased").exists()
    assert trail.filter(action="view").exists()
    assert not trail.filter(patient__isnull=False).exists()
    assert not AuditEvent.objects.filter(actor_id=user.pk).exists()


def test_anonymise_keeps_de_identified_clinical_data_only(client, clinic_admin, history):
    patient, user = history, history.user
    old_email = user.email
    before = counts(patient)
    client.force_login(clinic_admin)
    done = admin_action(client, "patient_anonymise", [patient], apply="1", confirm="on")
    assert done.status_code == 302

    patient.refresh_from_db()
    user.refresh_from_db()
    assert user.email != old_email and user.email.endswith("@invalid.example")
    assert "Pat" not in user.full_name
    assert not user.is_active and not user.has_usable_password()
    assert not client.login(username=old_email, password=PASSWORD)
    assert patient.reminders_enabled is False
    # Clinical data kept, free text gone.
    after = counts(patient)
    assert after["sessions"] == before["sessions"] and after["pain"] == before["pain"]
    assert after["flags"] == before["flags"] and after["alerts"] == before["alerts"]
    assert not PainReport.objects.filter(patient=patient).exclude(note="").exists()
    for alert in Alert.objects.filter(patient=patient):
        assert alert.message == alert.get_kind_display()
    assert not PhaseChange.objects.filter(
        assignment__patient=patient, reason__icontains="="
    ).exists()
    assert not Assignment.objects.filter(patient=patient, status="active").exists()
    assert not ReminderSlot.objects.filter(patient=patient).exists()
    assert not LoginLink.objects.filter(user=user).exists()
    assert AuditEvent.objects.filter(
        patient=patient, action="change", detail__data_rights="anonymised"
    ).exists()


def test_therapists_cannot_erase_or_anonymise(client, therapist, history):
    client.force_login(therapist)
    page = client.get(reverse("admin:patients_patient_changelist"))
    assert "patient_erase" not in page.content.decode()
    for action in ("patient_erase", "patient_anonymise"):
        admin_action(client, action, [history], apply="1", confirm="on")
    history.refresh_from_db()
    history.user.refresh_from_db()
    assert history.user.is_active
    assert Patient.objects.filter(pk=history.pk).exists()


@pytest.mark.postgres
def test_erase_passes_the_append_only_trigger(client, clinic_admin, history):
    """On PostgreSQL the trigger allows exactly the NULLing of patient_id/actor_id."""
    from django.db import connection

    client.force_login(history.user)
    client.get(reverse("patients:export_json"))  # an audit row with actor = the patient
    client.force_login(clinic_admin)
    admin_action(client, "patient_erase", [history], apply="1", confirm="on")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_auditevent WHERE patient_ref = %s AND patient_id IS NULL",
            [str(history.public_id)],
        )
        assert cursor.fetchone()[0] >= 2
