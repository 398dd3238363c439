from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.ids import uuid7
from patients.models import Assignment, Patient
from programs.phases import Phase


class PainLocation(models.TextChoices):
    """Where the pain reaches, nearest the spine first.

    The order matters: a move down this list is peripheralisation (worse),
    a move up it is centralisation (a good sign).
    """

    NONE = "none", _("No pain")
    BACK_CENTRE = "back_centre", _("Low back, in the middle")
    BACK_SIDE = "back_side", _("Low back, one side")
    BUTTOCK = "buttock", _("Buttock")
    THIGH = "thigh", _("Thigh")
    BELOW_KNEE = "below_knee", _("Below the knee or in the foot")


LOCATION_RANK: dict[str, int] = {value: rank for rank, value in enumerate(PainLocation.values)}


class SessionSource(models.TextChoices):
    APP = "app", _("Logged in the app")
    GUIDED = "guided", _("After a guided session")
    EMAIL = "email", _("From a reminder email")


class SessionLog(models.Model):
    """One exercise session a patient did, on their own local date."""

    # Time-ordered (accounts.ids): the most written table's unique key.
    public_id = models.UUIDField(default=uuid7, unique=True, editable=False)
    # No index of its own: the unique (patient, key) and (patient, day) indexes
    # both start with it, and each index costs every session logged.
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="sessions", db_index=False
    )
    assignment = models.ForeignKey(
        Assignment, on_delete=models.PROTECT, related_name="sessions", null=True, blank=True
    )
    local_date = models.DateField(help_text=_("The patient's own calendar date."))
    logged_at = models.DateTimeField()
    phase = models.CharField(max_length=20, choices=Phase.choices)
    sessions_prescribed = models.PositiveSmallIntegerField(
        help_text=_("Sessions per day prescribed when it was logged.")
    )
    reps_done = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=10, choices=SessionSource.choices, default="app")
    idempotency_key = models.UUIDField(
        help_text=_("From the form or link; a replay with the same key logs nothing new.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-logged_at"]
        indexes = [
            # Sessions done today (Today page, reminder skip check, adherence).
            models.Index(fields=["patient", "local_date"], name="session_patient_date_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "idempotency_key"], name="session_idempotency_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(phase__in=Phase.values), name="session_phase_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=SessionSource.values), name="session_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} session on {self.local_date}"


class PainTrend(models.TextChoices):
    FIRST = "first", _("First report")
    CENTRALISING = "centralising", _("Centralising (moving toward the spine)")
    UNCHANGED = "unchanged", _("Unchanged")
    PERIPHERALISING = "peripheralising", _("Peripheralising (spreading down the leg)")


class PainReport(models.Model):
    """A 0-10 pain score and how far the pain reaches, usually with a session."""

    Trend = PainTrend

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="pain_reports")
    session = models.OneToOneField(
        SessionLog, on_delete=models.CASCADE, null=True, blank=True, related_name="pain"
    )
    reported_at = models.DateTimeField()
    local_date = models.DateField()
    score = models.PositiveSmallIntegerField()
    location = models.CharField(max_length=20, choices=PainLocation.choices)
    trend = models.CharField(max_length=20, choices=Trend.choices, default=Trend.FIRST)
    # The patient's report before this one, copied so feedback can be shown
    # again (a replayed form) without searching the history.
    previous_score = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_location = models.CharField(
        max_length=20, choices=PainLocation.choices, blank=True, default=""
    )
    note = models.TextField(blank=True, max_length=2000)
    # The lowest score the patient reported in the days before this one (see
    # symptoms.alerts.PAIN_RISE_DAYS), kept so the "pain rising" rule and the
    # patient's feedback read the same stored fact on every replay.
    rise_baseline = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-reported_at"]
        indexes = [
            models.Index(fields=["patient", "reported_at"], name="pain_patient_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=10), name="pain_score_0_to_10"
            ),
            models.CheckConstraint(
                condition=models.Q(location__in=PainLocation.values), name="pain_location_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(trend__in=PainTrend.values), name="pain_trend_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient}: {self.score}/10, {self.get_location_display()}"

    @property
    def location_rank(self) -> int:
        return LOCATION_RANK[self.location]


class RedFlagAction(models.TextChoices):
    EMERGENCY = "emergency", _("Go to the emergency room now")
    CALL_DOCTOR = "call_doctor", _("Call a doctor today")


class RedFlagReport(models.Model):
    """A patient's report of a warning sign. Bladder/bowel: emergency now."""

    Action = RedFlagAction

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="red_flags")
    reported_at = models.DateTimeField()
    bladder = models.BooleanField(_("loss of bladder control"), default=False)
    bowel = models.BooleanField(_("loss of bowel control"), default=False)
    saddle_numbness = models.BooleanField(_("numbness in the groin or saddle area"), default=False)
    leg_weakness = models.BooleanField(_("severe leg weakness"), default=False)
    action = models.CharField(max_length=20, choices=Action.choices)

    class Meta:
        ordering = ["-reported_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bladder=True)
                | models.Q(bowel=True)
                | models.Q(saddle_numbness=True)
                | models.Q(leg_weakness=True),
                name="redflag_has_a_sign",
            ),
            models.CheckConstraint(
                condition=models.Q(action__in=RedFlagAction.values), name="redflag_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient}: {self.get_action_display()} ({self.reported_at:%Y-%m-%d %H:%M})"


class AlertKind(models.TextChoices):
    RED_FLAG = "red_flag", _("Red flag reported")
    PERIPHERALISING = "peripheralising", _("Pain spreading down the leg")
    HIGH_PAIN = "high_pain", _("Pain score 8 or more")
    PAIN_RISING = "pain_rising", _("Pain up 2+ points over 3 days")
    NO_IMPROVEMENT = "no_improvement", _("No improvement after 14 days")
    NO_SESSIONS = "no_sessions", _("No sessions for 3 days")
    TOO_MANY_REPS = "too_many_reps", _("More than 100 reps in a day")
    PHASE_OVERDUE = "phase_overdue", _("Phase past its typical duration")


class AlertSeverity(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    ROUTINE = "routine", _("Routine")


class Alert(models.Model):
    """Something a therapist should look at, stored once per condition and period."""

    Kind = AlertKind

    Severity = AlertSeverity

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="alerts")
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="alerts"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    period_key = models.CharField(
        max_length=80,
        help_text=_("What makes this alert distinct, e.g. the local date or a report id."),
    )
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(
        default=0, help_text=_("Times the sweep re-sent this urgent alert after a failure.")
    )
    digest = models.ForeignKey(
        "AlertDigest",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        help_text=_("The daily digest email this routine alert went out in."),
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Open alerts per therapist (review page, digest).
            models.Index(
                fields=["therapist", "created_at"],
                condition=models.Q(acknowledged_at__isnull=True),
                name="alert_open_by_therapist_idx",
            ),
            # symptoms.services.alert_digests_create: routine alerts not yet in a digest.
            models.Index(
                fields=["therapist"],
                condition=models.Q(
                    severity="routine", digest__isnull=True, emailed_at__isnull=True
                ),
                name="alert_undigested_idx",
            ),
            # symptoms.services.alert_urgent_resend_due: urgent alerts whose email failed.
            models.Index(
                fields=["created_at"],
                condition=models.Q(severity="urgent", emailed_at__isnull=True),
                name="alert_urgent_unsent_idx",
            ),
            # Open alerts of the patients on a review page.
            models.Index(
                fields=["patient", "created_at"],
                condition=models.Q(acknowledged_at__isnull=True),
                name="alert_open_by_patient_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind", "period_key"], name="alert_once_per_period"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=AlertKind.values), name="alert_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(severity__in=AlertSeverity.values), name="alert_severity_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.patient}"


class AlertDigest(models.Model):
    """One therapist's daily email listing their new routine alerts.

    At most one per therapist per clinic date (the unique constraint); the
    alerts it carries are claimed into it when it is created, so each routine
    alert goes out in exactly one digest. ``sent_at`` is stamped only after
    the mail server accepted the message.
    """

    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="alert_digests"
    )
    day = models.DateField(help_text=_("The clinic's date the digest is for."))
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sending_since = models.DateTimeField(
        null=True, blank=True, help_text=_("Claimed by a sender at this time (expires).")
    )
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["therapist", "day"], name="digest_once_per_day"),
        ]
        indexes = [
            # symptoms.services.alert_digests_due: digests still to send.
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True),
                name="digest_unsent_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Alert digest for {self.therapist} on {self.day}"


class DailyAdherence(models.Model):
    """Rollup: one patient's sessions and pain on one of their local days.

    Kept current by ``symptoms.services`` inside the same transaction as every
    session or pain write (and re-derived when the program changes), and
    materialised for prescribed days without any session by the periodic
    task, so that a day nobody exercised still counts as prescribed. Staff
    pages and the CSV export read only this table, never the session log.
    ``done`` is capped at ``prescribed``; sessions beyond it are ``extra``.
    See ``symptoms.adherence`` for the definition.
    """

    # No index of its own: the unique (patient, day) index starts with it.
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="daily_adherence", db_index=False
    )
    local_date = models.DateField()
    phase = models.CharField(max_length=20, choices=Phase.choices, blank=True)
    prescribed = models.PositiveSmallIntegerField(default=0)
    done = models.PositiveSmallIntegerField(default=0)
    extra = models.PositiveSmallIntegerField(default=0)
    reps = models.PositiveIntegerField(default=0)
    pain_first = models.PositiveSmallIntegerField(null=True, blank=True)
    pain_last = models.PositiveSmallIntegerField(null=True, blank=True)
    pain_min = models.PositiveSmallIntegerField(null=True, blank=True)
    pain_max = models.PositiveSmallIntegerField(null=True, blank=True)
    location = models.CharField(
        max_length=20,
        choices=PainLocation.choices,
        blank=True,
        help_text=_("The most distal place the pain reached that day."),
    )
    last_session_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("daily adherence")
        verbose_name_plural = _("daily adherence")
        constraints = [
            # Also the index every reader uses: (patient, local_date) ranges.
            models.UniqueConstraint(
                fields=["patient", "local_date"], name="adherence_one_row_per_day"
            ),
            models.CheckConstraint(
                condition=models.Q(done__lte=models.F("prescribed")),
                name="adherence_done_capped",
            ),
        ]
        indexes = [
            # The clinic-wide "at risk" sort: every patient's last 7 or 30 days,
            # read from the index alone.
            models.Index(
                fields=["local_date", "patient"],
                include=["done", "prescribed"],
                name="adherence_by_day_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} on {self.local_date}: {self.done}/{self.prescribed}"

    @property
    def sessions(self) -> int:
        return self.done + self.extra
