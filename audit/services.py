"""The only writer of the audit trail."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from audit.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address. Behind the project's proxy, REMOTE_ADDR is set by it."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    request: HttpRequest | None,
    action: str,
    patient=None,
    obj: models.Model | None = None,
    actor=None,
    actor_email: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if actor is not None and not actor_email:
        actor_email = actor.email
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=actor_email[:254],
        action=action,
        patient=patient,
        patient_ref=str(patient.public_id) if patient is not None else "",
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        path=(request.get_full_path()[:500] if request is not None else ""),
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
        detail=detail or {},
    )
