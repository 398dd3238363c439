"""Reads for patients, always scoped to the user asking."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404

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


def patient_current_assignment(patient: Patient) -> Assignment | None:
    """The active program with its template: one query, no history."""
    return (
        Assignment.objects.filter(patient=patient, status=Assignment.Status.ACTIVE)
        .select_related("template")
        .first()
    )
