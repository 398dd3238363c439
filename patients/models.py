from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.zones import zone_named
from programs.models import ProgramTemplate
from programs.phases import Phase, sessions_per_day_condition


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("“%(value)s” is not a known time zone. Use a name like Europe/Berlin."),
            params={"value": value},
        )


class StenosisChoice(models.TextChoices):
    NONE = "none", _("No spinal stenosis")
    CLEARED = "cleared", _("Spinal stenosis, cleared by a doctor for extension work")
    NOT_CLEARED = "not_cleared", _("Spinal stenosis, no doctor's clearance")


class Patient(models.Model):
    """A patient's profile: who treats them, when they are awake, their screening."""

    Stenosis = StenosisChoice

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient"
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="patients",
        limit_choices_to={"is_staff": True},
    )
    timezone = models.CharField(
        max_length=64, default="Europe/London", validators=[validate_timezone]
    )
    wake_time = models.TimeField(_("awake from"), default=dt.time(7, 0))
    sleep_time = models.TimeField(_("asleep from"), default=dt.time(21, 0))
    reminders_enabled = models.BooleanField(
        _("reminder emails"),
        default=False,
        help_text=_("Only with the patient's consent."),
    )
    reminder_consent_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminders_paused_until = models.DateField(null=True, blank=True)

    # Screening answers (what the therapist asked before assigning work).
    is_pregnant = models.BooleanField(_("pregnant"), default=False)
    spinal_stenosis = models.CharField(
        max_length=20, choices=Stenosis.choices, default=Stenosis.NONE
    )
    spinal_arthritis_or_facet = models.BooleanField(
        _("spinal arthritis or facet joint problems"), default=False
    )
    red_flag_bladder = models.BooleanField(_("loss of bladder control"), default=False)
    red_flag_bowel = models.BooleanField(_("loss of bowel control"), default=False)
    red_flag_saddle_numbness = models.BooleanField(
        _("numbness in the groin or saddle area"), default=False
    )
    red_flag_leg_weakness = models.BooleanField(_("severe leg weakness"), default=False)
    screened_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__full_name", "user__email"]
        indexes = [models.Index(fields=["therapist"], name="patient_therapist_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(spinal_stenosis__in=StenosisChoice.values),
                name="patient_stenosis_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(wake_time__lt=models.F("sleep_time")),
                name="patient_waking_window_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.user.get_full_name()

    def clean(self) -> None:
        super().clean()
        if self.wake_time and self.sleep_time and self.wake_time >= self.sleep_time:
            raise ValidationError({"sleep_time": _("The waking window must end after it starts.")})

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def has_red_flags(self) -> bool:
        return any(
            (
                self.red_flag_bladder,
                self.red_flag_bowel,
                self.red_flag_saddle_numbness,
                self.red_flag_leg_weakness,
            )
        )

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zone_named(self.timezone)


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


class Assignment(models.Model):
    """A patient's program: a template, the phase they are in, how often a day."""

    Status = AssignmentStatus

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="assignments")
    template = models.ForeignKey(
        ProgramTemplate, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_phase = models.CharField(max_length=20, choices=Phase.choices)
    sessions_per_day = models.PositiveSmallIntegerField(
        help_text=_(
            "Inside the phase guideline: acute 6-10, sub-acute 4-6, recovery 3-4, maintenance 2-3."
        )
    )
    phase_started_on = models.DateField()
    started_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    safety_override_reason = models.TextField(
        blank=True,
        help_text=_("Why the program was assigned despite a screening concern."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_on", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(status="active"),
                name="one_active_assignment_per_patient",
                violation_error_message=_("This patient already has an active program."),
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AssignmentStatus.values),
                name="assignment_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(current_phase__in=Phase.values),
                name="assignment_phase_valid",
            ),
            models.CheckConstraint(
                condition=sessions_per_day_condition("current_phase", "sessions_per_day"),
                name="assignment_sessions_in_guideline",
                violation_error_message=_("Sessions per day must lie inside the phase guideline."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient}: {self.template} ({self.get_current_phase_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class PhaseChangeKind(models.TextChoices):
    ASSIGNED = "assigned", _("Program assigned")
    ADVANCED = "advanced", _("Advanced to next phase")
    PHASE_SET = "phase_set", _("Phase changed")
    SESSIONS_SET = "sessions_set", _("Sessions per day changed")
    ENDED = "ended", _("Program ended")


class PhaseChange(models.Model):
    """Append-only history of an assignment's phase and sessions/day.

    The first row records the assignment itself (``from_phase`` empty). Rows
    are written only by ``patients.services`` and never changed afterwards.
    """

    Kind = PhaseChangeKind

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="history")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_phase = models.CharField(max_length=20, choices=Phase.choices, blank=True)
    to_phase = models.CharField(max_length=20, choices=Phase.choices)
    from_sessions_per_day = models.PositiveSmallIntegerField(null=True, blank=True)
    to_sessions_per_day = models.PositiveSmallIntegerField()
    effective_on = models.DateField(help_text=_("The patient's local date it took effect."))
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()

    class Meta:
        ordering = ["changed_at", "id"]
        verbose_name = _("phase change")
        indexes = [
            models.Index(fields=["assignment", "changed_at"], name="phasechange_assignment_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=PhaseChangeKind.values), name="phasechange_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        source = self.get_from_phase_display() or "—"
        return f"{source} → {self.get_to_phase_display()} ({self.changed_at:%Y-%m-%d})"


class LoginLink(models.Model):
    """A single-use sign-in link sent by email. Only a hash of the token is kept.

    Written by ``patients.services.login_link_create`` and spent (at most once,
    by a conditional UPDATE) by ``patients.services.login_link_redeem``.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_links"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    next_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="loginlink_user_time_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="loginlink_expires_after_created",
            ),
        ]

    def __str__(self) -> str:
        state = "used" if self.used_at else "unused"
        return f"Sign-in link for {self.user} ({state}, {self.created_at:%Y-%m-%d %H:%M})"


class SignInRequest(models.Model):
    """Every request for a sign-in link, known address or not: the rate limit's ledger.

    The address is kept only as a SHA-256 hash. Counted by
    ``patients.services.login_link_request`` per address and per IP.
    """

    email_hash = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["email_hash", "created_at"], name="signinrequest_email_idx"),
            models.Index(fields=["ip", "created_at"], name="signinrequest_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"Sign-in request at {self.created_at:%Y-%m-%d %H:%M} from {self.ip or '?'}"
