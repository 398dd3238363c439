"""Demo accounts for local use: a clinic admin, two therapists, their patients."""

from __future__ import annotations

import datetime as dt

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
from programs.services import library_sync

DEMO_PASSWORD = "demo-pass-2026"

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
                    start_date=local_today - dt.timedelta(days=2),
                )
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
