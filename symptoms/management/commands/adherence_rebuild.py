"""Rebuild the adherence rollup from the session log, pain reports and phase history.

Run once after upgrading to the release that added the rollup, after loading
rows by hand (``seed_demo``'s history, an import), or after beat was down for
more than a few days. Safe to run at any time: it only ever makes the rollup
agree with the records.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from patients.models import Patient
from symptoms.services import REBUILD_MAX_DAYS, adherence_rebuild_patient


class Command(BaseCommand):
    help = "Rebuild the per-patient-per-day adherence rollup (DailyAdherence)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=REBUILD_MAX_DAYS,
            help=f"How many local days back, today included (default {REBUILD_MAX_DAYS}).",
        )
        parser.add_argument("--patient", action="append", help="A patient's public id.")

    def handle(self, *args, days: int, patient: list[str] | None, **options):
        patients = Patient.objects.order_by("pk")
        if patient:
            patients = patients.filter(public_id__in=patient)
        count = rows = 0
        for each in patients.iterator(chunk_size=500):
            rows += adherence_rebuild_patient(patient=each, days=days)
            count += 1
        self.stdout.write(f"Rebuilt {rows} day(s) for {count} patient(s).")
