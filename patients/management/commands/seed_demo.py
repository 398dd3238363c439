"""Demo accounts for local use: a clinic admin, two therapists, their patients."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import CLINIC_ADMINS_GROUP, THERAPISTS_GROUP, User
from accounts.roles import roles_sync
from patients import services
from patients.models import Assignment, Patient
from programs.models import ProgramTemplate
from programs.phases import Phase
from programs.selectors import template_phase_exercises
from programs.services import library_sync
from symptoms.models import PainReport, SessionLog, SessionSource
from symptoms.services import adherence_rebuild_patient, pain_trend

DEMO_PASSWORD = "demo-pass-2026"

# The demo patient's last ten days: (days ago, sessions done, pain, where it reached).
# Pain eases from 6 in the thigh to 2 in the middle of the low back, with a
# couple of days of missed sessions, so the progress page has a story to tell.
DEMO_HISTORY = [
    (10, 5, 6, "thigh"),
    (9, 6, 6, "thigh"),
    (8, 4, 5, "thigh"),
    (7, 2, 5, "buttock"),
    (6, 0, None, None),
    (5, 6, 4, "buttock"),
    (4, 5, 4, "back_side"),
    (3, 3, 3, "back_side"),
    (2, 6, 3, "back_centre"),
    (1, 5, 2, "back_centre"),
]
HISTORY_PATIENT = "patient@example.com"

STAFF = [
    ("admin@example.com", "Alex Admin", CLINIC_ADMINS_GROUP),
    ("therapist@example.com", "Taylor Therapist", THERAPISTS_GROUP),
    ("other-therapist@example.com", "Omar Other", THERAPISTS_GROUP),
]
PATIENTS = [
    # email, name, therapist, timezone
    ("patient@example.com", "Pat Patient", "therapist@example.com", "Europe/London"),
    ("other-patient@example.com", "Olive Other", "other-therapist@example.com", "America/New_York"),
]


class Command(BaseCommand):
    help = "Create demo logins (password demo-pass-2026). Local use only; idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even though DEBUG is off.")

    @transaction.atomic
    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates accounts with a public password and is for local use. "
                "DEBUG is off; pass --force if you really mean it."
            )
        library_sync()
        roles_sync()
        staff = {email: self._staff(email, name, group) for email, name, group in STAFF}
        extension = ProgramTemplate.objects.get(slug="mckenzie-extension")
        for email, name, therapist_email, tz in PATIENTS:
            patient = self._patient(email, name, staff[therapist_email], tz)
            if not Assignment.objects.filter(
                patient=patient, status=Assignment.Status.ACTIVE
            ).exists():
                local_today = timezone.now().astimezone(patient.tzinfo).date()
                services.assignment_create(
                    patient=patient,
                    template=extension,
                    assigned_by=staff[therapist_email],
                    phase=Phase.ACUTE,
                    sessions_per_day=6,
                    reason="Demo: started on the extension program",
                    start_date=local_today - dt.timedelta(days=10),
                )
            if email == HISTORY_PATIENT:
                self._history(patient)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at /admin/ with:"))
        for email, _name, _group in STAFF:
            self.stdout.write(f"  {email:<30} {DEMO_PASSWORD}")
        for email, *_rest in PATIENTS:
            self.stdout.write(f"  {email:<30} {DEMO_PASSWORD}  (patient)")

    def _staff(self, email: str, name: str, group_name: str) -> User:
        user, _ = User.objects.get_or_create(
            email=email, defaults={"full_name": name, "is_staff": True}
        )
        user.is_staff = True
        user.is_active = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name=group_name))
        return user

    def _history(self, patient: Patient) -> None:
        """Ten days of sessions and pain for the demo patient, once."""
        if SessionLog.objects.filter(patient=patient).exists():
            return
        assignment = Assignment.objects.select_related("template").get(
            patient=patient, status=Assignment.Status.ACTIVE
        )
        reps = sum(
            item.total_reps
            for item in template_phase_exercises(assignment.template, assignment.current_phase)
        )
        tz = patient.tzinfo
        today = timezone.now().astimezone(tz).date()
        previous_location = ""
        previous_score = None
        for days_ago, done, score, location in DEMO_HISTORY:
            day = today - dt.timedelta(days=days_ago)
            last = None
            for number in range(done):
                logged_at = dt.datetime.combine(day, dt.time(8 + 2 * number, 15), tzinfo=tz)
                last = SessionLog.objects.create(
                    patient=patient,
                    assignment=assignment,
                    local_date=day,
                    logged_at=logged_at,
                    phase=assignment.current_phase,
                    sessions_prescribed=assignment.sessions_per_day,
                    reps_done=reps,
                    source=SessionSource.APP if number % 3 else SessionSource.EMAIL,
                    idempotency_key=uuid.uuid5(uuid.NAMESPACE_URL, f"demo:{day}:{number}"),
                )
            if last is None or score is None:
                continue
            PainReport.objects.create(
                patient=patient,
                session=last,
                reported_at=last.logged_at + dt.timedelta(minutes=5),
                local_date=day,
                score=score,
                location=location,
                trend=pain_trend(location=location, previous_location=previous_location),
                previous_score=previous_score,
                previous_location=previous_location,
            )
            previous_location, previous_score = location, score
        # The history was written directly; bring the staff pages' rollup up to date.
        adherence_rebuild_patient(patient=patient, days=30)

    def _patient(self, email: str, name: str, therapist: User, tz: str) -> Patient:
        existing = Patient.objects.filter(user__email=email).select_related("user").first()
        if existing is None:
            existing = services.patient_create(
                email=email,
                full_name=name,
                therapist=therapist,
                timezone_name=tz,
                reminders_enabled=True,
            )
        existing.user.set_password(DEMO_PASSWORD)
        existing.user.save(update_fields=["password"])
        return existing
