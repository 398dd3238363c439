"""Unsubscribe from reminder emails with the signed link in every email.

GET shows a confirmation page with one button; it changes nothing, because
mail scanners open links. POST unsubscribes: that is what the button sends
and what a mail client's one-click "Unsubscribe" sends (RFC 8058:
``List-Unsubscribe=One-Click``, no cookies, no CSRF token). The signed token
in the URL is the only key, so that POST is exempt from CSRF; nothing else is.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from patients.models import Patient
from reminders.services import reminder_unsubscribe
from reminders.tokens import BadUnsubscribeToken, unsubscribe_token_read


def _patient_for(token: str) -> Patient | None:
    try:
        public_id = unsubscribe_token_read(token)
    except BadUnsubscribeToken:
        return None
    return Patient.objects.select_related("user").filter(public_id=public_id).first()


@csrf_exempt  # RFC 8058 one-click POST: keyed by the signed token, no session.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    patient = _patient_for(token)
    if patient is None:
        return render(request, "reminders/unsubscribe_invalid.html", status=400)
    if request.method == "POST":
        reminder_unsubscribe(patient=patient)
        return render(request, "reminders/unsubscribe_done.html", {"patient": patient})
    return render(
        request,
        "reminders/unsubscribe_confirm.html",
        {"patient": patient, "already": not patient.reminders_enabled},
    )
