"""Thin Celery tasks: each takes ids and calls a service in reminders.services.

The periodic ones are scheduled in settings.CELERY_BEAT_SCHEDULE (exactly one
`celery beat` runs them). No task is ever scheduled hours ahead: the plan
lives in the database, and send tasks are queued only once a slot is due.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from django.conf import settings

from reminders import services

logger = logging.getLogger(__name__)


def _enqueue_batch(slot_ids: list[int], claim_token: uuid.UUID) -> None:
    send_reminders.apply_async(args=[list(slot_ids), str(claim_token)])


@shared_task(ignore_result=True)
def plan_reminders() -> dict[str, int]:
    """Plan today and tomorrow (patient-local) for everyone who gets reminders."""
    result = services.reminder_plan_all()
    return {"patients": result.patients, "created": result.created, "cancelled": result.cancelled}


@shared_task(ignore_result=True)
def dispatch_due_reminders() -> int:
    """Claim due slots (each exactly once), in batches, and queue a send task per batch."""
    result = services.reminder_dispatch_due(enqueue=_enqueue_batch)
    if result.claimed or result.released:
        logger.info(
            "Reminders: %d claimed in %d batch(es), %d released",
            len(result.claimed),
            result.batches,
            len(result.released),
        )
    return len(result.claimed)


@shared_task(ignore_result=True)
def recover_stuck_sending() -> int:
    """Release slots a dead worker left "sending", then dispatch them again."""
    released = services.reminder_recover_stuck()
    if released:
        logger.warning("Reminders: recovered %d slot(s) stuck in sending", len(released))
        services.reminder_dispatch_due(enqueue=_enqueue_batch)
    return len(released)


# A hard limit below REMINDER_SENDING_TIMEOUT: an attempt is over (done or
# killed) before recovery may hand its slots to someone else. The soft limit
# comes first: the messages not yet tried then wait for the retry.
_SEND_LIMITS = {
    "soft_time_limit": max(1, settings.REMINDER_SEND_TIME_LIMIT * 4 // 5),
    "time_limit": settings.REMINDER_SEND_TIME_LIMIT,
}


@shared_task(bind=True, ignore_result=True, acks_late=True, **_SEND_LIMITS)
def send_reminders(self, slot_ids: list[int], claim_token: str) -> dict[str, int]:
    """One attempt at a claimed batch: one mail connection, each slot marked as it goes.

    Returns how many slots ended how ({"sent": 98, "skipped": 2}). Slots hit
    by a transient error are retried, alone, under the same claim.
    """
    outcome = services.reminder_send_batch(slot_ids=slot_ids, claim_token=claim_token)
    retry = outcome.retry_ids
    if retry:
        # Same claim token: the rows stay "sending" until this retry runs.
        raise self.retry(args=[retry, claim_token], countdown=outcome.retry_in, max_retries=None)
    return outcome.counts()


@shared_task(bind=True, ignore_result=True, acks_late=True, **_SEND_LIMITS)
def send_reminder(self, slot_id: int, claim_token: str) -> str:
    """One slot (the task before batches; messages already queued still run)."""
    outcome = services.reminder_send(slot_id=slot_id, claim_token=claim_token)
    if outcome.status == "retry":
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status
