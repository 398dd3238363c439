"""Signed tokens for the one-click unsubscribe link (no login needed)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing

UNSUBSCRIBE_SALT = "reminders.unsubscribe"


class BadUnsubscribeToken(Exception):
    """The token was tampered with, malformed or too old."""


def unsubscribe_token_make(*, patient_public_id: uuid.UUID) -> str:
    return signing.dumps(patient_public_id.hex, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> uuid.UUID:
    """The patient's public id, or ``BadUnsubscribeToken``."""
    max_age = settings.REMINDER_UNSUBSCRIBE_MAX_AGE_DAYS * 24 * 60 * 60
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=max_age)
        return uuid.UUID(hex=value)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadUnsubscribeToken(str(exc)) from exc
