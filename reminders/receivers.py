"""Re-plan a patient's reminders when their schedule changes.

``patients.signals.schedule_changed`` is sent after the change commits, so
the re-plan reads the settled state. It runs in the same process, at once:
the admin page shows the new slots on the next load. Should it fail, the
periodic plan task (every 15 minutes) puts things right.
"""

from __future__ import annotations

from django.dispatch import receiver

from patients.signals import schedule_changed
from reminders.services import reminder_plan_patient


@receiver(schedule_changed, dispatch_uid="reminders_replan_on_schedule_change")
def replan_on_schedule_change(sender, patient, **kwargs) -> None:
    reminder_plan_patient(patient=patient)
