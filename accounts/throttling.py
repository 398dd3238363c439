"""Slow down password guessing without letting anyone lock a patient out.

Failed password sign-ins are counted per account and per client IP over a
sliding window. Past the limit, password sign-in for that account (or from
that IP) pauses until the window has passed: a cool-off, not a lock. An
attacker who keeps failing against a patient's address only pauses
*password* sign-in: the emailed sign-in link still works for the patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import SignInFailure


@dataclass(frozen=True)
class ThrottleState:
    blocked: bool
    retry_after: dt.timedelta = dt.timedelta(0)


def _window() -> dt.timedelta:
    return dt.timedelta(minutes=settings.SIGN_IN_THROTTLE_WINDOW_MINUTES)


def _retry_after(failures: models.QuerySet, limit: int, now: dt.datetime) -> ThrottleState:
    recent = list(failures.order_by("-at").values_list("at", flat=True)[:limit])
    if len(recent) < limit:
        return ThrottleState(blocked=False)
    # Blocked until the oldest of the last `limit` failures leaves the window.
    return ThrottleState(
        blocked=True, retry_after=max(recent[-1] + _window() - now, dt.timedelta(0))
    )


def _account_key(email: str | None) -> str:
    """The address as typed, normalised. NUL characters (which PostgreSQL text
    cannot hold; no real address has one) are dropped, so junk still counts."""
    return (email or "").replace("\x00", "").strip().lower()[:254]


def sign_in_throttle_state(*, email: str, ip: str | None) -> ThrottleState:
    now = timezone.now()
    since = now - _window()
    email = _account_key(email)
    by_account = _retry_after(
        SignInFailure.objects.filter(email=email, at__gte=since),
        settings.SIGN_IN_THROTTLE_PER_ACCOUNT,
        now,
    )
    by_ip = (
        _retry_after(
            SignInFailure.objects.filter(ip=ip, at__gte=since),
            settings.SIGN_IN_THROTTLE_PER_IP,
            now,
        )
        if ip
        else ThrottleState(blocked=False)
    )
    if by_account.blocked or by_ip.blocked:
        return ThrottleState(
            blocked=True, retry_after=max(by_account.retry_after, by_ip.retry_after)
        )
    return ThrottleState(blocked=False)


def sign_in_failure_record(*, email: str, ip: str | None) -> None:
    SignInFailure.objects.create(email=_account_key(email), ip=ip or None)
    # Keep the table small: nothing older than a day matters.
    SignInFailure.objects.filter(at__lt=timezone.now() - dt.timedelta(days=1)).delete()


def sign_in_success_record(*, email: str) -> None:
    """A correct password clears that account's count (not the IP's)."""
    SignInFailure.objects.filter(email=_account_key(email)).delete()
