"""seed_demo gives the demo patient ten days of history, once."""

import pytest
from django.core.management import call_command
from django.test import override_settings

from patients.models import Patient
from symptoms.models import PainReport, SessionLog
from symptoms.selectors import progress_days

pytestmark = pytest.mark.django_db


@override_settings(DEBUG=True)
def test_seed_demo_adds_a_story_of_centralising_pain_once():
    call_command("seed_demo")
    counts = (SessionLog.objects.count(), PainReport.objects.count())
    call_command("seed_demo")
    assert (SessionLog.objects.count(), PainReport.objects.count()) == counts
    reports = list(
        PainReport.objects.filter(patient__user__email="patient@example.com").order_by(
            "reported_at"
        )
    )
    assert len(reports) >= 8
    assert (reports[0].score, reports[0].location) == (6, "thigh")
    assert (reports[-1].score, reports[-1].location) == (2, "back_centre")
    assert {r.trend for r in reports} >= {"first", "centralising", "unchanged"}
    patient = reports[0].patient
    from patients.services import patient_local_today

    days = progress_days(patient=patient, today=patient_local_today(patient))
    missed = [d for d in days if d.sessions_done < d.sessions_prescribed]
    assert len(days) >= 10 and missed
    assert not SessionLog.objects.filter(patient__user__email="other-patient@example.com").exists()


@override_settings(DEBUG=True)
def test_seed_demo_history_reaches_the_staff_rollup():
    from symptoms.models import DailyAdherence

    call_command("seed_demo")
    patient = Patient.objects.get(user__email="patient@example.com")
    rows = DailyAdherence.objects.filter(patient=patient)
    assert rows.filter(done__gt=0).count() >= 8
    assert sum(rows.values_list("done", flat=True)) == SessionLog.objects.filter(
        patient=patient
    ).count() - sum(rows.values_list("extra", flat=True))
