"""The patient logs a session, the pain after it, and warning signs; and sees progress.

Routed from ``patients/urls.py`` (the patient's pages share one namespace,
``patients:``); every object is fetched through the signed-in patient.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods

from patients.selectors import patient_current_assignment, patient_for_user
from patients.services import patient_local_today
from patients.views import patient_required, render_page, session_log_form
from symptoms import charts, services
from symptoms.forms import (
    LOCATION_HINTS,
    PainForm,
    RedFlagForm,
    SessionLogForm,
    session_log_values,
)
from symptoms.models import PainLocation, RedFlagReport, SessionSource
from symptoms.selectors import (
    progress_days,
    session_for_patient,
    sessions_and_reps,
    sessions_logged_count,
)


def _own_session(request: HttpRequest, public_id):
    session = session_for_patient(patient=request.patient, public_id=public_id)
    if session is None:
        raise Http404("No such session.")
    return session


@require_http_methods(["GET", "POST"])
def log_session(request: HttpRequest) -> HttpResponse:
    """One tap: "I did this session". Reminder emails link here (``?source=email``).

    A replay of the same form (double tap, resubmission, retried request)
    finds the session it already made and goes on to the same next page.
    The POST is the patient's most frequent write: the service reads the
    active program and updates the day's rollup in the INSERT itself, and on
    PostgreSQL it checks the browser's session in that statement too.
    """
    if request.method == "POST":
        response = _log_signed_in(request)
        if response is not None:
            return response
    return _log_session(request)


def _log_signed_in(request: HttpRequest) -> HttpResponse | None:
    """The tap as one statement: the session checked and the session logged.

    None when that cannot be done (no session cookie, a form without its
    zone, not PostgreSQL) or the statement did not find the session signing
    in a patient in that zone (expired, signed out, a changed password,
    staff...). It wrote nothing then, and the view goes the usual way, where
    Django's own checks decide what the browser gets.
    """
    zone = request.POST.get("zone")
    session_key = request.session.session_key
    values = session_log_values(request.POST)
    if not zone or session_key is None or values is None:
        return None
    key, source = values
    logged = services.session_log_signed_in(
        session_key=session_key, zone=zone, idempotency_key=key, source=source or SessionSource.APP
    )
    if logged is None:
        return None
    session, _created, signed_in = logged
    request.session.adopt(signed_in)  # Django checks it again, with no query
    patient = patient_for_user(request.user)
    if patient is None or patient.pk != session.patient_id:
        # The statement checks what Django checks; they can only disagree if
        # the session row was changed behind Django's back.
        raise RuntimeError("The session log's own session check disagreed with Django's.")
    request.patient = patient
    return redirect("patients:log_pain", public_id=session.public_id)


@patient_required
def _log_session(request: HttpRequest) -> HttpResponse:
    patient = request.patient
    if request.method == "POST":
        values = session_log_values(request.POST)
        if values is None:  # not plainly valid: the form decides and explains
            form = SessionLogForm(request.POST)
            if form.is_valid():
                values = form.cleaned_data["idempotency_key"], form.cleaned_data["source"]
        if values is not None:
            key, source = values
            session, _created = services.session_log(
                patient=patient, idempotency_key=key, source=source or SessionSource.APP
            )
            return redirect("patients:log_pain", public_id=session.public_id)
    else:
        source = SessionSource.EMAIL if request.GET.get("source") == "email" else SessionSource.APP
        form = session_log_form(patient, source)
    today = patient_local_today(patient)
    assignment = patient_current_assignment(patient)
    return render_page(
        request,
        "symptoms/log_session.html",
        {
            "form": form,
            "assignment": assignment,
            "sessions_done": sessions_logged_count(patient=patient, local_date=today),
        },
        status=200 if form.is_bound is False or form.is_valid() else 400,
    )


@require_http_methods(["GET", "POST"])
@patient_required
def log_pain(request: HttpRequest, public_id) -> HttpResponse:
    """The pain score and how far it reaches, after a session. Recorded once."""
    session = _own_session(request, public_id)
    if hasattr(session, "pain"):
        return redirect("patients:session_result", public_id=session.public_id)
    if request.method == "POST":
        form = PainForm(request.POST)
        if form.is_valid():
            services.pain_report_for_session(
                session=session,
                score=form.cleaned_data["score"],
                location=form.cleaned_data["location"],
                note=form.cleaned_data["note"],
            )
            return redirect("patients:session_result", public_id=session.public_id)
        status = 400
    else:
        form = PainForm()
        status = 200
    return render_page(
        request,
        "symptoms/log_pain.html",
        {"form": form, "session": session, "location_hints": LOCATION_HINTS},
        status=status,
    )


@require_GET
@patient_required
def session_result(request: HttpRequest, public_id) -> HttpResponse:
    """What the logged pain means, in plain words. The same page on every replay."""
    session = _own_session(request, public_id)
    report = getattr(session, "pain", None)
    if report is None:
        return redirect("patients:log_pain", public_id=session.public_id)
    done, reps = sessions_and_reps(patient=request.patient, local_date=session.local_date)
    feedback = services.PainFeedback(report, reps)
    return render_page(
        request,
        "symptoms/session_result.html",
        {"session": session, "report": report, "feedback": feedback, "sessions_done": done},
    )


@require_http_methods(["GET", "POST"])
@patient_required
def warning_signs(request: HttpRequest) -> HttpResponse:
    """The four warning signs. A report tells the patient what to do and alerts the therapist."""
    if request.method == "POST":
        form = RedFlagForm(request.POST)
        if form.is_valid():
            report = services.red_flag_report_create(patient=request.patient, **form.cleaned_data)
            return redirect("patients:warning_result", public_id=report.public_id)
        status = 400
    else:
        form = RedFlagForm()
        status = 200
    return render_page(request, "symptoms/warning_signs.html", {"form": form}, status=status)


@require_GET
@patient_required
def warning_result(request: HttpRequest, public_id) -> HttpResponse:
    report = get_object_or_404(RedFlagReport, public_id=public_id, patient=request.patient)
    return render_page(request, "symptoms/warning_result.html", {"report": report})


@require_GET
@patient_required
def progress(request: HttpRequest) -> HttpResponse:
    """Pain, sessions and how far the pain reaches, over the last 30 days."""
    today = patient_local_today(request.patient)
    days = progress_days(patient=request.patient, today=today)
    context = {"days": days, "today": today, "location_choices": PainLocation.choices}
    if days:
        context.update(
            pain=charts.pain_chart(days),
            sessions=charts.sessions_chart(days),
            location=charts.location_chart(days),
            table_days=list(reversed(days)),
            no_relief=charts.no_relief_after_two_weeks(days),
        )
    return render_page(request, "symptoms/progress.html", context)
