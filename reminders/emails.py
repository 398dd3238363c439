"""The reminder email: text and HTML, one-tap log link, RFC 8058 unsubscribe."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from programs.phases import Phase
from programs.selectors import template_phase_exercises
from reminders.models import ReminderSlot
from reminders.tokens import unsubscribe_token_make


def message_id_for(slot: ReminderSlot) -> str:
    """The same for every attempt at this slot, so a repeat can be recognised."""
    return f"<reminder-{slot.public_id}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"


def unsubscribe_url_for(slot: ReminderSlot) -> str:
    token = unsubscribe_token_make(patient_public_id=slot.patient.public_id)
    return settings.SITE_URL + reverse("reminders:unsubscribe", args=[token])


def log_url_for(slot: ReminderSlot) -> str:
    return f"{settings.SITE_URL}{reverse('patients:log_session')}?source=email"


def subject_for(slot: ReminderSlot) -> str:
    return f"Session {slot.slot_number} of {slot.slots_in_day} today: your back exercises"


def reminder_email_build(*, slot: ReminderSlot, logged_today: int) -> EmailMultiAlternatives:
    """The message for one slot. ``slot`` needs patient.user and assignment.template."""
    patient = slot.patient
    assignment = slot.assignment
    unsubscribe_url = unsubscribe_url_for(slot)
    context = {
        "first_name": patient.user.get_short_name() if patient.user.full_name else "",
        "slot": slot,
        "phase_label": Phase(assignment.current_phase).label,
        "exercises": template_phase_exercises(assignment.template, assignment.current_phase),
        "logged_today": logged_today,
        "log_url": log_url_for(slot),
        "unsubscribe_url": unsubscribe_url,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
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
