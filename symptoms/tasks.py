"""Celery tasks for symptoms: thin wrappers that take ids and call a service.

The periodic ones are scheduled in ``config.settings.base.CELERY_BEAT_SCHEDULE``.
"""

from __future__ import annotations

import smtplib

from celery import shared_task

from symptoms import services

TRANSIENT = (smtplib.SMTPException, ConnectionError, TimeoutError)


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=10,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def alert_send_email(self, alert_id: int) -> bool:
    """Email the therapist about one urgent alert (a red flag), at once."""
    return services.alert_email_send(alert_id=alert_id)


@shared_task
def alert_resend_urgent() -> int:
    """Periodic: urgent alerts whose email never went out (broker or SMTP down) go again."""
    claimed = services.alert_urgent_resend_due()
    for alert_id in claimed:
        alert_send_email.delay(alert_id)
    return len(claimed)


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def alert_digest_send(self, digest_id: int) -> bool:
    return services.alert_digest_send(digest_id=digest_id)


@shared_task
def alert_digests_run() -> int:
    """Periodic: make today's digests (from the digest hour on) and send any unsent one."""
    services.alert_digests_create()
    due = services.alert_digests_due()
    for digest_id in due:
        alert_digest_send.delay(digest_id)
    return len(due)


@shared_task
def alerts_evaluate() -> int:
    """Periodic: the time-based alert rules (no sessions, no improvement, phase overdue)."""
    return services.alerts_evaluate_time_rules()


@shared_task
def adherence_materialise() -> int:
    """Periodic: rollup rows for prescribed days with nothing logged, and the last two
    days of programs changed lately re-derived (services.adherence_recheck_changed)."""
    return services.adherence_materialise()
