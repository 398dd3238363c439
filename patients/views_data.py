"""The patient downloads everything the clinic holds about them (JSON, or CSVs in a zip).

Linked from the settings page. Every row is found through the signed-in
patient; each download is recorded in the audit trail. Internal keys
(database ids, token hashes, claim tokens, idempotency keys) are left out;
everything else, field by field, is in.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import uuid
import zipfile
from collections.abc import Iterable

from django.db import models
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.models import AuditAction, AuditEvent
from audit.services import audit_record
from patients.models import Assignment, LoginLink, Patient, PhaseChange
from patients.views import patient_required

# Never exported: internal keys and secrets that mean nothing to the patient.
INTERNAL_FIELDS = {"id", "patient", "user", "token_hash", "claim_token", "idempotency_key"}
FORMAT_VERSION = 1


def _value(obj: models.Model, field: models.Field):
    if field.is_relation:
        related = getattr(obj, field.name)
        if related is None:
            return None
        for attribute in ("public_id", "email", "slug"):
            if hasattr(related, attribute):
                return str(getattr(related, attribute))
        return str(related)
    value = getattr(obj, field.attname)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def _rows(queryset: models.QuerySet, exclude: Iterable[str] = ()) -> list[dict]:
    skip = INTERNAL_FIELDS | set(exclude)
    fields = [f for f in queryset.model._meta.concrete_fields if f.name not in skip]
    related = [f.name for f in fields if f.is_relation]
    if related:
        queryset = queryset.select_related(*related)
    return [{f.name: _value(obj, f) for f in fields} for obj in queryset]


def patient_data_export(patient: Patient) -> dict[str, list[dict]]:
    """All the patient's data, by kind. Rows are flat dicts (JSON and CSV alike)."""
    from reminders.models import ReminderSlot
    from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog

    user = patient.user
    profile = _rows(Patient.objects.filter(pk=patient.pk))[0]
    profile = {
        "email": user.email,
        "full_name": user.full_name,
        "account_created": user.date_joined.isoformat(),
        "last_sign_in": user.last_login.isoformat() if user.last_login else None,
        **profile,
    }
    access = AuditEvent.objects.filter(Q(patient=patient) | Q(actor=user)).order_by("at", "id")
    return {
        "profile": [profile],
        "programs": _rows(Assignment.objects.filter(patient=patient).order_by("started_on")),
        "program_history": _rows(
            PhaseChange.objects.filter(assignment__patient=patient).order_by("changed_at", "id")
        ),
        "sessions": _rows(SessionLog.objects.filter(patient=patient).order_by("logged_at")),
        "pain_reports": _rows(PainReport.objects.filter(patient=patient).order_by("reported_at")),
        "warning_sign_reports": _rows(
            RedFlagReport.objects.filter(patient=patient).order_by("reported_at")
        ),
        "alerts_to_therapist": _rows(
            Alert.objects.filter(patient=patient).order_by("created_at"), exclude={"therapist"}
        ),
        "reminder_emails": _rows(
            ReminderSlot.objects.filter(patient=patient).order_by("due_at", "slot_number")
        ),
        "sign_in_links": _rows(LoginLink.objects.filter(user=user).order_by("created_at")),
        "access_log": [
            {
                "at": event.at.isoformat(),
                "who": event.actor_email,
                "action": event.action,
                "what": event.object_type,
                "from_ip": event.ip,
            }
            for event in access
        ],
    }


def _filename(extension: str) -> str:
    return f"back-exercise-coach-my-data-{timezone.now():%Y-%m-%d}.{extension}"


def _attachment(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _audit_export(request: HttpRequest, patient: Patient, kind: str) -> None:
    audit_record(
        request=request, action=AuditAction.EXPORT, patient=patient, detail={"download": kind}
    )


@never_cache
@require_GET
@patient_required
def export_json(request: HttpRequest) -> HttpResponse:
    patient = request.patient
    data = {
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "patient_id": str(patient.public_id),
        **patient_data_export(patient),
    }
    _audit_export(request, patient, "json")
    content = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False).encode()
    return _attachment(content, "application/json", _filename("json"))


# A cell that starts like a formula is run by spreadsheet programs (CSV
# injection); a leading apostrophe makes it plain text there.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


@never_cache
@require_GET
@patient_required
def export_csv(request: HttpRequest) -> HttpResponse:
    """One CSV per kind of record, in a zip (UTF-8 with a BOM, so spreadsheets read it)."""
    patient = request.patient
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for kind, rows in patient_data_export(patient).items():
            archive.writestr(f"{kind}.csv", "\ufeff" + _csv(rows))
    _audit_export(request, patient, "csv")
    return _attachment(buffer.getvalue(), "application/zip", _filename("zip"))
