"""Signed tokens for the one-click unsubscribe link (no login needed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

UNSUBSCRIBE_SALT = "reminders.unsubscribe"


class BadUnsubscribeToken(Exception):
    """The token was tampered with, malformed or too old."""


def unsubscribe_token_make(*, patient_public_id: uuid.UUID) -> str:
    return signing.dumps(patient_public_id.hex, salt=UNSUBSCRIBE_SALT)


class UnsubscribeTokenMaker:
    """``unsubscribe_token_make`` for a batch of emails, with the signing key derived once.

    The same token, character for character, as ``signing.dumps`` makes at
    the same second (a test compares them): JSON, base64, timestamp and
    HMAC as Django's TimestampSigner does them. Only the signer's salted key
    is worked out once instead of for every token.
    """

    def __init__(self):
        signer = signing.TimestampSigner(salt=UNSUBSCRIBE_SALT)
        hasher = getattr(hashlib, signer.algorithm)
        key = hasher(force_bytes(signer.salt + "signer") + force_bytes(signer.key)).digest()
        self._mac = hmac.new(key, digestmod=hasher)
        self._sep = signer.sep

    def make(self, *, patient_public_id: uuid.UUID) -> str:
        data = json.dumps(patient_public_id.hex, separators=(",", ":")).encode("latin-1")
        value = (
            f"{signing.b64_encode(data).decode()}{self._sep}{signing.b62_encode(int(time.time()))}"
        )
        mac = self._mac.copy()
        mac.update(value.encode())
        return f"{value}{self._sep}{signing.b64_encode(mac.digest()).decode()}"


def unsubscribe_token_read(token: str) -> uuid.UUID:
    """The patient's public id, or ``BadUnsubscribeToken``."""
    max_age = settings.REMINDER_UNSUBSCRIBE_MAX_AGE_DAYS * 24 * 60 * 60
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=max_age)
        return uuid.UUID(hex=value)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadUnsubscribeToken(str(exc)) from exc
