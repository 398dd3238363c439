"""The reminder email: text and HTML, one-tap log link, RFC 8058 unsubscribe."""

from __future__ import annotations

import email.policy

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from programs.models import PrescribedExercise
from programs.phases import Phase
from programs.selectors import template_phase_exercises
from reminders.models import ReminderSlot
from reminders.tokens import unsubscribe_token_make

# Headers whose value is a URL or an id: never folded into RFC 2047 encoded
# words (RFC 2047 section 5 forbids them there; receivers then ignore the
# header). Python's email package does that to any header longer than 78
# characters without a space, which a signed unsubscribe URL always is.
VERBATIM_HEADERS = ("List-Unsubscribe", "Message-ID")


class ReminderEmail(EmailMultiAlternatives):
    """An EmailMultiAlternatives whose URL and id headers go out on one line.

    RFC 5322 allows lines up to 998 characters; these stay far below that.
    """

    def message(self, *, policy=email.policy.default):
        msg = super().message(policy=policy.clone(refold_source="none"))
        for name in VERBATIM_HEADERS:
            value = msg[name]
            if value is not None:
                del msg[name]
                msg.set_raw(name, str(value))
        return msg


def message_id_for(slot: ReminderSlot) -> str:
    """The same for every attempt at this slot, so a repeat can be recognised."""
    return f"<reminder-{slot.public_id}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"


def unsubscribe_url_for(slot: ReminderSlot) -> str:
    token = unsubscribe_token_make(patient_public_id=slot.patient.public_id)
    return settings.SITE_URL + reverse("reminders:unsubscribe", args=[token])


def log_url_for(slot: ReminderSlot) -> str:
    return f"{settings.SITE_URL}{reverse('patients:log_session')}?source=email"


def _duration(seconds: int) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


def exercise_line(item: PrescribedExercise) -> str:
    """ "Propped on your elbows: 10 times, hold 10 seconds" in plain words."""
    times = "once" if item.reps == 1 else f"{item.reps} times"
    if item.sets > 1:
        times = f"{item.sets} sets of {times}"
    hold = f", hold {_duration(item.hold_seconds)}" if item.hold_seconds else ""
    return f"{item.exercise.name}: {times}{hold}"


def subject_for(slot: ReminderSlot) -> str:
    return f"Session {slot.slot_number} of {slot.slots_in_day} today: your back exercises"


def reminder_email_build(*, slot: ReminderSlot, logged_today: int) -> ReminderEmail:
    """The message for one slot. ``slot`` needs patient.user and assignment.template."""
    patient = slot.patient
    assignment = slot.assignment
    unsubscribe_url = unsubscribe_url_for(slot)
    context = {
        "first_name": patient.user.get_short_name() if patient.user.full_name else "",
        "slot": slot,
        "phase_label": Phase(assignment.current_phase).label,
        "exercises": [
            exercise_line(item)
            for item in template_phase_exercises(assignment.template, assignment.current_phase)
        ],
        "logged_today": logged_today,
        "log_url": log_url_for(slot),
        "unsubscribe_url": unsubscribe_url,
        "site_url": settings.SITE_URL,
    }
    message = ReminderEmail(
        subject=subject_for(slot),
        body=render_to_string("reminders/email/reminder.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[patient.user.email],
        reply_to=[settings.REMINDER_REPLY_TO] if settings.REMINDER_REPLY_TO else None,
        headers={
            "Message-ID": message_id_for(slot),
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # RFC 3834: sent by a machine; auto-responders should not answer.
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(
        render_to_string("reminders/email/reminder.html", context), "text/html"
    )
    return message
