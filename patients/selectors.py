"""Reads for patients, always scoped to the user asking."""

from __future__ import annotations

import datetime as dt
import functools

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts import rawsql
from accounts.models import User, is_clinic_admin
from patients.models import Assignment, Patient, PhaseChange


def patients_for_staff(user: User) -> QuerySet[Patient]:
    """Clinic admins see every patient; therapists only their own; others none."""
    patients = Patient.objects.select_related("user", "therapist")
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return patients.none()
    if is_clinic_admin(user):
        return patients
    return patients.filter(therapist=user)


def assignments_for_staff(user: User) -> QuerySet[Assignment]:
    assignments = Assignment.objects.select_related(
        "patient__user", "patient__therapist", "template"
    )
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return assignments.none()
    if is_clinic_admin(user):
        return assignments
    return assignments.filter(patient__therapist=user)


def patient_get_for_staff(user: User, pk: int | str) -> Patient:
    """The patient, or 404 when it is missing or not this user's to see."""
    try:
        return patients_for_staff(user).get(pk=pk)
    except (Patient.DoesNotExist, ValueError) as exc:
        raise Http404("No such patient.") from exc


def patient_active_assignment(patient: Patient) -> Assignment | None:
    return (
        Assignment.objects.filter(patient=patient, status=Assignment.Status.ACTIVE)
        .select_related("template")
        .prefetch_related(
            Prefetch("history", queryset=PhaseChange.objects.select_related("changed_by"))
        )
        .first()
    )


def patient_history(patient: Patient) -> QuerySet[PhaseChange]:
    return (
        PhaseChange.objects.filter(assignment__patient=patient)
        .select_related("assignment__template", "changed_by")
        .order_by("-changed_at", "-id")
    )


# --- Reads for the patient's own pages ------------------------------------


def patient_for_user(user: User) -> Patient | None:
    """The signed-in user's own patient profile, or None (staff, anonymous)."""
    if not user.is_authenticated:
        return None
    try:
        # Loaded with the user by accounts.backends.EmailBackend: no query.
        return user.patient
    except Patient.DoesNotExist:
        return None


def patient_current_assignment(
    patient: Patient, *, sessions_on: dt.date | None = None
) -> Assignment | None:
    """The active program with its template: one query, no history.

    With ``sessions_on`` (a patient-local date), the same query also counts
    the sessions logged that day, as ``assignment.sessions_done``. That form
    runs on every Today page, so its SQL is written out once
    (accounts/rawsql.py) rather than built by the ORM on each request.
    """
    if sessions_on is not None:
        return _assignment_with_sessions_on(patient, sessions_on)
    return (
        Assignment.objects.filter(patient=patient, status=Assignment.Status.ACTIVE)
        .select_related("template")
        .first()
    )


@functools.cache
def _assignment_query() -> tuple[rawsql.Columns, rawsql.Columns, str]:
    template_model = Assignment._meta.get_field("template").related_model
    session_model = Patient._meta.get_field("sessions").related_model
    assignments = rawsql.Columns.of(Assignment, "a")
    templates = rawsql.Columns.of(template_model, "t")
    sql = (
        f"SELECT {assignments.sql}, {templates.sql}, "  # noqa: S608 (names from model metadata; values are parameters)
        f"(SELECT COUNT(*) FROM {rawsql.table(session_model)} s "
        "WHERE s.patient_id = a.patient_id AND s.local_date = %s) "
        f"FROM {rawsql.table(Assignment)} a "
        f"JOIN {rawsql.table(template_model)} t ON t.id = a.template_id "
        "WHERE a.patient_id = %s AND a.status = %s "
        "ORDER BY a.id LIMIT 1"
    )
    return assignments, templates, sql


def _assignment_with_sessions_on(patient: Patient, day: dt.date) -> Assignment | None:
    assignments, templates, sql = _assignment_query()
    row = rawsql.fetch_one(sql, [day, patient.pk, Assignment.Status.ACTIVE.value])
    if row is None:
        return None
    assignment = assignments.load(row, 0)
    template = templates.load(row, len(assignments))
    Assignment._meta.get_field("template").set_cached_value(assignment, template)
    Assignment._meta.get_field("patient").set_cached_value(assignment, patient)
    assignment.sessions_done = row[-1]
    return assignment
