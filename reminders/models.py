from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.ids import uuid7
from patients.models import Assignment, Patient


class SlotStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class SkipReason(models.TextChoices):
    """Why a slot was not emailed. Checked in this order when it falls due."""

    UNSUBSCRIBED = "unsubscribed", _("Reminder emails are switched off (unsubscribed)")
    PAUSED = "paused", _("Reminders are paused")
    NO_PROGRAM = "no_program", _("No active program (or a different program now)")
    ALREADY_LOGGED = "already_logged", _("Already logged that many sessions today")
    TOO_LATE = "too_late", _("Too late: more than the allowed time overdue")
    # Only for status "cancelled": re-planning replaced it before it fell due.
    SCHEDULE_CHANGED = "schedule_changed", _("Replaced: the schedule changed")


class ReminderSlot(models.Model):
    """One reminder email of one patient-local day: "session 3 of 6".

    The database is the source of truth for reminders (DESIGN.md section 4):
    rows are planned ahead, claimed when due by a conditional update, and
    sent by a short task. Status moves planned → sending → sent, or to
    skipped / failed; planned rows that no longer fit the schedule become
    cancelled. Sent and sending rows are never changed by re-planning.
    """

    Status = SlotStatus

    SkipReason = SkipReason

    # Time-ordered (accounts.ids): a day of slots for every patient goes in at once.
    public_id = models.UUIDField(default=uuid7, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="reminder_slots")
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="reminder_slots"
    )
    local_date = models.DateField(help_text=_("The patient's own calendar date."))
    slot_number = models.PositiveSmallIntegerField(help_text=_("Which session of the day: 1..n."))
    slots_in_day = models.PositiveSmallIntegerField(help_text=_("n: sessions per day that day."))
    local_time = models.TimeField(help_text=_("Wall-clock time in the patient's time zone."))
    timezone = models.CharField(max_length=64, help_text=_("The zone it was planned in."))
    due_at = models.DateTimeField(help_text=_("The same moment in UTC."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text=_("Send attempts started (each one may talk to the mail server).")
    )
    claim_token = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("Changes with every claim; a send task holding an older one does nothing."),
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Start of the current send attempt (its lease).")
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "slot_number"]
        verbose_name = _("reminder slot")
        indexes = [
            # reminders.services.reminder_claim_due (dispatch_due_reminders,
            # every minute): planned rows whose due_at has passed.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status="planned"),
                name="reminder_due_planned_idx",
            ),
            # reminders.services.reminder_recover_stuck (recover_stuck_reminders,
            # every minute): rows left "sending" by a dead worker. Few rows, so
            # keyed on id, not claimed_at: renewing a claim's lease (claimed_at,
            # attempts) then changes no indexed column, and PostgreSQL updates
            # the row in place (a HOT update, with the room the table's
            # fillfactor leaves, migration 0002) instead of adding an entry to
            # every index.
            models.Index(
                fields=["id"],
                condition=models.Q(status="sending"),
                name="reminder_sending_idx",
            ),
        ]
        constraints = [
            # One live row per slot of a patient's day: re-planning inserts
            # with ignore_conflicts and can never create a second reminder.
            # Cancelled rows are history and do not count.
            models.UniqueConstraint(
                fields=["patient", "local_date", "slot_number"],
                condition=~models.Q(status="cancelled"),
                name="reminder_slot_once_per_day",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=SlotStatus.values), name="reminder_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(skip_reason="") | models.Q(skip_reason__in=SkipReason.values),
                name="reminder_skip_reason_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(slot_number__gte=1, slot_number__lte=models.F("slots_in_day")),
                name="reminder_slot_number_in_day",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["skipped", "cancelled"])
                | ~models.Q(skip_reason=""),
                name="reminder_skip_has_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sending")
                | models.Q(claimed_at__isnull=False, claim_token__isnull=False),
                name="reminder_sending_is_claimed",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False),
                name="reminder_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.patient}: {self.local_date} {self.local_time:%H:%M} "
            f"({self.slot_number} of {self.slots_in_day}, {self.get_status_display()})"
        )

    @property
    def reason(self) -> str:
        """Why it was skipped, cancelled or failed, for people to read."""
        if self.skip_reason:
            return str(self.get_skip_reason_display())
        return self.failure_reason
