"""Reads about what patients logged, always for one given patient."""

from __future__ import annotations

import datetime as dt

from patients.models import Patient
from symptoms.models import SessionLog


def sessions_logged_count(*, patient: Patient, local_date: dt.date) -> int:
    """How many sessions the patient logged on their own local date."""
    return SessionLog.objects.filter(patient=patient, local_date=local_date).count()
