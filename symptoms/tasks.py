"""Celery tasks for symptoms: thin wrappers that take ids and call a service."""

from __future__ import annotations

import smtplib

from celery import shared_task

from symptoms import services


@shared_task(
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=10,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def alert_send_email(self, alert_id: int) -> bool:
    """Email the therapist about a new alert (red flags are urgent)."""
    return services.alert_email_send(alert_id=alert_id)
