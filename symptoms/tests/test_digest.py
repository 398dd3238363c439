"""Routine alerts reach the therapist in one daily digest; urgent ones at once, re-sent if lost."""

from __future__ import annotations

import contextlib
import datetime as dt
from unittest import mock

import pytest
import time_machine
from django.core import mail

from symptoms import services
from symptoms.models import Alert, AlertDigest

pytestmark = pytest.mark.django_db

MORNING = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC)  # clinic TIME_ZONE is UTC in tests


def raise_alert(patient, kind="high_pain", key="2026-03-01", severity="routine"):
    return services.alert_raise(
        patient=patient, kind=kind, severity=severity, period_key=key, message=f"{kind} {key}"
    )


def run_digests(now):
    from symptoms.tasks import alert_digests_run

    with time_machine.travel(now, tick=False):
        return alert_digests_run.delay().get()


def test_one_email_per_therapist_per_day_listing_every_new_routine_alert(
    assigned_patient, other_assigned_patient, therapist, other_therapist, make_patient
):
    second = make_patient(user__full_name="Sam Second")
    raise_alert(assigned_patient, "high_pain")
    raise_alert(assigned_patient, "no_sessions")
    raise_alert(second, "phase_overdue", key="program:x")
    raise_alert(other_assigned_patient, "too_many_reps")
    run_digests(MORNING)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([therapist.email, other_therapist.email])
    mine = next(m for m in mail.outbox if m.to == [therapist.email])
    assert mine.subject == "Daily alert digest: 3 new alert(s) for 2026-03-02"
    for text in ("Pat Patient", "Sam Second", "Pain score 8 or more", "No sessions for 3 days"):
        assert text in mine.body
        assert text in mine.alternatives[0].content
    assert f"/staff/patients/{assigned_patient.public_id}/" in mine.body
    assert Alert.objects.filter(emailed_at__isnull=True).count() == 0
    assert AlertDigest.objects.filter(sent_at__isnull=False).count() == 2


def test_each_alert_is_in_exactly_one_digest(assigned_patient, therapist):
    first = raise_alert(assigned_patient, key="a")
    run_digests(MORNING)
    run_digests(MORNING + dt.timedelta(hours=1))  # beat again the same day: nothing new
    assert len(mail.outbox) == 1
    later = raise_alert(assigned_patient, key="b")  # raised after today's digest
    run_digests(MORNING + dt.timedelta(hours=5))
    assert len(mail.outbox) == 1  # waits for tomorrow
    run_digests(MORNING + dt.timedelta(days=1))
    assert len(mail.outbox) == 2
    assert "high_pain b" in mail.outbox[1].body and "high_pain a" not in mail.outbox[1].body
    first.refresh_from_db()
    later.refresh_from_db()
    assert first.digest_id != later.digest_id and first.emailed_at and later.emailed_at


def test_nothing_before_the_digest_hour(assigned_patient, settings):
    settings.ALERT_DIGEST_HOUR = 7
    raise_alert(assigned_patient)
    run_digests(MORNING.replace(hour=6, minute=59))
    assert mail.outbox == [] and not AlertDigest.objects.exists()


def test_urgent_and_acknowledged_alerts_are_not_in_the_digest(assigned_patient, therapist):
    acknowledged = raise_alert(assigned_patient, key="seen")
    services.alert_acknowledge(alert=acknowledged, user=therapist)
    services.red_flag_report_create(patient=assigned_patient, bladder=True)
    run_digests(MORNING)
    assert mail.outbox == [] or all("Daily alert digest" not in m.subject for m in mail.outbox)
    assert not AlertDigest.objects.exists()


def test_a_failed_digest_is_sent_again_and_only_once(assigned_patient):
    raise_alert(assigned_patient)
    with (
        mock.patch("symptoms.services.EmailMultiAlternatives.send", side_effect=OSError("down")),
        pytest.raises(OSError),
    ):
        run_digests(MORNING)
    digest = AlertDigest.objects.get()
    assert digest.sent_at is None and digest.attempts == 1 and digest.sending_since is None
    assert Alert.objects.get().emailed_at is None
    run_digests(MORNING + dt.timedelta(minutes=15))
    run_digests(MORNING + dt.timedelta(minutes=30))
    assert len(mail.outbox) == 1
    digest.refresh_from_db()
    assert digest.sent_at is not None


def test_a_digest_being_sent_is_not_sent_twice(assigned_patient):
    raise_alert(assigned_patient)
    with time_machine.travel(MORNING, tick=False):
        (digest_id,) = services.alert_digests_create()
    AlertDigest.objects.filter(pk=digest_id).update(sending_since=MORNING)
    assert services.alert_digest_send(digest_id=digest_id, now=MORNING) is False  # claimed
    # A sender that died: its claim expires.
    later = MORNING + services.DIGEST_SENDING_TIMEOUT + dt.timedelta(seconds=1)
    assert services.alert_digest_send(digest_id=digest_id, now=later) is True
    assert services.alert_digest_send(digest_id=digest_id, now=later) is False
    assert len(mail.outbox) == 1


# --- Urgent alerts whose immediate email was lost -------------------------------------------------


def test_the_sweep_resends_lost_urgent_alerts_with_a_bound(
    assigned_patient, therapist, django_capture_on_commit_callbacks
):
    from symptoms.tasks import alert_resend_urgent

    with (
        mock.patch("symptoms.tasks.alert_send_email.delay", side_effect=ConnectionError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.red_flag_report_create(patient=assigned_patient, bladder=True)
    alert = Alert.objects.get(kind="red_flag")
    assert alert.emailed_at is None
    assert alert_resend_urgent.delay().get() == 0  # too fresh: the first try may still run
    later = alert.created_at + dt.timedelta(minutes=3)
    with (
        mock.patch("symptoms.services.EmailMultiAlternatives.send", side_effect=OSError("smtp")),
        time_machine.travel(later, tick=False),
    ):
        for _ in range(services.URGENT_RESEND_MAX_ATTEMPTS + 2):
            with contextlib.suppress(OSError):
                alert_resend_urgent.delay().get()
    alert.refresh_from_db()
    assert alert.emailed_at is None
    assert alert.email_attempts == services.URGENT_RESEND_MAX_ATTEMPTS  # and no more
    Alert.objects.filter(pk=alert.pk).update(email_attempts=0)
    with time_machine.travel(later, tick=False):
        assert alert_resend_urgent.delay().get() == 1
    alert.refresh_from_db()
    assert alert.emailed_at is not None
    assert [m.to for m in mail.outbox] == [[therapist.email]]
    assert mail.outbox[0].subject.startswith("[URGENT]")
    with time_machine.travel(later, tick=False):
        assert alert_resend_urgent.delay().get() == 0  # sent: never again


def test_the_sweep_leaves_routine_and_old_alerts_alone(assigned_patient):
    raise_alert(assigned_patient)
    old = raise_alert(assigned_patient, kind="red_flag", key="old", severity="urgent")
    Alert.objects.filter(pk=old.pk).update(
        created_at=old.created_at - services.URGENT_RESEND_WITHIN - dt.timedelta(hours=1)
    )
    assert services.alert_urgent_resend_due() == []


def test_the_periodic_tasks_are_scheduled_and_exist(settings):
    from config.celery import app

    app.loader.import_default_modules()
    mine = {
        name: entry
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if name.startswith("symptoms-")
    }
    assert {entry["task"] for entry in mine.values()} == {
        "symptoms.tasks.alerts_evaluate",
        "symptoms.tasks.adherence_materialise",
        "symptoms.tasks.alert_digests_run",
        "symptoms.tasks.alert_resend_urgent",
    }
    for entry in mine.values():
        assert entry["task"] in app.tasks
        assert entry["options"]["expires"] <= entry["schedule"]
