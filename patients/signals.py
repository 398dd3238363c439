"""Notifications other apps may listen to. No business rules live here.

``schedule_changed`` is sent after a commit that changes when a patient
should exercise: a new or ended program, a phase or sessions/day change,
different waking hours or time zone, reminders switched on/off or paused.
Receivers get ``patient`` (a ``patients.models.Patient``).
"""

from django.dispatch import Signal

schedule_changed = Signal()
