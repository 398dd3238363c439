"""Writes for what patients log: sessions, pain, warning signs, and the alerts they raise.

The only place these rows are created or changed. Every function is atomic and
safe to call twice with the same input: a double tap, a resubmitted form or a
retried request changes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from patients.models import Assignment, Patient
from programs.selectors import template_phase_exercises
from symptoms.models import (
    LOCATION_RANK,
    Alert,
    PainLocation,
    PainReport,
    PainTrend,
    RedFlagAction,
    RedFlagReport,
    SessionLog,
    SessionSource,
)

logger = logging.getLogger(__name__)

HIGH_PAIN_SCORE = 8
PAIN_RISE_POINTS = 2
REPS_SORENESS_LIMIT = 100

# Alerts a patient's own report raises that the therapist hears about at once.
EMAILED_ALERT_KINDS = frozenset(
    {
        Alert.Kind.RED_FLAG,
        Alert.Kind.PERIPHERALISING,
        Alert.Kind.HIGH_PAIN,
        Alert.Kind.PAIN_RISING,
    }
)


def _local_now(patient: Patient) -> tuple[dt.datetime, dt.date]:
    now = timezone.now()
    return now, now.astimezone(patient.tzinfo).date()


# --- Sessions -------------------------------------------------------------


def session_log(
    *,
    patient: Patient,
    idempotency_key: uuid.UUID,
    assignment: Assignment | None,
    source: str = SessionSource.APP,
) -> tuple[SessionLog, bool]:
    """Record one session done now. Returns (session, created).

    The same ``idempotency_key`` always gives back the same row: the unique
    constraint on (patient, idempotency_key) decides a race, inside a savepoint
    so the caller's transaction survives it.
    """
    existing = SessionLog.objects.filter(patient=patient, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    if source not in SessionSource.values:
        source = SessionSource.APP
    now, local_date = _local_now(patient)
    if assignment is not None:
        phase = assignment.current_phase
        prescribed = assignment.sessions_per_day
        reps = sum(item.total_reps for item in template_phase_exercises(assignment.template, phase))
    else:
        # Without a program there is nothing to snapshot; keep the row honest.
        phase, prescribed, reps = "acute", 0, 0
    try:
        with transaction.atomic():
            session = SessionLog.objects.create(
                patient=patient,
                assignment=assignment,
                local_date=local_date,
                logged_at=now,
                phase=phase,
                sessions_prescribed=prescribed,
                reps_done=reps,
                source=source,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        return SessionLog.objects.get(patient=patient, idempotency_key=idempotency_key), False
    return session, True


def reps_on(*, patient: Patient, local_date: dt.date) -> int:
    total = SessionLog.objects.filter(patient=patient, local_date=local_date).aggregate(
        total=Sum("reps_done")
    )["total"]
    return total or 0


# --- Pain -------------------------------------------------------------------


@dataclass(frozen=True)
class PainFeedback:
    """What to tell the patient after they log pain. Built from stored rows only."""

    report: PainReport
    reps_today: int

    @property
    def centralising(self) -> bool:
        return self.report.trend == PainTrend.CENTRALISING

    @property
    def peripheralising(self) -> bool:
        return self.report.trend == PainTrend.PERIPHERALISING

    @property
    def pain_rising(self) -> bool:
        previous = self.report.previous_score
        return previous is not None and self.report.score - previous >= PAIN_RISE_POINTS

    @property
    def high_pain(self) -> bool:
        return self.report.score >= HIGH_PAIN_SCORE

    @property
    def must_stop(self) -> bool:
        """Stop the exercises and contact the therapist."""
        return self.peripheralising or self.pain_rising

    @property
    def too_many_reps(self) -> bool:
        return self.reps_today > REPS_SORENESS_LIMIT

    @property
    def offer_warning_check(self) -> bool:
        return self.high_pain or self.peripheralising


def pain_trend(*, location: str, previous_location: str | None) -> str:
    if not previous_location:
        return PainTrend.FIRST
    now_rank, before_rank = LOCATION_RANK[location], LOCATION_RANK[previous_location]
    if now_rank < before_rank:
        return PainTrend.CENTRALISING
    if now_rank > before_rank:
        return PainTrend.PERIPHERALISING
    return PainTrend.UNCHANGED


@transaction.atomic
def pain_report_for_session(
    *, session: SessionLog, score: int, location: str, note: str = ""
) -> tuple[PainFeedback, bool]:
    """Record the pain after a session, once. Returns (feedback, created).

    Compares with the patient's previous report: pain moving toward the spine
    is centralising (good); further down the leg is peripheralising, which
    raises an alert, as do a score of 8 or more and a clear rise.
    """
    patient = session.patient
    if not 0 <= score <= 10:
        raise ValueError("score must be 0-10")
    if location not in PainLocation.values:
        raise ValueError("unknown location")
    # Serialise this patient's pain reports (lock the patient row), so two
    # arriving at once each compare with the right previous report.
    Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk").first()
    existing = PainReport.objects.filter(session=session).first()
    if existing is not None:
        return PainFeedback(
            existing, reps_on(patient=patient, local_date=existing.local_date)
        ), False
    previous = (
        PainReport.objects.filter(patient=patient)
        .only("score", "location")
        .order_by("-reported_at", "-id")
        .first()
    )
    now, local_date = _local_now(patient)
    report = PainReport.objects.create(
        patient=patient,
        session=session,
        reported_at=now,
        local_date=local_date,
        score=score,
        location=location,
        trend=pain_trend(location=location, previous_location=previous and previous.location),
        previous_score=previous.score if previous else None,
        previous_location=previous.location if previous else "",
        note=(note or "").strip()[:2000],
    )
    feedback = PainFeedback(report, reps_on(patient=patient, local_date=local_date))
    period = local_date.isoformat()
    where = report.get_location_display()
    if report.note:
        where = _("%(where)s; the patient wrote: “%(note)s”") % {
            "where": where,
            "note": report.note[:300],
        }
    if feedback.peripheralising:
        alert_raise(
            patient=patient,
            kind=Alert.Kind.PERIPHERALISING,
            severity=Alert.Severity.ROUTINE,
            period_key=period,
            message=_(
                "Pain has spread further from the spine: %(before)s → %(now)s (%(score)d/10)."
            )
            % {
                "before": PainLocation(report.previous_location).label,
                "now": where,
                "score": score,
            },
        )
    if feedback.high_pain:
        alert_raise(
            patient=patient,
            kind=Alert.Kind.HIGH_PAIN,
            severity=Alert.Severity.ROUTINE,
            period_key=period,
            message=_("Pain score %(score)d/10 logged (%(where)s).")
            % {"score": score, "where": where},
        )
    if feedback.pain_rising:
        alert_raise(
            patient=patient,
            kind=Alert.Kind.PAIN_RISING,
            severity=Alert.Severity.ROUTINE,
            period_key=period,
            message=_("Pain rose from %(before)d to %(now)d out of 10 since the last report.")
            % {"before": report.previous_score, "now": score},
        )
    if feedback.too_many_reps:
        alert_raise(
            patient=patient,
            kind=Alert.Kind.TOO_MANY_REPS,
            severity=Alert.Severity.ROUTINE,
            period_key=period,
            message=_("%(reps)d repetitions logged today (more than 100).")
            % {"reps": feedback.reps_today},
        )
    return feedback, True


# --- Warning signs ------------------------------------------------------------


@transaction.atomic
def red_flag_report_create(
    *,
    patient: Patient,
    bladder: bool = False,
    bowel: bool = False,
    saddle_numbness: bool = False,
    leg_weakness: bool = False,
) -> RedFlagReport:
    """Store a warning-sign report and alert the therapist by email at once."""
    if not (bladder or bowel or saddle_numbness or leg_weakness):
        raise ValueError("A red-flag report needs at least one sign.")
    action = RedFlagAction.EMERGENCY if (bladder or bowel) else RedFlagAction.CALL_DOCTOR
    report = RedFlagReport.objects.create(
        patient=patient,
        reported_at=timezone.now(),
        bladder=bladder,
        bowel=bowel,
        saddle_numbness=saddle_numbness,
        leg_weakness=leg_weakness,
        action=action,
    )
    signs = [
        str(RedFlagReport._meta.get_field(name).verbose_name)
        for name in ("bladder", "bowel", "saddle_numbness", "leg_weakness")
        if getattr(report, name)
    ]
    alert_raise(
        patient=patient,
        kind=Alert.Kind.RED_FLAG,
        severity=Alert.Severity.URGENT,
        period_key=str(report.public_id),
        message=_("Warning signs reported: %(signs)s. The patient was told: %(action)s.")
        % {"signs": ", ".join(signs), "action": report.get_action_display()},
    )
    return report


# --- Alerts -------------------------------------------------------------------


def alert_raise(
    *, patient: Patient, kind: str, severity: str, period_key: str, message: str
) -> Alert | None:
    """Create the alert once per (patient, kind, period). Returns it if new.

    New alerts of the kinds a therapist must hear about at once are emailed
    by a Celery task after the surrounding transaction commits.
    """
    try:
        with transaction.atomic():
            alert, created = Alert.objects.get_or_create(
                patient=patient,
                kind=kind,
                period_key=period_key,
                defaults={
                    "therapist_id": patient.therapist_id,
                    "severity": severity,
                    "message": message,
                },
            )
    except IntegrityError:
        return None  # a concurrent writer created it first
    if not created:
        return None
    if kind in EMAILED_ALERT_KINDS:
        # Celery's ``delay_on_commit`` without its one weakness: if the broker
        # is down, the error must not turn the patient's page (the emergency
        # instruction!) into a 500 after the report is already saved. The
        # alert keeps ``emailed_at`` empty, so a sweep can still send it.
        transaction.on_commit(partial(_enqueue_alert_email, alert.pk), robust=True)
    return alert


def _enqueue_alert_email(alert_id: int) -> None:
    from symptoms.tasks import alert_send_email

    alert_send_email.delay(alert_id)


def alert_email_send(*, alert_id: int) -> bool:
    """Email the therapist about one alert, once. True if this call sent it.

    ``emailed_at`` is stamped only after the mail server accepted the message,
    so a failure leaves it empty for the task's retry.
    """
    alert = (
        Alert.objects.select_related("patient__user", "therapist")
        .filter(pk=alert_id, emailed_at__isnull=True)
        .first()
    )
    if alert is None:
        return False
    context = {
        "alert": alert,
        "patient": alert.patient,
        "admin_url": settings.SITE_URL
        + reverse("admin:patients_patient_change", args=[alert.patient.pk]),
        "urgent": alert.severity == Alert.Severity.URGENT,
    }
    prefix = _("URGENT") if context["urgent"] else _("Alert")
    message = EmailMultiAlternatives(
        subject=f"[{prefix}] {alert.get_kind_display()}: {alert.patient}",
        body=render_to_string("symptoms/email/alert.txt", context),
        to=[alert.therapist.email],
    )
    message.attach_alternative(render_to_string("symptoms/email/alert.html", context), "text/html")
    message.send()
    return (
        Alert.objects.filter(pk=alert.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
        == 1
    )


def alert_acknowledge(*, alert: Alert, user: User) -> bool:
    """Mark an alert seen by ``user``. False if it already was."""
    return (
        Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=user
        )
        == 1
    )
