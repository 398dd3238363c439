from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    VIEW = "view", _("Viewed")
    LIST = "list", _("Listed")
    CREATE = "create", _("Created")
    CHANGE = "change", _("Changed")
    DELETE = "delete", _("Deleted")
    EXPORT = "export", _("Exported")
    SIGN_IN = "sign_in", _("Signed in")
    SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
    SIGN_OUT = "sign_out", _("Signed out")


class AuditEvent(models.Model):
    """Who did what to which patient's records, when and from where.

    Append-only: written only by ``audit.services.audit_record``; the admin
    offers no add, change or delete, and on PostgreSQL a trigger refuses
    UPDATE and DELETE outright. Actor and patient are also kept as text, so
    the trail survives when an account is erased.
    """

    Action = AuditAction

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    patient_ref = models.CharField(
        max_length=64, blank=True, help_text=_("The patient's public id, kept after erasure.")
    )
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["patient", "at"], name="audit_patient_at_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=AuditAction.values), name="audit_action_valid"
            ),
        ]

    def __str__(self) -> str:
        who = self.actor_email or "anonymous"
        return f"{self.at:%Y-%m-%d %H:%M} {who} {self.get_action_display()} {self.object_type}"
